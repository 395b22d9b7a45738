// Grafana panel constructors for Prometheus queries. A panel comes out with its size
// (gridPos.w/h) but without id or position: dashboard.libsonnet numbers and places them.
// Every panel takes a description and a unit, and reads the `${datasource}` variable, never a
// fixed datasource uid.
local datasource = { type: 'prometheus', uid: '${datasource}' };

// Letters A, B, C, … for the queries of one panel.
local refIds(targets) = [targets[i] { refId: std.char(std.codepoint('A') + i) } for i in std.range(0, std.length(targets) - 1)];

// null-valued keys are left out, so optional settings do not clutter the JSON.
local prune(obj) = { [k]: obj[k] for k in std.objectFields(obj) if obj[k] != null };

{
  datasource: datasource,

  // A PromQL query. `legend` is a legendFormat ('{{agent}}'); instant queries give tables and
  // single values; format 'heatmap' turns cumulative buckets into heatmap cells. `exemplar`
  // also asks for the exemplars (trace ids) of the raw series the query reads.
  query(expr, legend='__auto', instant=false, format='time_series', interval=null, exemplar=null)::
    prune({
      datasource: datasource,
      expr: expr,
      legendFormat: legend,
      instant: instant,
      range: !instant,
      format: format,
      editorMode: 'code',
      interval: interval,
      exemplar: exemplar,
    }),

  // Threshold steps: a base colour, then [value, colour] pairs in increasing value.
  thresholds(base, steps=[]):: {
    mode: 'absolute',
    steps: [{ color: base, value: null }] + [{ color: s[1], value: s[0] } for s in steps],
  },
  // Higher is better (success, health): red below `critical`, orange below `warning`.
  higherIsBetter(critical, warning):: $.thresholds('red', [[critical, 'orange'], [warning, 'green']]),
  // Lower is better (errors, latency, cost): orange from `warning`, red from `critical`.
  lowerIsBetter(warning, critical=null)::
    $.thresholds('green', [[warning, 'orange']] + (if critical == null then [] else [[critical, 'red']])),
  // No judgement: one neutral colour.
  neutral:: $.thresholds('blue'),

  // Value → text and colour, for states encoded as numbers: [[1, 'healthy', 'green'], …].
  valueMappings(states):: [{
    type: 'value',
    options: {
      [std.toString(s[0])]: { text: s[1], color: s[2], index: i }
      for i in std.range(0, std.length(states) - 1)
      for s in [states[i]]
    },
  }],

  // Colour of one series by its legend name (e.g. a status), for stacked state counts.
  colorOverride(name, color):: {
    matcher: { id: 'byName', options: name },
    properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }],
  },

  // A link from a panel to another dashboard, keeping the time range and variables.
  dashboardLink(title, uid, params=''):: {
    title: title,
    url: '/d/%s?${__url_time_range}&${datasource:queryparam}&${cluster:queryparam}&${job:queryparam}%s' % [uid, params],
  },

  local base(type, title, description, unit, targets, width, height, thresholds, min=null, max=null, decimals=null, mappings=[], overrides=[], noValue=null, custom={}, links=[]) =
    assert std.length(description) > 0 : 'panel "%s" needs a description' % title;
    assert width >= 1 && width <= 24 : 'panel "%s" is %d columns wide; the grid has 24' % [title, width];
    {
      type: type,
      title: title,
      description: description,
      datasource: datasource,
      gridPos: { w: width, h: height },
      targets: refIds(targets),
      fieldConfig: {
        defaults: prune({
          unit: unit,
          min: min,
          max: max,
          decimals: decimals,
          noValue: noValue,
        }) + {
          color: { mode: 'thresholds' },
          thresholds: thresholds,
          mappings: mappings,
          custom: custom,
          links: links,
        },
        overrides: overrides,
      },
    },

  // A single number (the last value), coloured by thresholds, with a sparkline.
  stat(title, description, unit, targets, thresholds=$.neutral, width=4, height=4, min=null, max=null, decimals=null, mappings=[], noValue=null, graph=true, links=[])::
    base('stat', title, description, unit, targets, width, height, thresholds, min, max, decimals, mappings, noValue=noValue, links=links) {
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'value',
        graphMode: if graph then 'area' else 'none',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },

  // Lines over time. thresholdsStyle 'dashed' draws the thresholds as lines (objectives);
  // stack draws series on top of each other (counts by class or status).
  timeseries(title, description, unit, targets, thresholds=$.neutral, width=12, height=8, min=null, max=null, decimals=null, stack=false, bars=false, thresholdsStyle='off', overrides=[], legendCalcs=[], links=[])::
    base('timeseries', title, description, unit, targets, width, height, thresholds, min, max, decimals, overrides=overrides, links=links, custom={
      drawStyle: if bars then 'bars' else 'line',
      lineWidth: 1,
      fillOpacity: if stack || bars then 60 else 10,
      gradientMode: 'none',
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
      thresholdsStyle: { mode: thresholdsStyle },
    }) {
      fieldConfig+: { defaults+: { color: { mode: 'palette-classic' } } },
      options: {
        legend: { displayMode: if legendCalcs == [] then 'list' else 'table', placement: 'bottom', showLegend: true, calcs: legendCalcs },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  // Histogram buckets as a heatmap: `target` must be a query with format 'heatmap' that
  // returns one series per `le` (sum by (le) (rate(…_bucket[$__rate_interval]))).
  heatmap(title, description, unit, target, width=12, height=8, scheme='Oranges')::
    assert target.format == 'heatmap' : 'heatmap "%s" needs a query with format heatmap' % title;
    base('heatmap', title, description, unit, [target], width, height, $.neutral, custom={
      hideFrom: { legend: false, tooltip: false, viz: false },
      scaleDistribution: { type: 'linear' },
    }) {
      options: {
        calculate: false,
        cellGap: 1,
        color: { mode: 'scheme', scheme: scheme, steps: 64, exponent: 0.5, fill: 'dark-orange', reverse: false, scale: 'exponential' },
        exemplars: { color: 'rgba(255,0,255,0.7)' },
        filterValues: { le: 1e-9 },
        legend: { show: true },
        rowsFrame: { layout: 'auto' },
        tooltip: { mode: 'single', yHistogram: true, showColorScale: false },
        yAxis: { axisPlacement: 'left', reverse: false, unit: unit },
      },
    },

  // Rows of labels and values from instant queries. `columns` lists [field, header] pairs in
  // display order; every other field (Time, job, …) is hidden. Several queries are merged on
  // their labels, their values are the fields 'Value #A', 'Value #B', …; one query's is 'Value'.
  // `colored` names fields whose cells take their threshold colour. Overrides, sorting and
  // data links (${__data.fields.<name>}) see the fields under their headers.
  table(title, description, unit, targets, columns, thresholds=$.neutral, width=12, height=8, sortBy=null, links=[], colored=[])::
    local fields = [c[0] for c in columns];
    local header = { [c[0]]: c[1] for c in columns };
    base('table', title, description, unit, targets, width, height, thresholds, links=links, custom={
      align: 'auto',
      cellOptions: { type: 'auto' },
      inspect: false,
    }, overrides=[
      {
        matcher: { id: 'byName', options: header[field] },
        properties: [{ id: 'custom.cellOptions', value: { type: 'color-background', mode: 'basic' } }],
      }
      for field in colored
    ]) {
      options: {
        showHeader: true,
        cellHeight: 'sm',
        footer: { show: false, reducer: ['sum'], countRows: false, fields: '' },
        sortBy: if sortBy == null then [] else [sortBy],
      },
      transformations: [
        { id: 'merge', options: {} },
        { id: 'filterFieldsByName', options: { include: { names: fields } } },
        {
          id: 'organize',
          options: {
            excludeByName: {},
            indexByName: { [fields[i]]: i for i in std.range(0, std.length(fields) - 1) },
            renameByName: { [c[0]]: c[1] for c in columns },
          },
        },
      ],
    },

  // Discrete states over time, one row per series; `mappings` name and colour the values.
  stateTimeline(title, description, targets, mappings, unit='none', width=24, height=5)::
    base('state-timeline', title, description, unit, targets, width, height, $.neutral, mappings=mappings, custom={
      fillOpacity: 80,
      lineWidth: 0,
      hideFrom: { legend: false, tooltip: false, viz: false },
    }) {
      options: {
        mergeValues: true,
        showValue: 'auto',
        alignValue: 'left',
        rowHeight: 0.9,
        legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
        tooltip: { mode: 'single', sort: 'none' },
      },
    },

  // A section heading across the dashboard; not a data panel.
  row(title):: {
    type: 'row',
    title: title,
    collapsed: false,
    panels: [],
    gridPos: { w: 24, h: 1 },
  },
}

// Grafana dashboard assembly: template variables, automatic panel ids and grid layout.
local agency = import 'agency.libsonnet';
local panels = import 'panels.libsonnet';

// Places panels left to right on a 24-column grid, wrapping to a new line when a panel does
// not fit; a line is as tall as its tallest panel, so panels never overlap. A row heading
// starts a new line of its own. Ids are 1, 2, 3, … in order.
local layout(list) =
  local place(state, p) =
    local w = p.gridPos.w;
    local h = p.gridPos.h;
    if p.type == 'row' then
      local y = if state.x == 0 then state.y else state.y + state.lineHeight;
      state {
        x: 0,
        y: y + h,
        lineHeight: 0,
        panels+: [p { gridPos: { x: 0, y: y, w: 24, h: h } }],
      }
    else
      local wrap = state.x + w > 24;
      local x = if wrap then 0 else state.x;
      local y = if wrap then state.y + state.lineHeight else state.y;
      state {
        x: x + w,
        y: y,
        lineHeight: std.max(if wrap then 0 else state.lineHeight, h),
        panels+: [p { gridPos: { x: x, y: y, w: w, h: h } }],
      };
  local placed = std.foldl(place, list, { x: 0, y: 0, lineHeight: 0, panels: [] }).panels;
  [placed[i] { id: i + 1 } for i in std.range(0, std.length(placed) - 1)];

{
  // The Prometheus datasource to read from; every panel and variable uses ${datasource}.
  datasourceVariable:: {
    type: 'datasource',
    name: 'datasource',
    label: 'Data source',
    query: 'prometheus',
    regex: '',
    current: {},
    options: [],
    hide: 0,
    refresh: 1,
    includeAll: false,
    multi: false,
    skipUrlSync: false,
  },

  // A variable filled by a label_values() query. includeAll with allValue '.*' also matches
  // series without the label (a fleet with no `cluster` label), because selectors use =~.
  queryVariable(name, label, query, includeAll=false, multi=false, allValue='.*', hide=0):: {
    type: 'query',
    name: name,
    label: label,
    datasource: panels.datasource,
    definition: query,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    refresh: 2,  // on time range change, so new agents and councils show up
    regex: '',
    sort: 1,
    current: {},
    options: [],
    hide: hide,
    includeAll: includeAll,
    multi: multi,
    skipUrlSync: false,
  } + (if includeAll then { allValue: allValue } else {}),

  // A dashboard of `config` (the mixin's _config). `variables` come after datasource,
  // cluster and job; `panelList` is a flat list of panels and rows, laid out in order.
  new(config, uid, title, description, variables, panelList, tags=[]):: {
    local scope = (agency { _config:: config }).scope,
    uid: uid,
    title: title,
    description: description,
    tags: ['agency-telemetry'] + tags,
    editable: true,
    graphTooltip: 1,  // shared crosshair
    fiscalYearStartMonth: 0,
    liveNow: false,
    refresh: config.dashboardRefresh,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-1h', to: 'now' },
    timepicker: { refresh_intervals: ['5s', '10s', '30s', '1m', '5m', '15m', '1h'] },
    timezone: 'browser',
    weekStart: '',
    // The other Agency dashboards, found by tag, keeping the time range and the variables.
    links: [{
      type: 'dashboards',
      title: 'Agency dashboards',
      tags: ['agency-telemetry'],
      asDropdown: true,
      includeVars: true,
      keepTime: true,
      targetBlank: false,
      icon: 'external link',
      tooltip: '',
      url: '',
    }],
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
        {
          // Critical and emergency Agency alerts as markers on every time series.
          datasource: panels.datasource,
          enable: true,
          hide: false,
          iconColor: 'red',
          name: 'Critical alerts',
          expr: 'ALERTS{%s, severity=~"critical|emergency", %s}' % [agency.firingAlerts, scope],
          step: '30s',
          titleFormat: '{{alertname}}',
          textFormat: '{{severity}} {{alert_type}} {{agent}}{{council}}{{queue}}',
          tagKeys: 'severity,alert_type',
          useValueForTime: false,
        },
      ],
    },
    templating: {
      list: [
        $.datasourceVariable,
        // The variables keep their names whatever the labels are called: links pass them on.
        $.queryVariable(
          'cluster',
          'cluster',
          'label_values(%s, %s)' % [config.dashboardVariableSeries, config.clusterLabel],
          includeAll=true,
          hide=if config.showMultiCluster then 0 else 2,
        ),
        $.queryVariable(
          'job',
          'job',
          'label_values(%s{%s=~"$cluster"}, %s)' % [config.dashboardVariableSeries, config.clusterLabel, config.jobLabel],
        ),
      ] + variables,
    },
    panels: layout(panelList),
  },
}

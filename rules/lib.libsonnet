// PromQL building blocks shared by the recording and alerting rules.
{
  // "without (instance, pod, …, extra…)": aggregates exporter replicas away, keeps the rest.
  without(config, extra=[]):: 'without (%s)' % std.join(', ', config.replicaLabels + extra),

  // A selector with the exporter's matchers, plus extra matchers: sel(c, 'outcome="fp"').
  sel(config, extra=''):: '{%s}' % std.join(',', [config.exporterSelector] + (if extra == '' then [] else [extra])),

  // sum without(replicas + extra) (rate(metric{selector}[window]))
  sumRate(config, metric, window, extra=[], matchers=''):: 'sum %s (rate(%s%s[%s]))' % [
    $.without(config, extra),
    metric,
    $.sel(config, matchers),
    window,
  ],

  // A share of the form 1 - part / whole, kept within 0..1. The two rates are extrapolated
  // each from its own series, so the share of an agent whose every task fails comes out a
  // hair below 0 now and then — no share at all, and one that the health score's `>= 0`
  // guard would then read as "no finished task" and count as perfect.
  share(expr):: 'clamp(%s, 0, 1)' % expr,

  // A value that is set rather than added (capacity, CPU, a queue's depth, an owner's own count
  // of its running tasks) as the exporter replica that heard it last has it. Such values cannot
  // be summed across replicas, and the largest is not the freshest: a replica an agent left an
  // hour ago still holds what it heard then. Each replica stamps every set value with the time
  // it heard it (agency_<owner>_reported_timestamp_seconds{field}); this keeps the value of the
  // replicas with the newest stamp. Where no replica has a stamp for it (a capacity never
  // registered, an agent that never reports its count), `fallback` combines the replicas'
  // values: 'max' for a default, 'sum' for counts kept from starts and ends.
  latest(config, metric, owner, field, fallback='max')::
    local stamp = 'agency_%s_reported_timestamp_seconds%s' % [owner, $.sel(config, 'field="%s"' % field)];
    local R = $.without(config);
    |||
      max %(R)s (
        %(metric)s%(sel)s
        and ignoring (field)
        (%(stamp)s == ignoring (%(replicas)s) group_left () max %(R)s (%(stamp)s))
      )
      or %(fallback)s %(R)s (%(metric)s%(sel)s)
    ||| % {
      R: R,
      metric: metric,
      sel: $.sel(config),
      stamp: stamp,
      replicas: std.join(', ', config.replicaLabels),
      fallback: fallback,
    },

  // The standard deviation of a recorded series over a baseline window, where it is a spread
  // at all: a flat series whose values differ only by floating-point rounding (a P95 of
  // 0.4875 one evaluation, 0.48749999999999993 the next) has a stddev of ~1e-17, and dividing
  // by it turns rounding into z-scores of ±5. Below a billionth of the mean, there is none.
  // The series are never negative (durations, ratios, rates), so the mean is the scale.
  spread(series, window):: '(stddev_over_time(%s[%s]) > 1e-9 * avg_over_time(%s[%s]))' % [series, window, series, window],

  // Signals with a baseline (rules/baseline.libsonnet), by their key in relativeAlerts. A
  // ratio divides by the baseline or `floor`, whichever is larger: the smallest baseline that
  // means anything in the signal's unit, so a queue that is usually empty or a free workload
  // does not divide by zero. quality has no relative alert of its own: the severe tier of
  // AgencyWorkflowQualityLow reads its baseline.
  baselineSignals(config):: {
    costPerTask: { series: 'fleet:agency_workflow_tasks:cost_usd_per_task_rate%s' % config.businessWindow, floor: 1e-6 },
    llmSpend: { series: 'fleet:agency_agent_llm_cost_usd:per_hour_rate%s' % config.businessWindow, floor: 0.01 },
    tokensPerTask: { series: 'agent_type:agency_agent_llm_tokens:per_task_rate%s' % config.businessWindow, floor: 1 },
    queueDepth: { series: 'queue:agency_queue_depth:latest', floor: 1 },
    queueWait: { series: 'queue:agency_queue_wait_seconds:p95_rate%s' % config.agentWindow, floor: 1 },
    formationTime: { series: 'council:agency_council_consensus:formation_seconds_p95_rate%s' % config.councilWindow, floor: 1 },
    quality: { series: 'fleet:agency_workflow_tasks:quality_score_avg_rate%s' % config.businessWindow, floor: 0.01 },
  },
  // The rules recorded for a signal: its baseline (only once ready), whether it is ready (1/0),
  // and the signal divided by its baseline.
  baseline(config, series):: {
    value: '%s_baseline_%s' % [series, config.relativeBaseline],
    ready: '%s_baseline_%s_ready' % [series, config.relativeBaseline],
    ratio: '%s_vs_baseline_%s' % [series, config.relativeBaseline],
  },

  // Every window a tier of multiWindowTiers reads, and `extra` (the rules' usual window).
  tierWindows(config, extra):: std.set(
    [config.multiWindowTiers[t].longWindow for t in std.objectFields(config.multiWindowTiers)]
    + [config.multiWindowTiers[t].shortWindow for t in std.objectFields(config.multiWindowTiers)]
    + [extra]
  ),

  // The condition of one tier of multiWindowTiers: `ratio(window) cond` over the tier's long
  // and short window, with at least minEvents of `counter` (summed, matchers applied) in the
  // long one. The alert's value is the ratio over the long window.
  tierExpr(config, tier, ratio, cond, counter, matchers='', extra=[])::
    local t = config.multiWindowTiers[tier];
    '%(long)s %(cond)s\nand\n%(short)s %(cond)s\nand\nsum %(without)s (increase(%(counter)s%(sel)s[%(window)s])) >= %(min)d' % {
      long: ratio(t.longWindow),
      short: ratio(t.shortWindow),
      cond: cond,
      without: $.without(config, extra),
      counter: counter,
      sel: $.sel(config, matchers),
      window: t.longWindow,
      min: t.minEvents,
    },

  // keep_firing_for (keepFiringFor) for alerts that flap: they hold through a dip instead of
  // notifying anew after it. While held, $value is the last one that met the condition, and
  // the description says so.
  held(config):: if config.keepFiringFor == '' then {} else {
    keep_firing_for: config.keepFiringFor,
    annotations+: {
      description+: ' The value is the latest at which the condition held; the alert stays %s after it last held.' % config.keepFiringFor,
    },
  },

  // The exporter renders bucket bounds as Go does: 5 → "5.0", 0.05 → "0.05".
  le(bound):: if std.floor(bound) == bound then '%d.0' % bound else std.toString(bound),

  // Objective of each configured agent type, and a regex matching none of them.
  latencyObjectives(config):: [
    { agent_type: t, seconds: config.latencyObjectiveSeconds[t] }
    for t in std.objectFields(config.latencyObjectiveSeconds)
  ],
  otherAgentTypes(config):: 'agent_type!~"%s"' % std.join('|', std.objectFields(config.latencyObjectiveSeconds)),

  // Facts about the exporter that rules and dashboards both read, written only here.
  //
  // Owner kinds the exporter tracks (agency_exporter_tracked{kind}) and the limit capping each
  // (agency_exporter_limit{limit}), in the exporter's own order. Must match its owner table.
  exporterLimits:: [
    { kind: 'agent', limit: 'max_agents' },
    { kind: 'council', limit: 'max_councils' },
    { kind: 'queue', limit: 'max_queues' },
    { kind: 'alert', limit: 'max_active_alerts' },
    { kind: 'principle', limit: 'max_principles' },
  ],
  // Refusals for credentials, as regexes of the `reason` label: ingest batches with a missing,
  // unknown or out-of-scope token (agency_exporter_requests_rejected_total), and requests the
  // web configuration refuses for a wrong password or client certificate
  // (agency_exporter_web_rejected_total). AgencyExporterAuthFailures alerts on these;
  // AgencyExporterRejectingEvents on every other ingest refusal.
  authReasons:: 'unauthorized|forbidden',
  webAuthReasons:: 'basic_auth|client_san',

  // Each SLO's error ratio over a window: recorded by slo.libsonnet, alerted on by
  // alerts/slo.libsonnet. availability: share of workflow tasks that fail; latency: share of
  // an agent type's tasks slower than its objective.
  sloErrorRatio:: {
    availability(window):: 'fleet:agency_workflow_tasks:error_ratio_rate%s' % window,
    latency(window):: 'agent_type:agency_agent_task_duration_seconds:slow_ratio_rate%s' % window,
  },
}

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

// Service level objectives: error ratios over every window the burn-rate tiers read, and the
// error budget remaining. The burn-rate alerts on them are in alerts/slo.libsonnet.
//   availability: workflow tasks that complete (business events);
//   latency: agent tasks that finish under their agent type's objective (histogram buckets).
local lib = import 'lib.libsonnet';

{
  local c = $._config,
  local allTiers = c.burnRateTiers,
  local windows = std.set([t.longWindow for t in allTiers] + [t.shortWindow for t in allTiers] + [c.sloPeriod, c.agentWindow]),
  local rule(record, expr) = { record: record, expr: std.stripChars(expr, '\n') },

  // Share of an agent type's tasks slower than its objective: 1 - (bucket at objective / all).
  local slowRatio(window, typeMatcher, objective) =
    lib.share('1 - %s / %s' % [
      lib.sumRate(c, 'agency_agent_task_duration_seconds_bucket', window, ['agent', 'le'], '%s,le="%s"' % [typeMatcher, lib.le(objective)]),
      lib.sumRate(c, 'agency_agent_task_duration_seconds_count', window, ['agent'], typeMatcher),
    ]),
  local latencyExpr(window) = std.join('\nor\n', [
    slowRatio(window, 'agent_type="%s"' % o.agent_type, o.seconds)
    for o in lib.latencyObjectives(c)
  ] + [slowRatio(window, lib.otherAgentTypes(c), c.defaultLatencyObjectiveSeconds)]),

  local slos = [
    {
      name: 'availability',
      expr(window): '%s / %s' % [
        lib.sumRate(c, 'agency_workflow_task_failures_total', window),
        lib.sumRate(c, 'agency_workflow_tasks_total', window),
      ],
      budget: 'fleet:agency_workflow_tasks:error_budget_remaining_ratio',
    },
    {
      name: 'latency',
      expr: latencyExpr,
      budget: 'agent_type:agency_agent_task_duration_seconds:error_budget_remaining_ratio',
    },
  ],

  // Error ratios and budgets are recorded whether or not an SLO's alerts are enabled:
  // dashboards and AgencyWorkflowFailing read them.
  prometheusRules+:: {
    groups+: [
      {
        name: 'agency-slo-%s.rules' % s.name,
        local ratio = lib.sloErrorRatio[s.name],
        rules: [rule(ratio(window), s.expr(window)) for window in windows] + [
          rule(s.budget, '1 - %s / %g' % [ratio(c.sloPeriod), 1 - c.slos[s.name].objective]),
        ],
      }
      for s in slos
    ],
  },
}

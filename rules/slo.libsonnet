// Service level objectives: error ratios over every window the burn-rate tiers read, error
// budget remaining, and one multi-window multi-burn-rate alert per enabled tier.
//   availability: workflow tasks that complete (business events);
//   latency: agent tasks that finish under their agent type's objective (histogram buckets).
local lib = import 'lib.libsonnet';

{
  local c = $._config,
  local R = lib.without(c),
  local tiers = [t for t in c.burnRateTiers if t.enabled],
  local allTiers = c.burnRateTiers,
  local windows = std.set([t.longWindow for t in allTiers] + [t.shortWindow for t in allTiers] + [c.sloPeriod, c.agentWindow]),
  local rule(record, expr) = { record: record, expr: std.stripChars(expr, '\n') },

  local availabilityRatio(window) = 'fleet:agency_workflow_tasks:error_ratio_rate%s' % window,
  local latencyRatio(window) = 'agent_type:agency_agent_task_duration_seconds:slow_ratio_rate%s' % window,

  // Share of an agent type's tasks slower than its objective: 1 - (bucket at objective / all).
  local slowRatio(window, typeMatcher, objective) =
    '(1 - %s / %s)' % [
      lib.sumRate(c, 'agency_agent_task_duration_seconds_bucket', window, ['agent', 'le'], '%s,le="%s"' % [typeMatcher, lib.le(objective)]),
      lib.sumRate(c, 'agency_agent_task_duration_seconds_count', window, ['agent'], typeMatcher),
    ],
  local latencyExpr(window) = std.join('\nor\n', [
    slowRatio(window, 'agent_type="%s"' % o.agent_type, o.seconds)
    for o in lib.latencyObjectives(c)
  ] + [slowRatio(window, lib.otherAgentTypes(c), c.defaultLatencyObjectiveSeconds)]),

  local slos = [
    {
      name: 'availability',
      enabled: c.slos.availability.enabled,
      objective: c.slos.availability.objective,
      ratio: availabilityRatio,
      expr(window): '%s / %s' % [
        lib.sumRate(c, 'agency_workflow_task_failures_total', window),
        lib.sumRate(c, 'agency_workflow_tasks_total', window),
      ],
      budget: 'fleet:agency_workflow_tasks:error_budget_remaining_ratio',
      alert: 'AgencyAvailabilityBudgetBurn',
      alertType: 'system_health',
      summary: 'Workflow tasks are failing fast enough to exhaust the availability error budget.',
      description: 'Workflow task error ratio is {{ $value | humanizePercentage }} over %s, %g times the rate the %s%% objective allows.',
      dashboard: 'business',
      vars: '',
    },
    {
      name: 'latency',
      enabled: c.slos.latency.enabled,
      objective: c.slos.latency.objective,
      ratio: latencyRatio,
      expr: latencyExpr,
      budget: 'agent_type:agency_agent_task_duration_seconds:error_budget_remaining_ratio',
      alert: 'AgencyLatencyBudgetBurn',
      alertType: 'agent_performance',
      summary: 'Tasks of an agent type are too often slower than its latency objective.',
      description: '{{ $value | humanizePercentage }} of {{ $labels.agent_type }} tasks over %s were slower than the objective, %g times the rate the %s%% objective allows.',
      dashboard: 'agent',
      vars: '?var-agent_type={{ $labels.agent_type }}',
    },
  ],
  local enabled = [s for s in slos if s.enabled],

  // Error ratios and budgets are recorded whether or not an SLO's alerts are enabled:
  // dashboards and AgencyWorkflowFailing read them.
  prometheusRules+:: {
    groups+: [
      {
        name: 'agency-slo-%s.rules' % s.name,
        rules: [rule(s.ratio(window), s.expr(window)) for window in windows] + [
          rule(s.budget, '1 - %s / %g' % [s.ratio(c.sloPeriod), 1 - s.objective]),
        ],
      }
      for s in slos
    ],
  },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'agency-slo-%s.alerts' % s.name,
        rules: [
          {
            local threshold = t.factor * (1 - s.objective),
            alert: s.alert,
            expr: '%s > %g\nand\n%s > %g' % [s.ratio(t.longWindow), threshold, s.ratio(t.shortWindow), threshold],
            'for': t['for'],
            labels: {
              severity: t.severity,
              alert_type: s.alertType,
              slo: s.name,
              burn_tier: t.name,
              burn_window: t.longWindow,
            },
            annotations: {
              summary: s.summary,
              description: s.description % [t.longWindow, t.factor, std.toString(s.objective * 100)],
              runbook_url: '%s#%s' % [c.runbookUrl, std.asciiLower(s.alert)],
              dashboard_url: '%s/d/%s%s' % [c.grafanaUrl, c.dashboardUids[s.dashboard], s.vars],
            },
          }
          for t in tiers
        ],
      }
      for s in enabled
    ],
  },
}

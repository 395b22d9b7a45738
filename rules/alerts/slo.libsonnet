// Multi-window multi-burn-rate alerts, one rule per enabled tier of `burnRateTiers` for each
// enabled SLO. They read the error ratios rules/slo.libsonnet records. Links are added by
// alerts.libsonnet from `dashboard`.
local lib = import '../lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local tiers = [t for t in c.burnRateTiers if t.enabled],

    // What each SLO's alert says; its objective and switch are in _config.slos.
    local slos = [
      {
        name: 'availability',
        alert: 'AgencyAvailabilityBudgetBurn',
        alertType: 'system_health',
        summary: 'Workflow tasks are failing fast enough to exhaust the availability error budget.',
        description: 'Workflow task error ratio is {{ $value | humanizePercentage }} over %s, %g times the rate the %s%% objective allows.',
        dashboard: 'business',
      },
      {
        name: 'latency',
        alert: 'AgencyLatencyBudgetBurn',
        alertType: 'agent_performance',
        summary: 'Tasks of an agent type are too often slower than its latency objective.',
        description: '{{ $value | humanizePercentage }} of {{ $labels.agent_type }} tasks over %s were slower than the objective, %g times the rate the %s%% objective allows.',
        dashboard: 'agentType',
      },
    ],

    groups+: [
      {
        name: 'agency-slo-%s.alerts' % s.name,
        rules: [
          {
            local objective = c.slos[s.name].objective,
            local threshold = t.factor * (1 - objective),
            local ratio = lib.sloErrorRatio[s.name],
            alert: s.alert,
            expr: '%s > %g\nand\n%s > %g' % [ratio(t.longWindow), threshold, ratio(t.shortWindow), threshold],
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
              description: s.description % [t.longWindow, t.factor, std.toString(objective * 100)],
            },
            dashboard:: s.dashboard,
          }
          for t in tiers
        ],
      }
      for s in slos
      if c.slos[s.name].enabled
    ],
  },
}

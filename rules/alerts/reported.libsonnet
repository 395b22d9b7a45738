// Alerts agents raise themselves (`alert` events), routed like the mixin's own. Links are
// added by alerts.libsonnet from `dashboard`.
local lib = import '../lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,

    groups+: [
      {
        name: 'agency-reported.alerts',
        rules: [
          {
            // No labels: the severity and alert_type the agent reported are the series' own.
            alert: 'AgencyAgentReportedAlert',
            expr: 'max %s (agency_reported_alert%s) == 1' % [lib.without(c), lib.sel(c)],
            'for': c['for'].reportedAlert,
            annotations: {
              summary: 'An agent reported an alert.',
              description: '{{ $labels.message }} (alert {{ $labels.alert_id }}; affected agents: {{ $labels.affected_agents }})',
            },
            dashboard:: 'fleet',
          },
        ],
      },
    ],
  },
}

// Alerting rules, one file per component, in the order of rules/agency-alerts.yml. Every
// alert carries severity and alert_type (but AgencyAgentReportedAlert, whose series bring
// their own), a fixed summary and a templated description. The links are added here, once,
// to every rule: runbook_url to the alert's section of docs/runbook.md, dashboard_url to the
// dashboard its hidden `dashboard` field names.
(import 'slo.libsonnet') +
(import 'agent.libsonnet') +
(import 'fleet.libsonnet') +
(import 'council.libsonnet') +
(import 'exporter.libsonnet') +
(import 'reported.libsonnet') +
(import 'llm.libsonnet') +
(import 'baseline.libsonnet') +
{
  prometheusAlerts+:: {
    local c = $._config,
    local url(uid, vars='') = '%s/d/%s%s' % [c.grafanaUrl, c.dashboardUids[uid], vars],
    // Dashboard links an alert may name, with the variables its labels fill in.
    local dashboards = {
      agent: url('agent', '?var-agent_type={{ $labels.agent_type }}&var-agent={{ $labels.agent }}'),
      agentType: url('agent', '?var-agent_type={{ $labels.agent_type }}'),
      fleet: url('fleet'),
      council: url('council', '?var-council={{ $labels.council }}'),
      business: url('business'),
      exporter: url('exporter'),
      llm: url('llm'),
      llmModel: url('llm', '?var-provider={{ $labels.provider }}&var-model={{ $labels.model }}'),
      llmTool: url('llm', '?var-tool={{ $labels.tool }}'),
    },
    local withLinks(rule) = rule {
      annotations+: {
        runbook_url: '%s#%s' % [c.runbookUrl, std.asciiLower(rule.alert)],
        dashboard_url: dashboards[rule.dashboard],
      },
    },

    groups: [
      group { rules: [withLinks(rule) for rule in group.rules] }
      for group in super.groups
    ],
  },
}

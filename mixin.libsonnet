// The Agency Telemetry monitoring mixin: recording rules, alerts and dashboards from one config.
//   prometheusRules    recording rules (rules/agency-rules.yml)
//   prometheusAlerts   alerting rules (rules/agency-alerts.yml)
//   grafanaDashboards  Grafana dashboards, by file name (dashboards/*.json)
(import 'config.libsonnet') +
(import 'rules/recording.libsonnet') +
(import 'rules/slo.libsonnet') +
(import 'rules/llm.libsonnet') +
(import 'rules/baseline.libsonnet') +
(import 'rules/alerts/alerts.libsonnet') +
{
  grafanaDashboards+:: {
    local c = $._config,
    'agency-fleet.json': (import 'dashboards/agency-fleet.libsonnet')(c),
    'agency-agent.json': (import 'dashboards/agency-agent.libsonnet')(c),
    'agency-council.json': (import 'dashboards/agency-council.libsonnet')(c),
    'agency-business.json': (import 'dashboards/agency-business.libsonnet')(c),
    'agency-exporter.json': (import 'dashboards/agency-exporter.libsonnet')(c),
    'agency-llm.json': (import 'dashboards/agency-llm.libsonnet')(c),
  },
}

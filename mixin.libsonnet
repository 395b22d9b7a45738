// The Agency Telemetry monitoring mixin: recording rules, alerts and dashboards from one config.
//   prometheusRules    recording rules (rules/agency-rules.yml)
//   prometheusAlerts   alerting rules (rules/agency-alerts.yml)
//   grafanaDashboards  Grafana dashboards, by file name
(import 'config.libsonnet') +
(import 'rules/recording.libsonnet') +
(import 'rules/slo.libsonnet') +
(import 'rules/alerts.libsonnet') +
{
  grafanaDashboards+:: {},
}

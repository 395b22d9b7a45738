// prometheus-operator's PrometheusRule: the mixin's recording and alerting groups, exactly as
// rules/agency-rules.yml and rules/agency-alerts.yml hold them.
{
  local k = $._kubernetes,

  kubernetes+:: {
    prometheusRule: {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: k.metadata(k.name + '-rules', k.prometheusSelectorLabels),
      spec: { groups: $.prometheusRules.groups + $.prometheusAlerts.groups },
    },
  },
}

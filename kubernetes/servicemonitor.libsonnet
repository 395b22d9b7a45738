// prometheus-operator's ServiceMonitor: scrape every replica through the metrics Service, with
// the `job` label the mixin's rules select (the Services' app.kubernetes.io/name).
{
  local k = $._kubernetes,

  kubernetes+:: {
    serviceMonitor: {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: k.metadata(k.name, k.prometheusSelectorLabels),
      spec: {
        jobLabel: 'app.kubernetes.io/name',
        // The metrics Service only: the ingest Service has the same pods, and scraping both
        // would count every series twice.
        selector: { matchLabels: $.kubernetes.metricsService.metadata.labels },
        endpoints: [{
          port: k.portName,
          path: '/metrics',
          interval: '%ds' % k.scrapeIntervalSeconds,
          scheme: std.asciiLower(k.scheme),
        } + (if k.webTls then { tlsConfig: k.serviceMonitorTlsConfig } else {})],
      },
    },
  },
}

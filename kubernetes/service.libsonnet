// Two Services over the same pods. `<name>` is the one agents post to: a stopping replica
// leaves it as soon as it is not ready. `<name>-metrics` is the one Prometheus scrapes through
// the ServiceMonitor: headless, and publishing not-ready addresses, so a stopping replica stays
// a scrape target for its shutdown_grace and its final values are scraped. It also governs the
// StatefulSet's pod names with persistence.
{
  local k = $._kubernetes,
  local port = { name: k.portName, port: k.port, targetPort: k.portName, protocol: 'TCP' },

  kubernetes+:: {
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: k.metadata(k.name),
      spec: {
        type: 'ClusterIP',
        selector: k.selectorLabels,
        ports: [port],
      },
    },
    metricsService: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: k.metadata(k.metricsServiceName, { 'app.kubernetes.io/component': 'metrics' }),
      spec: {
        clusterIP: 'None',
        publishNotReadyAddresses: true,
        selector: k.selectorLabels,
        ports: [port],
      },
    },
  },
}

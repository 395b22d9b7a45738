// What every component shares: labels, metadata, paths inside the container, and the timings
// derived from the knobs in config.libsonnet.
{
  _kubernetes+:: {
    local k = self,

    // The exporter waits this long for a last scrape after ingest stops (shutdown_grace): one
    // scrape interval and the slack, so a replica stopping just after a scrape is still scraped.
    shutdownGraceSeconds: k.scrapeIntervalSeconds + k.shutdownGraceSlackSeconds,
    // SIGTERM to exit: ingest drains (shutdown_timeout), the last scrape (shutdown_grace), aiohttp
    // closes its handlers (shutdown_timeout again), then the slack. The kubelet's SIGKILL must
    // come after all of them or the final values are never scraped (nor snapshotted).
    terminationGracePeriodSeconds:
      2 * k.shutdownTimeoutSeconds + k.shutdownGraceSeconds + k.terminationSlackSeconds,

    selectorLabels: {
      'app.kubernetes.io/name': k.name,
      'app.kubernetes.io/instance': k.name,
    },
    labels: k.selectorLabels {
      'app.kubernetes.io/component': 'exporter',
      'app.kubernetes.io/part-of': 'agency-telemetry',
    },
    metadata(name, labels={}):: {
      name: name,
      namespace: k.namespace,
      labels: k.labels + labels,
    },

    paths: {
      configDir: '/etc/agency-telemetry/config',
      configFile: self.configDir + '/config.yml',
      ingestTokensDir: '/etc/agency-telemetry/ingest-tokens',
      webConfigDir: '/etc/agency-telemetry/web',
      // The Dockerfile creates this directory for the exporter's user (uid 10001).
      stateDir: '/var/lib/agency-telemetry',
    },
    // The Dockerfile's user and group.
    uid: 10001,
    scheme: if k.webTls then 'HTTPS' else 'HTTP',
    portName: 'http',
    metricsServiceName: k.name + '-metrics',
  },
}

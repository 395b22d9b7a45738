// The knobs of the Kubernetes manifests. Override any of them from your own Jsonnet:
//   (import 'kubernetes/main.libsonnet') + { _kubernetes+:: { replicas: 3 } }
// and render `kubernetesManifests` (scripts/generate.py writes kubernetes/manifests/ from it).
{
  _kubernetes+:: {
    // Namespace of every object. Create it first (`kubectl create namespace agency-telemetry`);
    // the manifests do not own it, so deleting them never deletes what else lives there.
    namespace: 'agency-telemetry',
    // Name of every object, the app.kubernetes.io/name label and, through the ServiceMonitor's
    // jobLabel, the `job` label of the scraped series. The mixin's exporterSelector must select
    // that job (main.libsonnet asserts it), so change both together.
    name: 'agency-telemetry',
    // The image built from this repository's Dockerfile (`docker build -t agency-telemetry:0.1.0 .`),
    // pushed where the cluster can pull it. Pin a tag (or a digest) so every replica runs the
    // same build; bump it with the package version.
    image: 'agency-telemetry:0.1.0',
    imagePullPolicy: 'IfNotPresent',
    // Replicas behind the ingest Service. Every series adds up across replicas (the rules
    // aggregate `without` the pod labels), so scale by load: one replica serves one machine's
    // worth of agents (README, Performance). Two keep ingest up through a rolling update.
    replicas: 2,
    // Requests size the scheduling; the memory limit stops a runaway process before it starts
    // the node swapping. Memory grows with agents (~35 series each, limits.max_agents) and with
    // bodies in flight (exporterConfig.limits.max_concurrent_ingest × max_body_size), so raise
    // the limit with either. No CPU limit: throttling a scrape makes it late, not cheaper.
    resources: {
      requests: { cpu: '100m', memory: '256Mi' },
      limits: { memory: '1Gi' },
    },
    // Port the exporter listens on, in the container and on the Services.
    port: 9477,
    // How often Prometheus scrapes each replica (the ServiceMonitor's interval): the product's
    // collection_interval_seconds. The exporter's shutdown_grace is derived from it below.
    scrapeIntervalSeconds: 30,
    // How long a stopping replica keeps serving /metrics beyond one scrape interval, so the
    // scrape that collects its final values can be late (a slow Prometheus, a retried scrape)
    // and still come before the process exits.
    shutdownGraceSlackSeconds: 10,
    // How long ingest requests in flight may take to finish on SIGTERM (shutdown_timeout).
    shutdownTimeoutSeconds: 10,
    // Time the pod gets on top of shutdown_timeout + shutdown_grace before the kubelet kills it:
    // the final snapshot, aiohttp closing its connections, the process exiting.
    terminationSlackSeconds: 15,
    // Settings of the exporter's configuration file (README, Configuration), merged over the
    // ones these manifests need (listen, shutdown, persistence and the Secrets' files).
    exporterConfig: {
      limits: {
        // Bodies in flight at once × limits.max_body_size (16 MiB) bounds their memory: 16
        // keeps it at a quarter of the 1Gi limit above (the exporter's default, 64, would not fit).
        max_concurrent_ingest: 16,
      },
    },

    // State across restarts (persistence.file). Off: a Deployment; every restart starts the
    // replica's counters at zero (rate() reads it as a reset). On: a StatefulSet whose every
    // replica gets its own PersistentVolumeClaim (a snapshot is one process's state and two
    // processes must never share it). Needs a StorageClass that provisions ReadWriteOnce volumes.
    persistence: {
      enabled: false,
      // The journal grows up to 64 MiB between snapshots, and a snapshot of 10,000 agents is a
      // few MiB: 1Gi leaves room for both with a margin.
      size: '1Gi',
      // null: the cluster's default StorageClass.
      storageClass: null,
      // Seconds between full snapshots (persistence.interval); the journal covers the rest.
      intervalSeconds: 60,
    },

    // Secrets the user creates (README, Kubernetes), referenced here by name only; null leaves
    // the setting out. The ingest tokens Secret holds tokens.yml and the token files it names
    // (every key becomes a file in one directory, so `token_file: orchestrator.token` works).
    // On by default: without tokens anyone who can reach the port forges events.
    ingestTokensSecret: 'agency-telemetry-ingest-tokens',
    // The web configuration Secret holds web.yml and the certificate and key files it names
    // (TLS, basic auth). Off by default, because it changes how Prometheus must scrape: set
    // webTls with it when web.yml has tls_server_config, and see the README for basic auth.
    webConfigSecret: null,
    webTls: false,
    // With webTls: how Prometheus checks the exporter's certificate (the ServiceMonitor's
    // tlsConfig, prometheus-operator's SafeTLSConfig: ca, cert, keySecret, serverName…).
    serviceMonitorTlsConfig: { serverName: 'agency-telemetry' },

    // Labels the Prometheus resource's serviceMonitorSelector and ruleSelector match (e.g.
    // { release: 'kube-prometheus-stack' } for that chart). Empty: a Prometheus that selects
    // every ServiceMonitor and PrometheusRule (kube-prometheus's default) picks them up.
    prometheusSelectorLabels: {},
    // The label and value Grafana's dashboard sidecar looks for on ConfigMaps (the Grafana
    // chart's sidecar.dashboards.label and labelValue defaults).
    grafanaDashboardLabel: { grafana_dashboard: '1' },
    // Annotations on the dashboard ConfigMaps, e.g. { grafana_folder: 'Agency' } for a sidecar
    // configured with folderAnnotation.
    grafanaDashboardAnnotations: {},

    // Who may open the port (NetworkPolicy `from` peers). Prometheus scrapes it; agents post
    // events and OTLP to it. Defaults: Prometheus pods of the `monitoring` namespace (where
    // kube-prometheus and the kube-prometheus-stack chart put it) and every pod of this
    // namespace. Put your agents' namespace or pod labels here.
    networkPolicy: {
      enabled: true,
      prometheusPeers: [{
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
      }],
      ingestPeers: [{ podSelector: {} }],
    },

    // Voluntary disruptions (node drains, cluster upgrades) take at most this many replicas at
    // once. 1 lets a drain go on with any replica count; minAvailable would block a drain
    // forever with one replica.
    maxUnavailable: 1,
  },
}

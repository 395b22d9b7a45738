// The exporter's pods: a Deployment, or with persistence a StatefulSet whose every replica
// gets its own PersistentVolumeClaim (a snapshot and its journal are one process's state).
{
  local k = $._kubernetes,

  local probe(path, period, failures) = {
    httpGet: { path: path, port: k.portName, scheme: k.scheme },
    periodSeconds: period,
    timeoutSeconds: 3,
    failureThreshold: failures,
  },

  local secretVolume(name, secret) = {
    name: name,
    secret: { secretName: secret, defaultMode: std.parseOctal('0440') },
  },

  // Volume name and mount path of everything mounted; the state volume is the claim template's
  // with persistence, and nothing without (no path but /tmp is written then).
  local mounts = [
                   { name: 'config', mountPath: k.paths.configDir, readOnly: true },
                   // The web configuration's inline PEM keys are written to private temporary files.
                   { name: 'tmp', mountPath: '/tmp' },
                 ] + (if k.persistence.enabled then [{ name: 'state', mountPath: k.paths.stateDir }] else [])
                 + (if k.ingestTokensSecret != null then [
                      { name: 'ingest-tokens', mountPath: k.paths.ingestTokensDir, readOnly: true },
                    ] else [])
                 + (if k.webConfigSecret != null then [
                      { name: 'web-config', mountPath: k.paths.webConfigDir, readOnly: true },
                    ] else []),

  local volumes = [
                    { name: 'config', configMap: { name: $.kubernetes.configMap.metadata.name } },
                    { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
                  ] + (if k.ingestTokensSecret != null then [secretVolume('ingest-tokens', k.ingestTokensSecret)] else [])
                  + (if k.webConfigSecret != null then [secretVolume('web-config', k.webConfigSecret)] else []),

  local container = {
    name: 'exporter',
    image: k.image,
    imagePullPolicy: k.imagePullPolicy,
    args: ['agency-telemetry', 'serve', '--config', k.paths.configFile],
    ports: [{ name: k.portName, containerPort: k.port, protocol: 'TCP' }],
    // A restore at start (persistence) comes before the listener: up to two minutes here.
    startupProbe: probe('/healthz', 2, 60),
    livenessProbe: probe('/healthz', 10, 3),
    // 503 from the moment SIGTERM stops ingest.
    readinessProbe: probe('/readyz', 5, 1),
    resources: k.resources,
    volumeMounts: mounts,
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    },
  },

  local podTemplate = {
    metadata: {
      labels: k.labels,
      // A new configuration file rolls the pods: the exporter reads it only at start.
      annotations: { 'agency-telemetry/config-md5': std.md5(k.exporterConfigText) },
    },
    spec: {
      // The exporter never talks to the Kubernetes API.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: k.terminationGracePeriodSeconds,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: k.uid,
        runAsGroup: k.uid,
        // The state volume (and the Secrets' files, mode 0440) readable and writable by the
        // exporter's group.
        fsGroup: k.uid,
        fsGroupChangePolicy: 'OnRootMismatch',
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [container],
      volumes: volumes,
    },
  },

  local stateClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'state', labels: k.selectorLabels },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: k.persistence.size } },
    } + (if k.persistence.storageClass != null then { storageClassName: k.persistence.storageClass } else {}),
  },

  kubernetes+:: {
    [if !k.persistence.enabled then 'deployment']: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: k.metadata(k.name),
      spec: {
        replicas: k.replicas,
        selector: { matchLabels: k.selectorLabels },
        // One replica at a time, and a new one ready before an old one stops taking events.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: podTemplate,
      },
    },
    [if k.persistence.enabled then 'statefulSet']: {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: k.metadata(k.name),
      spec: {
        replicas: k.replicas,
        selector: { matchLabels: k.selectorLabels },
        serviceName: k.metricsServiceName,
        // Replicas hold separate state; none waits for another to start or stop.
        podManagementPolicy: 'Parallel',
        updateStrategy: { type: 'RollingUpdate' },
        // A replica scaled away keeps its claim: scaled back, it restores its counters.
        persistentVolumeClaimRetentionPolicy: { whenScaled: 'Retain', whenDeleted: 'Retain' },
        template: podTemplate,
        volumeClaimTemplates: [stateClaim],
      },
    },
  },
}

// The Kubernetes manifests of the exporter and the mixin, as kube-prometheus builds its own:
//   kubernetes       every object, by component (hidden)
//   kubernetesManifests  file name → object, what scripts/generate.py writes to manifests/
// The PrometheusRule and the dashboard ConfigMaps hold what the mixin renders, so overriding
// the mixin's _config here changes them too:
//   (import 'kubernetes/main.libsonnet') + {
//     _config+:: { exporterSelector: 'job="agents"' },
//     _kubernetes+:: { name: 'agents', persistence+: { enabled: true } },
//   }
(import '../mixin.libsonnet') +
(import 'config.libsonnet') +
(import 'common.libsonnet') +
(import 'configmap.libsonnet') +
(import 'workload.libsonnet') +
(import 'service.libsonnet') +
(import 'servicemonitor.libsonnet') +
(import 'prometheusrule.libsonnet') +
(import 'dashboards.libsonnet') +
(import 'pdb.libsonnet') +
(import 'networkpolicy.libsonnet') +
{
  local k = $._kubernetes,
  local jobSelector = '%s="%s"' % [$._config.jobLabel, k.name],
  assert std.length(std.findSubstr(jobSelector, $._config.exporterSelector)) > 0 :
         "the ServiceMonitor gives the series %s, which the mixin's exporterSelector (%s) does not select"
         % [jobSelector, $._config.exporterSelector],
  assert k.terminationGracePeriodSeconds > 2 * k.shutdownTimeoutSeconds + k.shutdownGraceSeconds :
         'terminationGracePeriodSeconds must leave the exporter its whole shutdown',

  // One file per object, named after its component in kebab case (metricsService:
  // metrics-service.yaml); the dashboards as dashboard-<dashboard>.yaml.
  local kebab(name) = std.join('', [
    if std.asciiUpper(c) == c && std.asciiLower(c) != c then '-' + std.asciiLower(c) else c
    for c in std.stringChars(name)
  ]),
  kubernetesManifests:: {
    [kebab(key) + '.yaml']: $.kubernetes[key]
    for key in std.objectFields($.kubernetes)
    if key != 'dashboards'
  } + {
    ['dashboard-%s.yaml' % name]: $.kubernetes.dashboards[name]
    for name in std.objectFields($.kubernetes.dashboards)
  },
}

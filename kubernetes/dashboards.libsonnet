// One ConfigMap per dashboard, labelled for Grafana's dashboard sidecar, which loads every
// ConfigMap carrying the label. One each keeps every ConfigMap far below the 1 MiB limit and
// `kubectl apply`'s 256 KiB last-applied annotation.
{
  local k = $._kubernetes,

  kubernetes+:: {
    dashboards: {
      [std.strReplace(file, '.json', '')]: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: k.metadata(k.name + '-dashboard-' + std.strReplace(file, '.json', ''), k.grafanaDashboardLabel)
                  + (if k.grafanaDashboardAnnotations != {} then { annotations: k.grafanaDashboardAnnotations } else {}),
        // Compact JSON: std.toString is native, std.manifestJsonEx takes 15 s a dashboard.
        // dashboards/*.json hold the same dashboards pretty-printed.
        data: { [file]: std.toString($.grafanaDashboards[file]) + '\n' },
      }
      for file in std.objectFields($.grafanaDashboards)
    },
  },
}

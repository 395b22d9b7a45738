// Alerts on the exporter itself: scrapes, refused events and credentials, limits, reloads and
// persistence.
// Links are added by alerts.libsonnet from `dashboard`.
local lib = import '../lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local t = c.thresholds,
    local f = c['for'],
    local s = c.severities,
    local w = c.agentWindow,

    groups+: [
      {
        name: 'agency-exporter.alerts',
        rules: [
          {
            alert: 'AgencyExporterDown',
            expr: 'up%s == 0 or absent(up%s)' % [lib.sel(c), lib.sel(c)],
            'for': f.exporterDown,
            labels: { severity: s.exporterDown, alert_type: 'system_health' },
            annotations: {
              summary: 'Prometheus cannot scrape the Agency Telemetry exporter.',
              description: 'The exporter {{ with $labels.instance }}{{ . }}{{ else }}(no target found){{ end }} of job {{ $labels.job }} has not been scraped successfully for %s; agent metrics are stale.' % f.exporterDown,
            },
            dashboard:: 'exporter',
          },
          {
            // Refusals for credentials are AgencyExporterAuthFailures (security), not this.
            alert: 'AgencyExporterRejectingEvents',
            expr: '%s > 0' % lib.sumRate(c, 'agency_exporter_requests_rejected_total', w, ['reason'], 'reason!~"%s"' % lib.authReasons),
            'for': f.exporterRejecting,
            labels: { severity: s.exporterRejecting, alert_type: 'system_health' },
            annotations: {
              summary: 'The exporter keeps rejecting event batches.',
              description: 'The exporter rejected {{ $value | printf "%%.2f" }} requests per second over the last %s; those events are lost unless the clients resend them.' % w,
            },
            dashboard:: 'exporter',
          },
          {
            // OTLP clients cannot fix part of a request, so the exporter answers 200 with
            // partial_success for items it cannot use; SDKs drop that answer unlogged.
            alert: 'AgencyExporterOtlpRejecting',
            expr: '%s > 0' % lib.sumRate(c, 'agency_exporter_otlp_items_total', w, ['outcome'], 'outcome="rejected"'),
            'for': f.exporterRejecting,
            labels: { severity: s.exporterRejecting, alert_type: 'system_health' },
            annotations: {
              summary: 'The exporter keeps rejecting OTLP spans or data points.',
              description: 'The exporter rejected {{ $value | printf "%%.2f" }} OTLP {{ $labels.signal }} items per second over the last %s in partial-success answers; OpenTelemetry SDKs do not report those, so the items are lost without a trace on the client.' % w,
            },
            dashboard:: 'exporter',
          },
          {
            alert: 'AgencyExporterLimitNear',
            expr: std.join('\nor\n', [
              '(agency_exporter_tracked%s / ignoring (kind, limit) group_left agency_exporter_limit%s) > %g' % [
                lib.sel(c, 'kind="%s"' % owner.kind),
                lib.sel(c, 'limit="%s"' % owner.limit),
                t.exporterLimitRatio,
              ]
              for owner in lib.exporterLimits
            ]),
            'for': f.resources,
            labels: { severity: s.exporterLimit, alert_type: 'system_health' },
            annotations: {
              summary: 'The exporter is close to a configured limit.',
              description: 'Exporter {{ $labels.instance }} tracks {{ $value | humanizePercentage }} of its limit for {{ $labels.kind }}s; past it, new ones are rejected with 429.',
            },
            dashboard:: 'exporter',
          },
          {
            alert: 'AgencyExporterAuthFailures',
            expr: 'sum %s (\n  rate(agency_exporter_requests_rejected_total%s[%s])\n  or\n  rate(agency_exporter_web_rejected_total%s[%s])\n) > 0' % [
              lib.without(c, ['reason']),
              lib.sel(c, 'reason=~"%s"' % lib.authReasons),
              w,
              lib.sel(c, 'reason=~"%s"' % lib.webAuthReasons),
              w,
            ],
            'for': f.exporterAuth,
            labels: { severity: s.exporterAuth, alert_type: 'security_violation' },
            annotations: {
              summary: 'The exporter keeps refusing requests for their credentials.',
              description: 'The exporter refused {{ $value | printf "%%.2f" }} requests per second over the last %s for a missing, unknown or out-of-scope token, a wrong password or a client certificate it does not allow: a client holds an old credential, or someone is trying to write or read metrics they may not.' % w,
            },
            dashboard:: 'exporter',
          },
          {
            alert: 'AgencyExporterReloadFailed',
            expr: 'agency_exporter_reload_success%s == 0' % lib.sel(c),
            'for': f.exporterReload,
            labels: { severity: s.exporterReload, alert_type: 'system_health' },
            annotations: {
              summary: 'The exporter cannot reload a changed security file.',
              description: 'Exporter {{ $labels.instance }} could not reload its {{ $labels.file }} file; it keeps the previous settings (old certificates or tokens) and would refuse to start with the file as it is.',
            },
            dashboard:: 'exporter',
          },
          {
            // A failing disk never stops ingest, so nothing else shows that a restart would
            // now lose state; a snapshot that could not be restored started the process empty.
            alert: 'AgencyExporterPersistenceFailing',
            expr: std.join('\nor\n', [
              'label_replace(agency_exporter_persistence_writable%s == 0, "problem", "write_failing", "", "")' % lib.sel(c),
              'label_replace(agency_exporter_persistence_restore_rejected%s == 1, "problem", "restore_rejected", "", "")' % lib.sel(c),
            ]),
            'for': f.exporterPersistence,
            labels: { severity: s.exporterPersistence, alert_type: 'system_health' },
            annotations: {
              summary: 'The exporter cannot keep its state on disk, or could not restore it.',
              description: 'Exporter {{ $labels.instance }} {{ if eq $labels.problem "write_failing" }}has failed to write its snapshot or journal for %s: a restart now loses what was counted since its last good snapshot{{ else }}started empty because its snapshot could not be read (the file was moved aside): its counters restarted from zero{{ end }}.' % f.exporterPersistence,
            },
            dashboard:: 'exporter',
          },
        ],
      },
    ],
  },
}

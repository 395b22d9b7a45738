// Exporter & alerting health: is the exporter scraped, how fast it renders, what it ingests and
// rejects, how much it tracks against its limits, and which alerts fire or are pending.
local rules = import '../rules/lib.libsonnet';
local agency = import 'lib/agency.libsonnet';
local d = import 'lib/dashboard.libsonnet';
local p = import 'lib/panels.libsonnet';

function(c)
  local a = agency { _config:: c };
  local th = a.thresholds(c);
  local q = p.query;
  local s = a.sel();
  local sk(extra) = a.sel(extra);
  local rate(metric, by) = 'sum by (%s) (rate(%s%s[$__rate_interval]))' % [by, metric, s];
  d.new(
    c,
    uid=c.dashboardUids.exporter,
    title='Agency / Exporter & alerting health',
    description='The Agency Telemetry exporter itself: scrapes, render time, ingest and rejections, tracked owners against the limits, expirations; and the alerts firing or pending.',
    tags=['exporter'],
    variables=[],
    panelList=[
      p.row('Now'),
      p.stat(
        'Exporters up',
        'Exporter targets Prometheus scraped successfully at the last scrape (up).',
        'short',
        [q('sum(up%s)' % s, 'up')],
      ),
      p.stat(
        'Exporters down',
        'Exporter targets whose last scrape failed. AgencyExporterDown (%s) fires after %s.' % [c.severities.exporterDown, c['for'].exporterDown],
        'short',
        [q('sum(1 - up%s)' % s, 'down')],
        thresholds=th.alerts,
      ),
      p.stat(
        'Events ingested',
        'Events accepted per second, all types (agency_exporter_events_received_total).',
        'suffix: events/s',
        [q('sum(rate(agency_exporter_events_received_total%s[$__rate_interval]))' % s, 'events/s')],
        decimals=1,
      ),
      p.stat(
        'Requests rejected',
        'Ingest requests rejected per second, all reasons. AgencyExporterRejectingEvents fires when any are rejected for %s.' % c['for'].exporterRejecting,
        'suffix: req/s',
        [q('sum(rate(agency_exporter_requests_rejected_total%s[$__rate_interval]))' % s, 'rejected/s')],
        // Any rejection at all loses events.
        thresholds=p.thresholds('green', [[1e-6, 'orange']]),
        decimals=2,
      ),
      p.stat(
        'Agents tracked',
        'Agents the exporters track now (agency_exporter_tracked{kind="agent"}).',
        'short',
        [q('sum(agency_exporter_tracked%s)' % sk('kind="agent"'), 'agents')],
      ),
      p.stat(
        'Series exposed',
        'Agent, council, queue and alert series in the last /metrics render, all exporters (agency_exporter_series).',
        'short',
        [q('sum(agency_exporter_series%s)' % s, 'series')],
      ),

      p.row('Scrapes'),
      p.stateTimeline(
        'Scrape status',
        'Whether each exporter target was scraped successfully (up).',
        [q('up%s' % s, '{{instance}}')],
        p.valueMappings([[0, 'down', 'red'], [1, 'up', 'green']]),
        height=4,
      ),
      p.timeseries(
        'Scrape and render duration',
        'How long Prometheus took to scrape each exporter (scrape_duration_seconds), and the P99 time the exporter took to render /metrics (agency_exporter_scrape_duration_seconds).',
        's',
        [
          q('max by (instance) (scrape_duration_seconds%s)' % s, '{{instance}} scrape'),
          q('histogram_quantile(0.99, %s)' % rate('agency_exporter_scrape_duration_seconds_bucket', 'le, instance'), '{{instance}} render P99'),
        ],
        min=0,
        width=8,
      ),
      p.heatmap(
        'Render duration heatmap',
        '/metrics renders per duration bucket (agency_exporter_scrape_duration_seconds), all exporters.',
        's',
        q(rate('agency_exporter_scrape_duration_seconds_bucket', 'le'), '{{le}}', format='heatmap'),
        width=8,
      ),
      p.timeseries(
        'Samples and series',
        'Samples Prometheus scraped from each exporter (scrape_samples_scraped) and the agent/council/queue/alert series among them (agency_exporter_series).',
        'short',
        [
          q('max by (instance) (scrape_samples_scraped%s)' % s, '{{instance}} samples scraped'),
          q('max by (instance) (agency_exporter_series%s)' % s, '{{instance}} agency series'),
        ],
        min=0,
        width=8,
      ),

      p.row('Ingest'),
      p.timeseries(
        'Events ingested by type',
        'Events accepted per second, by event type, and events acknowledged as duplicates (repeated id) and not applied again.',
        'suffix: events/s',
        [
          q(rate('agency_exporter_events_received_total', 'type'), '{{type}}'),
          q('sum(rate(agency_exporter_events_duplicate_total%s[$__rate_interval]))' % s, 'duplicates'),
        ],
        stack=true,
        min=0,
      ),
      p.timeseries(
        'Rejections by reason',
        "Ingest requests, and the events in them, rejected per second by reason (see the README's Answers table). A rejected batch changes nothing; its events are lost unless the client resends them.",
        'suffix: /s',
        [
          q(rate('agency_exporter_requests_rejected_total', 'reason'), '{{reason}} requests'),
          q(rate('agency_exporter_events_rejected_total', 'reason'), '{{reason}} events'),
        ],
        min=0,
      ),
      p.timeseries(
        'OTLP spans and data points',
        'OTLP items received per second by signal and outcome: mapped, ignored (not GenAI), rejected in a partial-success answer (lost: SDKs do not report it; AgencyExporterOtlpRejecting fires after %s), superseded (GenAI metrics of a service whose spans count). Held: child spans waiting for their invoke_agent ancestor.' % c['for'].exporterRejecting,
        'suffix: /s',
        [
          q(rate('agency_exporter_otlp_items_total', 'signal, outcome'), '{{signal}} {{outcome}}'),
          q(rate('agency_exporter_otlp_attributions_total', 'via'), 'attributed via {{via}}'),
          q('sum(agency_exporter_otlp_held%s)' % sk('what="events"'), 'held now'),
        ],
        min=0,
      ),

      p.row('Security'),
      p.timeseries(
        'Refused for credentials',
        "Ingest batches refused for a missing or unknown bearer token (unauthorized) or out of the token scope (forbidden), and requests or connections refused by the web configuration (basic_auth, client_san, handshake, rate_limit), per second. AgencyExporterAuthFailures (%s, security channel) fires on unauthorized, forbidden, basic_auth and client_san for %s; handshake failures include load balancers' TCP checks." % [c.severities.exporterAuth, c['for'].exporterAuth],
        'suffix: /s',
        [q(
          'sum by (reason) (rate(agency_exporter_requests_rejected_total%s[$__rate_interval]))\nor\n%s' % [
            sk('reason=~"%s"' % rules.authReasons),
            rate('agency_exporter_web_rejected_total', 'reason'),
          ],
          '{{reason}}'
        )],
        min=0,
      ),
      p.timeseries(
        'Configuration reloads',
        "Whether the last reload of each exporter's web configuration and ingest tokens file worked (1) or the previous settings are still in force (0). AgencyExporterReloadFailed fires after %s at 0. Empty when the exporters use neither file." % c['for'].exporterReload,
        'short',
        [q('min by (instance, file) (agency_exporter_reload_success%s)' % s, '{{instance}} {{file}}')],
        min=0,
        max=1,
      ),

      p.row('Tracked state and limits'),
      p.timeseries(
        'Tracked by kind',
        'Agents, councils, queues, active alerts and principles the exporters track (agency_exporter_tracked).',
        'short',
        [q('sum by (kind) (agency_exporter_tracked%s)' % s, '{{kind}}')],
        min=0,
        width=8,
      ),
      p.timeseries(
        'Limit use',
        'Tracked owners / configured limit, per exporter and kind. AgencyExporterLimitNear fires above %g%%; at 100%% new ones are rejected with 429.'
        % (c.thresholds.exporterLimitRatio * 100),
        'percentunit',
        [q(std.join('\nor\n', [
          // Tracked owners against their configured limit, per kind, as AgencyExporterLimitNear reads them.
          'agency_exporter_tracked%s\n/ ignoring (kind, limit) group_left agency_exporter_limit%s' % [sk('kind="%s"' % owner.kind), sk('limit="%s"' % owner.limit)]
          for owner in rules.exporterLimits
        ]), '{{instance}} {{kind}}')],
        thresholds=th.exporterLimit,
        thresholdsStyle='dashed',
        min=0,
        width=8,
      ),
      p.timeseries(
        'Expirations',
        'Agents, councils, queues and alerts removed per rate interval after staying silent past their TTL (agency_exporter_expired_total).',
        'short',
        [q('sum by (kind) (increase(agency_exporter_expired_total%s[$__rate_interval]))' % s, '{{kind}}')],
        bars=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'Dedup ids remembered',
        'Event ids the exporters remember for deduplication (agency_exporter_dedup_ids).',
        'short',
        [q('sum by (instance) (agency_exporter_dedup_ids%s)' % s, '{{instance}}')],
        min=0,
      ),
      p.timeseries(
        'Dedup evictions',
        'Event ids forgotten per second before the dedup window ended because dedup_max_ids was reached (agency_exporter_dedup_evictions_total): retries of those events would be applied twice.',
        'suffix: ids/s',
        [q(rate('agency_exporter_dedup_evictions_total', 'instance'), '{{instance}}')],
        min=0,
      ),

      p.row('Persistence'),
      p.timeseries(
        'Snapshot age and writes',
        'Seconds since each exporter last wrote its snapshot (persistence.file), and snapshot or journal writes failing per second. AgencyExporterPersistenceFailing (%s) fires when writes keep failing, or a snapshot could not be restored, for %s. Empty without persistence.' % [c.severities.exporterPersistence, c['for'].exporterPersistence],
        's',
        [
          q('time() - max by (instance) (agency_exporter_snapshot_last_success_timestamp_seconds%s)' % s, '{{instance}} age'),
          q(rate('agency_exporter_persistence_failures_total', 'instance, operation'), '{{instance}} {{operation}} failures/s'),
        ],
        min=0,
        width=8,
      ),
      p.timeseries(
        'Snapshot and journal size',
        'Bytes of the latest snapshot, and bytes journalled since it began (a segment of 64 MiB brings the next snapshot forward).',
        'bytes',
        [
          q('max by (instance) (agency_exporter_snapshot_size_bytes%s)' % s, '{{instance}} snapshot'),
          q('max by (instance) (agency_exporter_journal_size_bytes%s)' % s, '{{instance}} journal'),
        ],
        min=0,
        width=8,
      ),
      p.timeseries(
        'Snapshot time',
        'How long the latest snapshot took from capture to rename, and the longest the event loop waited for one slice of it (ingest waits at most this long for a snapshot).',
        's',
        [
          q('max by (instance) (agency_exporter_snapshot_duration_seconds%s)' % s, '{{instance}} total'),
          q('max by (instance) (agency_exporter_snapshot_longest_step_seconds%s)' % s, '{{instance}} longest slice'),
        ],
        min=0,
        width=8,
      ),

      p.row('Alerting'),
      p.timeseries(
        'Alerts firing by type and severity',
        'Agency alerts firing, counted by alert_type and severity (ALERTS).',
        'short',
        [q('count by (alert_type, severity) (%s)' % a.alerts(), '{{alert_type}} / {{severity}}')],
        stack=true,
        bars=true,
        min=0,
      ),
      p.timeseries(
        'Alerts firing by name',
        'Agency alerts firing, counted by alert name and severity (ALERTS).',
        'short',
        [q('count by (alertname, severity) (%s)' % a.alerts(), '{{alertname}} / {{severity}}')],
        stack=true,
        bars=true,
        min=0,
      ),
      p.timeseries(
        'Alerts pending',
        'Agency alerts whose condition holds but whose `for` duration has not passed yet (ALERTS{alertstate="pending"}).',
        'short',
        [q('count by (alertname) (ALERTS%s)' % sk('alertstate="pending", %s' % a.agencyAlerts), '{{alertname}}')],
        stack=true,
        bars=true,
        min=0,
      ),
      p.table(
        'Exporter builds',
        'Version of each exporter and the Python it runs on (agency_exporter_build_info).',
        'none',
        [q('agency_exporter_build_info%s' % s, instant=true, format='table')],
        [['instance', 'instance'], ['version', 'version'], ['python_version', 'Python']],
      ),
    ],
  )

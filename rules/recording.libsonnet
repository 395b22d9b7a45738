// Recording rules: every derived metric of the product, computed once for alerts and dashboards.
// Names follow level:metric:operations; levels are agent, agent_type, council, queue and fleet.
local lib = import 'lib.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local w = c.agentWindow,
    local cw = c.councilWindow,
    local bw = c.businessWindow,
    local R = lib.without(c),
    local rate(metric, window, extra=[], matchers='') = lib.sumRate(c, metric, window, extra, matchers),
    local quantile(q, bucket, window, extra=[]) =
      'histogram_quantile(%s, %s)' % [q, rate(bucket, window, extra)],
    local rule(record, expr, labels={}) = { record: record, expr: std.stripChars(expr, '\n') } +
                                          (if labels == {} then {} else { labels: labels }),

    // Per-agent series every agent has, with replica labels aggregated away.
    local agentInfo = 'max %s (agency_agent_info%s)' % [R, lib.sel(c)],
    // Values agents set, from the replica that heard them last (lib.latest); every rule and
    // dashboard reads these rather than the exporter's per-replica gauges.
    local latestAgent(metric, field, fallback='max') = rule('agent:%s:latest' % metric, lib.latest(c, metric, 'agent', field, fallback)),
    local active = 'agent:agency_agent_active_tasks:latest',
    local capacity = 'agent:agency_agent_capacity_tasks:latest',
    local score = 'agent:agency_agent_health:score',
    local live = 'agent:agency_agent_liveness:up',

    // Success ratio = 1 - failed/finished, at a level given by the labels aggregated away.
    local successRatio(extra) = lib.share('1 - (%s / %s)' % [
      rate('agency_agent_task_failures_total', w, extra + ['error_class']),
      rate('agency_agent_tasks_total', w, extra),
    ]),
    local durationRules(level, extra) = [
      rule('%s:agency_agent_task_duration_seconds:p%s_rate%s' % [level, q[2:], w], quantile(q, 'agency_agent_task_duration_seconds_bucket', w, extra))
      for q in ['0.50', '0.95', '0.99']
    ] + [
      rule(
        '%s:agency_agent_task_duration_seconds:avg_rate%s' % [level, w],
        '%s / %s' % [rate('agency_agent_task_duration_seconds_sum', w, extra), rate('agency_agent_task_duration_seconds_count', w, extra)],
      ),
    ],

    groups+: [
      {
        name: 'agency-agent.rules',
        rules: [
          latestAgent('agency_agent_capacity_tasks', 'capacity'),
          // Without reports, the count each replica kept from the starts and ends it saw: their sum.
          latestAgent('agency_agent_active_tasks', 'active_tasks', 'sum'),
          latestAgent('agency_agent_cpu_usage_ratio', 'cpu'),
          latestAgent('agency_agent_memory_bytes', 'memory'),
          latestAgent('agency_agent_queue_depth', 'queue_depth'),
          rule('agent:agency_agent_tasks:rate%s' % w, rate('agency_agent_tasks_total', w)),
          rule('agent:agency_agent_tasks:success_ratio_rate%s' % w, successRatio([])),
          rule('agent:agency_agent_task_failures:per_minute_rate%s' % w, '60 * %s' % rate('agency_agent_task_failures_total', w)),
        ] + durationRules('agent', []) + [
          rule('agent:agency_agent_capacity:utilization_ratio', '%s / %s' % [active, capacity]),
          // An agent's silence is measured at the scrape that reported it (timestamp(), the
          // scrape time, minus the last-seen time), not at evaluation time: when Prometheus
          // itself was away (restarted, its scrapes missed), the agents are as live as at its
          // last scrape until the next one, instead of all looking silent for as long as
          // Prometheus was down. Across replicas, the freshest counts (min). `and` the info
          // series: an agent the exporter no longer tracks (deregistered, expired) is gone, not down.
          rule(
            live,
            '(min %s (timestamp(agency_agent_last_seen_timestamp_seconds%s) - agency_agent_last_seen_timestamp_seconds%s)) < bool %d\nand %s'
            % [R, lib.sel(c), lib.sel(c), c.staleAfterSeconds, agentInfo],
          ),
        ],
      },
      {
        // Objectives are series so that rules can join them on agent_type.
        name: 'agency-objectives.rules',
        rules: [
          rule('agent_type:agency_agent_task_duration_seconds:objective_seconds', 'vector(%g)' % o.seconds, { agent_type: o.agent_type })
          for o in lib.latencyObjectives(c)
        ] + [
          rule(
            'agent:agency_agent_task_duration_seconds:objective_seconds',
            |||
              (%(info)s * 0 + on (agent_type) group_left () agent_type:agency_agent_task_duration_seconds:objective_seconds)
              or (%(info)s * 0 + %(default)g)
            ||| % { info: agentInfo, default: c.defaultLatencyObjectiveSeconds },
          ),
        ],
      },
      {
        // Health score: weighted mean of success, latency, load and liveness (each 0..1).
        // A component without data (no finished task in the window) counts as perfect, so a
        // quiet agent is judged on load and liveness alone.
        name: 'agency-health.rules',
        local h = c.healthWeights,
        local objective = 'agent:agency_agent_task_duration_seconds:objective_seconds',
        local one = '(%s * 0 + 1)' % objective,
        rules: [
          rule(
            'agent:agency_agent_health:score',
            |||
              (
                %(ws)g * ((agent:agency_agent_tasks:success_ratio_rate%(w)s >= 0) or %(one)s)
                + %(wl)g * ((clamp_max(%(objective)s / agent:agency_agent_task_duration_seconds:p95_rate%(w)s, 1) >= 0) or %(one)s)
                + %(wload)g * clamp((%(zero)g - agent:agency_agent_capacity:utilization_ratio) / %(span)g, 0, 1)
                + %(wlive)g * %(live)s
              ) / %(total)g
            ||| % {
              w: w,
              one: one,
              objective: objective,
              live: live,
              ws: h.success,
              wl: h.latency,
              wload: h.load,
              wlive: h.liveness,
              zero: c.loadZeroScoreAt,
              span: c.loadZeroScoreAt - c.loadFullScoreBelow,
              total: h.success + h.latency + h.load + h.liveness,
            },
          ),
          rule('agent:agency_agent_health:status', '%s * (%s >= bool %g)' % [live, score, c.healthyScore], { status: 'healthy' }),
          rule(
            'agent:agency_agent_health:status',
            '%s * (%s < bool %g) * (%s >= bool %g)' % [live, score, c.healthyScore, score, c.degradedScore],
            { status: 'degraded' },
          ),
          rule('agent:agency_agent_health:status', '%s * (%s < bool %g)' % [live, score, c.degradedScore], { status: 'critical' }),
          rule('agent:agency_agent_health:status', '1 - %s' % live, { status: 'unknown' }),
        ],
      },
      {
        name: 'agency-agent-type.rules',
        rules: [
          rule('agent_type:agency_agent_tasks:success_ratio_rate%s' % w, successRatio(['agent'])),
        ] + durationRules('agent_type', ['agent']),
      },
      {
        name: 'agency-fleet.rules',
        local F = ['agent', 'agent_type'],
        local ratio = 'fleet:agency_agent_liveness:ratio',
        local mean = 'fleet:agency_agent_health:score_avg',
        // x implies y because the thresholds nest, so x + y is 0, 1 or 2 (healthy … critical).
        local critical = 'clamp_max((%s < bool %g) + (%s < bool %g), 1)' % [ratio, c.fleetDownRatio, mean, c.degradedScore],
        local bad = 'clamp_max((%s < bool %g) + (%s < bool %g), 1)' % [ratio, c.fleetLiveRatioDegraded, mean, c.healthyScore],
        local heard = '(%s > bool 0)' % ratio,
        rules: [
          rule('fleet:agency_agent_tasks:success_ratio_rate%s' % w, successRatio(F)),
          rule('fleet:agency_agent_tasks:rate%s' % w, rate('agency_agent_tasks_total', w, F)),
          rule('fleet:agency_agent_task_failures:per_minute_rate%s' % w, '60 * %s' % rate('agency_agent_task_failures_total', w, F)),
        ] + durationRules('fleet', F) + [
          rule(
            'fleet:agency_agent_capacity:utilization_ratio',
            'sum without (agent, agent_type) (%s) / sum without (agent, agent_type) (%s)' % [active, capacity],
          ),
          rule('fleet:agency_agent_liveness:active_agents', 'sum without (agent, agent_type) (%s)' % live),
          rule(ratio, 'avg without (agent, agent_type) (%s)' % live),
          rule(mean, 'avg without (agent, agent_type) (%s)' % score),
          rule('fleet:agency_health:status', '%s * (1 - %s)' % [heard, bad], { status: 'healthy' }),
          rule('fleet:agency_health:status', '%s * %s * (1 - %s)' % [heard, bad, critical], { status: 'degraded' }),
          rule('fleet:agency_health:status', '%s * %s' % [heard, critical], { status: 'critical' }),
          rule(
            'fleet:agency_health:status',
            '(%s == bool 0) or absent(agency_agent_info%s)' % [ratio, lib.sel(c)],
            { status: 'unknown' },
          ),
        ],
      },
      {
        name: 'agency-council.rules',
        local attempts = rate('agency_council_consensus_attempts_total', cw),
        local outcomes(which, window) = rate('agency_council_decisions_total', window, ['outcome'], 'outcome=~"%s"' % which),
        // The ratios the council and decision alerts read, over each window of their tiers.
        local ratios(window) =
          local tried = rate('agency_council_consensus_attempts_total', window);
          local checks = rate('agency_council_compliance_checks_total', window);
          [
            rule(
              'council:agency_council_consensus:success_ratio_rate%s' % window,
              lib.share('1 - %s / %s' % [rate('agency_council_consensus_failures_total', window), tried]),
            ),
            // A council that never violated a principle has no violation series: count it as 0.
            rule(
              'council:agency_council_consensus:compliance_ratio_rate%s' % window,
              lib.share('1 - ((%s / %s) or (%s * 0))' % [rate('agency_council_compliance_violations_total', window, ['principle']), checks, checks]),
            ),
            rule('council:agency_council_decisions:false_positive_ratio_rate%s' % window, '%s / %s' % [outcomes('fp', window), outcomes('fp|tn', window)]),
            rule('council:agency_council_decisions:false_negative_ratio_rate%s' % window, '%s / %s' % [outcomes('fn', window), outcomes('fn|tp', window)]),
          ],
        rules: std.flattenArrays([ratios(window) for window in lib.tierWindows(c, cw)]) + [
          rule('council:agency_council_consensus:attempts_rate%s' % cw, attempts),
          rule(
            'council:agency_council_consensus:formation_seconds_p95_rate%s' % cw,
            quantile('0.95', 'agency_council_consensus_formation_seconds_bucket', cw),
          ),
          rule(
            'council:agency_council_consensus:formation_seconds_p50_rate%s' % cw,
            quantile('0.50', 'agency_council_consensus_formation_seconds_bucket', cw),
          ),
          rule('council:agency_council_consensus:debate_ratio_rate%s' % cw, '%s / %s' % [rate('agency_council_debates_total', cw), attempts]),
          rule(
            'council:agency_council_debate_rounds:avg_rate%s' % cw,
            '%s / %s' % [rate('agency_council_debate_rounds_sum', cw), rate('agency_council_debate_rounds_count', cw)],
          ),
          rule('council:agency_council_compliance_violations:rate%s' % cw, rate('agency_council_compliance_violations_total', cw)),
          rule('council:agency_council_coordination:overhead_ratio_rate%s' % cw, rate('agency_council_coordination_seconds_total', cw)),
          rule('council:agency_council_sessions:active', lib.latest(c, 'agency_council_sessions_active', 'council', 'active_sessions', 'sum')),
        ],
      },
      {
        name: 'agency-business.rules',
        local tasks = rate('agency_workflow_tasks_total', bw),
        local failures = rate('agency_workflow_task_failures_total', bw),
        local costPerHour = 'fleet:agency_workflow_task_cost_usd:per_hour_rate%s' % bw,
        rules: [
          // Over each window of the quality alert's tiers.
          rule(
            'fleet:agency_workflow_tasks:quality_score_avg_rate%s' % window,
            '%s / %s' % [rate('agency_workflow_task_quality_score_sum', window), rate('agency_workflow_task_quality_score_count', window)],
          )
          for window in lib.tierWindows(c, bw)
        ] + [
          rule('fleet:agency_workflow_tasks:success_ratio_rate%s' % bw, lib.share('1 - %s / %s' % [failures, tasks])),
          rule('fleet:agency_workflow_tasks:cost_usd_per_task_rate%s' % bw, '%s / %s' % [rate('agency_workflow_task_cost_usd_total', bw), tasks]),
          rule('fleet:agency_workflow_tasks:throughput_per_hour', '3600 * (%s - %s)' % [tasks, failures]),
          rule(costPerHour, '3600 * %s' % rate('agency_workflow_task_cost_usd_total', bw)),
          rule('fleet:agency_workflow_task_cost_usd:per_hour_predict_linear_24h', 'predict_linear(%s[%s], 86400)' % [costPerHour, c.costForecastHistory]),
          rule('queue:agency_queue_depth:latest', lib.latest(c, 'agency_queue_depth', 'queue', 'depth')),
          // From the latest depth, not each replica's: a replica that stopped hearing about the
          // queue holds a flat line.
          rule('queue:agency_queue_depth:predict_linear_%ds' % c.thresholds.queueForecastSeconds, 'predict_linear(queue:agency_queue_depth:latest[%s], %d)' % [c.queueForecastHistory, c.thresholds.queueForecastSeconds]),
          rule('queue:agency_queue_wait_seconds:p95_rate%s' % w, quantile('0.95', 'agency_queue_wait_seconds_bucket', w)),
        ],
      },
      {
        // Anomalies: how far the last 5 minutes are from the last day, in standard deviations.
        // A flat baseline (no spread, lib.spread) gives no z-score rather than an infinite one.
        name: 'agency-anomaly.rules',
        local p95 = 'agent_type:agency_agent_task_duration_seconds:p95_rate%s' % w,
        local success = 'agent_type:agency_agent_tasks:success_ratio_rate%s' % w,
        local b = c.anomalyBaseline,
        rules: [
          rule(
            'agent_type:agency_agent_task_duration_seconds:p95_zscore_%s' % b,
            '(%s - avg_over_time(%s[%s])) / %s' % [p95, p95, b, lib.spread(p95, b)],
          ),
          // z-score of the error ratio (1 - success): (avg(s) - s) / stddev(s).
          rule(
            'agent_type:agency_agent_tasks:error_ratio_zscore_%s' % b,
            '(avg_over_time(%s[%s]) - %s) / %s' % [success, b, success, lib.spread(success, b)],
          ),
        ],
      },
    ],
  },
}

// The one place for every selector, threshold, window, objective and severity of the mixin.
// Override any key from your own Jsonnet:
//   (import 'mixin.libsonnet') + { _config+:: { exporterSelector: 'job="agents"' } }
{
  _config+:: {
    // Selects the exporter's series. Change it when your scrape job has another name, or to
    // scope the mixin to one cluster (e.g. 'job="agency-telemetry",cluster="prod"').
    exporterSelector: 'job="agency-telemetry"',

    // Labels dropped when aggregating across exporter replicas and scrape targets. Everything
    // else (job, cluster, namespace, …) survives. Add the target labels your service
    // discovery attaches (e.g. 'node') so replicas of one agent are summed into one series.
    // Never the replica label of an HA Prometheus pair: exporter replicas count disjoint
    // shares and are summed, the pair's two servers hold identical copies and summing them
    // doubles every rate. Where rules see both copies, deduplicate them first (README, "High
    // availability").
    replicaLabels: ['instance', 'pod', 'container', 'endpoint', 'service'],

    // Windows of the derived metrics. Agent rates use a short window so dashboards and pages
    // react within minutes; council and business figures move slowly, so they use an hour.
    agentWindow: '5m',
    councilWindow: '1h',
    businessWindow: '1h',
    // How far back alerts on gauges look (min/max_over_time), so one missed scrape does not
    // flip them. Keep it several scrape intervals long.
    gaugeWindow: '5m',
    // Anomaly z-scores compare the last agentWindow with this baseline; forecasts extrapolate
    // from this much history. Longer baselines are steadier and slower to learn a new normal.
    anomalyBaseline: '1d',
    queueForecastHistory: '30m',
    costForecastHistory: '6h',

    // Relative alerts compare a signal with its own baseline: the larger of its median over
    // relativeBaseline and its mean over the same hour one day earlier. The median ignores
    // bursts and incidents lasting less than half the window; the same hour yesterday keeps a
    // daily peak from looking like a jump. A longer window is steadier and slower to accept a
    // new normal (a permanent change is the baseline after half of it).
    relativeBaseline: '1d',
    // A baseline is ready, and its alerts may fire, once the signal has this much history;
    // until then `…_baseline_1d_ready` is 0 and the baseline is not recorded. Shorter learns
    // sooner after a deployment, from fewer hours (a night alone is a poor baseline for a day).
    relativeBaselineMinHistory: '6h',
    // A ratio alerts only with this many events (tasks, requests, attempts, observations) in
    // its signal's window, so a quiet hour with one expensive task does not alert.
    relativeMinEvents: 30,
    // Per signal: how many times its baseline it must reach, and for how long. Raise a factor
    // for a spiky workload; set enabled: false to keep only the absolute threshold.
    relativeAlerts: {
      costPerTask: { factor: 3, 'for': '30m', enabled: true },  // workflow cost per task, 1h
      llmSpend: { factor: 3, 'for': '30m', enabled: true },  // fleet LLM spend per hour, 1h
      tokensPerTask: { factor: 3, 'for': '30m', enabled: true },  // LLM tokens per task by agent type, 1h
      // A queue's depth; below minItems a queue is not worth a look, however empty it used to be.
      queueDepth: { factor: 5, 'for': '15m', minItems: 100, enabled: true },
      queueWait: { factor: 3, 'for': '15m', enabled: true },  // P95 wait for a queue's items, 5m
      formationTime: { factor: 3, 'for': '30m', enabled: true },  // P95 consensus formation, 1h
    },

    // Tiers of the council, decision and quality alerts (consensus, compliance, false positive
    // and negative ratios, workflow quality). A tier fires when its threshold is crossed over
    // both its long and its short window: the long one proves the degradation is more than a
    // burst, the short one that it still goes on, so the alert resolves minutes after a
    // recovery. The severe tier (thresholds …Critical) catches a collapse within minutes; the
    // mild tier (…Warning) over an hour catches drift. A tier needs minEvents in its long
    // window, so a quiet council's single failure alerts nobody.
    multiWindowTiers: {
      severe: { longWindow: '10m', shortWindow: '5m', 'for': '3m', severity: 'critical', minEvents: 16 },
      mild: { longWindow: '1h', shortWindow: '5m', 'for': '15m', severity: 'warning', minEvents: 4 },
    },

    // Per-agent-type latency objectives (seconds): the P95 each type should stay under.
    // Each value must be one of the exporter's task_duration_seconds bucket bounds, because
    // the latency SLO reads the matching bucket. A judge answers in seconds; a researcher may
    // take minutes. Types not listed use defaultLatencyObjectiveSeconds.
    latencyObjectiveSeconds: {
      constitutional_judge: 5,
      worker: 10,
      researcher: 60,
      orchestrator: 1,
    },
    defaultLatencyObjectiveSeconds: 30,

    // Health score = weighted mean of four components, each 0..1 (docs/runbook.md explains
    // the formula). Raise a weight to make that aspect dominate; weights need not sum to 1.
    healthWeights: {
      success: 0.4,  // success ratio of the agent's tasks
      latency: 0.3,  // 1 while P95 ≤ objective, objective/P95 above it
      load: 0.2,  // 1 up to loadFullScoreBelow of capacity, falling to 0 at loadZeroScoreAt
      liveness: 0.1,  // 1 while the agent has been heard from within staleAfterSeconds
    },
    loadFullScoreBelow: 0.8,
    loadZeroScoreAt: 1.2,
    // Health status thresholds on the score: at or above healthy → healthy, at or above
    // degraded → degraded, below → critical. An agent not heard from is unknown.
    healthyScore: 0.8,
    degradedScore: 0.5,
    // An agent silent this long is stale: liveness 0, status unknown, AgencyAgentDown fires.
    // Set it to ~4 heartbeat intervals of your agents (the product's default interval is 30s).
    staleAfterSeconds: 120,

    // Fleet status: critical when fewer than this share of agents is live or the mean score
    // is critical; the emergency AgencyFleetMostlyDown fires below fleetDownRatio.
    fleetLiveRatioDegraded: 0.9,
    fleetDownRatio: 0.5,

    // Alerts need this many finished tasks per second (agent) before a ratio is trusted, so a
    // quiet agent with one failed task of two does not page anyone.
    minTaskRate: 0.01,  // ≈ 3 tasks in 5 minutes
    minCouncilRate: 0.001,  // ≈ 4 consensus attempts an hour
    // The same guards for LLM requests (per provider and model) and tool calls (per tool): a
    // model tried twice, once in vain, is not an outage.
    minLlmRequestRate: 0.05,  // ≈ 15 requests in 5 minutes
    minToolCallRate: 0.05,  // ≈ 15 calls in 5 minutes

    // LLM spend budget in USD per day, across the fleet (every agent, provider and model).
    // AgencyLlmSpendBurnRateHigh fires when spend runs at a multiple of budget/24 per hour;
    // set it to what your finance owner agreed for one day of LLM calls.
    llmDailyBudgetUsd: 120,
    // Burn-rate tiers of the daily budget: a tier fires when spend per hour over both its long
    // and short window is above factor × llmDailyBudgetUsd / 24. A factor of 1 spends exactly
    // the budget in a day; 6 spends it in 4 hours (a quarter of it within the 1h window); 2 in
    // 12 hours. The short window makes the alert resolve soon after spend falls back.
    // Set enabled: false to drop a tier; faster tiers inhibit slower ones in Alertmanager.
    llmBudgetBurnTiers: [
      { name: 'fast', longWindow: '1h', shortWindow: '5m', factor: 6, severity: 'critical', 'for': '5m', enabled: true },
      { name: 'slow', longWindow: '6h', shortWindow: '30m', factor: 2, severity: 'warning', 'for': '30m', enabled: true },
    ],
    // The token types the token-use anomaly looks at. input includes the cached tokens and
    // output the reasoning ones (the OTel GenAI conventions), so these two cover all use.
    llmAnomalyTokenTypes: ['input', 'output'],

    thresholds: {
      // Error ratio (failed / finished) of one agent over agentWindow.
      agentErrorRatioWarning: 0.1,
      agentErrorRatioCritical: 0.5,
      healthScoreLow: 0.5,  // the critical band of the health score
      cpuHigh: 0.95,  // sustained CPU near saturation
      utilizationHigh: 1.0,  // more tasks running than the agent's declared capacity
      queueBacklogItems: 1000,  // a queue predicted to exceed this within queueForecastSeconds
      queueForecastSeconds: 3600,
      // Consensus success ratio, compliance ratio, false positive and negative ratios and
      // workflow quality: …Warning is the mild tier of multiWindowTiers, …Critical the severe.
      consensusRatioWarning: 0.8,
      consensusRatioCritical: 0.5,
      consensusP95SecondsWarning: 30,
      debateRatioInfo: 0.5,  // more than half of formations need a debate: worth knowing
      complianceRatioWarning: 0.99,
      complianceRatioCritical: 0.95,
      qualityAvgWarning: 0.7,  // mean workflow quality score (an absolute floor)
      // Mean quality down by this share of its baseline (relativeBaseline): a workload's usual
      // score differs from another's, so the severe tier is relative.
      qualityDropCritical: 0.33,
      falsePositiveRatioWarning: 0.1,
      falsePositiveRatioCritical: 0.2,
      falseNegativeRatioWarning: 0.1,
      falseNegativeRatioCritical: 0.2,
      costPerTaskUsdWarning: 0.5,
      workflowSuccessEmergency: 0.5,  // half of all workflow tasks failing: the system is down
      anomalyZScore: 3,  // how many standard deviations from the 1d baseline is an anomaly
      exporterLimitRatio: 0.9,  // share of a configured exporter limit in use
      // LLM request error ratio (failed / sent) of one provider and model over agentWindow.
      // Providers shed load with 429s and 5xx now and then; a tenth failing is a degradation,
      // half failing is an outage of that model for the fleet.
      llmErrorRatioWarning: 0.1,
      llmErrorRatioCritical: 0.5,
      // Tool call error ratio of one tool over agentWindow. Tools fail more often than models
      // (bad arguments, empty results), so the bar is higher.
      toolErrorRatioWarning: 0.25,
    },

    // How long the per-agent performance alerts (errors, latency, health score) and the tiered
    // council, decision and quality alerts keep firing after their condition clears, so a
    // signal that flaps (bad for minutes, good, bad again) is one alert rather than one
    // notification per dip. Longer holds through slower flapping and resolves later. Prometheus 2.42 and later know keep_firing_for; set '' to
    // leave the field out for a rule engine that rejects it (vmalert before 1.90).
    keepFiringFor: '10m',

    // `for` durations: how long a condition must hold. Shorter pages sooner and flaps more.
    'for': {
      agentErrors: '10m',
      agentLatency: '15m',
      healthScore: '10m',
      agentDown: '2m',
      fleetDown: '2m',
      exporterDown: '2m',
      resources: '15m',
      queueBacklog: '15m',
      consensus: '30m',  // formation time and debates (the ratios use multiWindowTiers)
      cost: '1h',
      anomaly: '15m',
      workflowEmergency: '5m',
      exporterRejecting: '15m',
      exporterAuth: '10m',  // a client with an old token retries for a while before anyone sees it
      exporterReload: '5m',  // a file being rewritten in two steps may fail to load once
      exporterPersistence: '5m',  // a full disk the next snapshot finds freed again is no page
      reportedAlert: '0m',  // the agent already decided; route it at once
      llmErrors: '10m',  // a provider's blip of a few minutes retries itself away
      toolFailing: '15m',
    },

    // Service level objectives. availability: share of workflow tasks that complete;
    // latency: share of agent tasks finishing under their type's objective. Lower an objective
    // only with the people who are paged for it: it sets the error budget.
    slos: {
      availability: { objective: 0.99, enabled: true },
      latency: { objective: 0.95, enabled: true },
    },
    sloPeriod: '30d',
    // Multi-window multi-burn-rate tiers (the SRE workbook's defaults for a 30d budget).
    // Set enabled: false to drop a tier; a tier's alert carries burn_window so Alertmanager
    // can let the faster tier mute the slower ones.
    burnRateTiers: [
      { name: 'fast', longWindow: '1h', shortWindow: '5m', factor: 14.4, severity: 'critical', 'for': '2m', enabled: true },
      { name: 'medium', longWindow: '6h', shortWindow: '30m', factor: 6, severity: 'critical', 'for': '15m', enabled: true },
      { name: 'slow', longWindow: '1d', shortWindow: '2h', factor: 3, severity: 'warning', 'for': '1h', enabled: true },
      { name: 'slowest', longWindow: '3d', shortWindow: '6h', factor: 1, severity: 'warning', 'for': '3h', enabled: true },
    ],

    // Severity of each alert that does not choose by threshold. Change one to re-route it.
    severities: {
      agentLatency: 'warning',
      agentDown: 'warning',
      fleetDown: 'emergency',
      exporterDown: 'critical',
      resources: 'warning',
      queueBacklog: 'warning',
      consensusSlow: 'warning',
      debateFrequency: 'info',
      cost: 'warning',
      relative: 'warning',  // every relative alert (relativeAlerts): worth a look, rarely a page
      anomaly: 'info',
      workflowEmergency: 'emergency',
      exporterRejecting: 'warning',
      exporterLimit: 'warning',
      exporterAuth: 'warning',  // routed to the security channel by alert_type security_violation
      exporterReload: 'warning',
      exporterPersistence: 'warning',  // ingest goes on; only a restart would lose state
      healthScore: 'warning',
      toolFailing: 'warning',
      // AgencyLlmErrorRateHigh chooses by threshold; the budget burn by its tier; the token
      // anomaly uses `anomaly`.
    },

    // Where alerts link to. runbookUrl gets '#<alertname lowercased>' appended.
    runbookUrl: 'https://github.com/agency-telemetry/agency-telemetry/blob/main/docs/runbook.md',
    grafanaUrl: 'http://localhost:3000',
    dashboardUids: {
      fleet: 'agency-fleet',
      agent: 'agency-agent',
      council: 'agency-council',
      business: 'agency-business',
      exporter: 'agency-exporter',
      llm: 'agency-llm',
    },
    // Dashboards refresh as often as the product's refresh_interval_seconds.
    dashboardRefresh: '5s',

    // Dashboard template variables. Every query of a dashboard is scoped to the chosen $job and
    // $cluster through these labels, so several exporters and clusters can share one
    // Prometheus (or a Thanos or Mimir in front of several).
    // The label naming the exporter's scrape job: Prometheus's own `job` unless relabelled.
    jobLabel: 'job',
    // The label telling clusters apart: whatever your external_labels or remote-write add
    // (e.g. 'k8s_cluster').
    clusterLabel: 'cluster',
    // Offer the cluster variable. With false it is hidden and stays at All (.*), which also
    // matches series without the label: the setting for one Prometheus per cluster.
    showMultiCluster: true,
    // The series the job and cluster variables list values from. There is one per exporter, so
    // only jobs and clusters that run the exporter are offered.
    dashboardVariableSeries: 'agency_exporter_build_info',
  },
}

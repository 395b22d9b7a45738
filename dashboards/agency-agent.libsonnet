// Agent detail: one agent's latency, errors, load and health, and how its agent type does.
local agency = import 'lib/agency.libsonnet';
local d = import 'lib/dashboard.libsonnet';
local p = import 'lib/panels.libsonnet';

function(c)
  local a = agency { _config:: c };
  local th = a.thresholds(c);
  local w = c.agentWindow;
  local q = p.query;
  local agent = 'agent_type=~"$agent_type", agent=~"$agent"';
  local sa = a.sel(agent);
  local st = a.sel('agent_type=~"$agent_type"');
  local latencyBudget = 1 - c.slos.latency.objective;
  local fastTier = c.burnRateTiers[0];  // the rules record every tier's windows
  d.new(
    c,
    uid=c.dashboardUids.agent,
    title='Agency / Agent detail',
    description='One agent: latency against its objective, errors by class, load against capacity, resources and health, LLM tokens, spend and errors, tool calls; and its agent type.',
    tags=['agent'],
    variables=[
      d.queryVariable(
        'agent_type',
        'agent type',
        'label_values(agency_agent_info%s, agent_type)' % a.sel(),
        includeAll=true,
      ),
      d.queryVariable(
        'agent',
        'agent',
        'label_values(agency_agent_info%s, agent)' % a.sel('agent_type=~"$agent_type"'),
      ),
    ],
    panelList=[
      p.row('$agent now'),
      p.stat(
        'Health status',
        'agent:agency_agent_health:status: healthy from a score of %g, degraded from %g, critical below; unknown when the agent has been silent for %ds.'
        % [c.healthyScore, c.degradedScore, c.staleAfterSeconds],
        'none',
        [q(a.statusCode('agent:agency_agent_health:status', agent), 'status')],
        mappings=a.statusMappings,
        graph=false,
        width=3,
      ),
      p.stat(
        'Health score',
        'Weighted mean of success (%g), latency (%g), load (%g) and liveness (%g), 0..1; docs/runbook.md gives the formula. AgencyAgentHealthScoreLow fires below %g.'
        % [c.healthWeights.success, c.healthWeights.latency, c.healthWeights.load, c.healthWeights.liveness, c.thresholds.healthScoreLow],
        'none',
        [q('agent:agency_agent_health:score%s' % sa, 'score')],
        thresholds=th.health,
        decimals=2,
        min=0,
        max=1,
        width=3,
      ),
      p.stat(
        'Success rate',
        "Share of the agent's finished tasks that succeeded over %s." % w,
        'percentunit',
        [q('agent:agency_agent_tasks:success_ratio_rate%s%s' % [w, sa], 'success')],
        thresholds=th.success,
        decimals=1,
        width=3,
      ),
      p.stat(
        'P95 duration',
        "95th percentile of the agent's task durations over %s." % w,
        's',
        [q('agent:agency_agent_task_duration_seconds:p95_rate%s%s' % [w, sa], 'P95')],
        width=3,
      ),
      p.stat(
        'P95 / objective',
        "P95 task duration divided by the agent type's latency objective. Above 100%% AgencyAgentLatencyHigh fires after %s." % c['for'].agentLatency,
        'percentunit',
        [q(
          'agent:agency_agent_task_duration_seconds:p95_rate%s%s\n/ agent:agency_agent_task_duration_seconds:objective_seconds%s' % [w, sa, sa],
          'P95 / objective',
        )],
        thresholds=th.latencyVsObjective,
        width=3,
      ),
      p.stat(
        'Tasks / min',
        'Tasks the agent finished per minute (successful or not) over %s.' % w,
        'suffix: /min',
        [q('60 * agent:agency_agent_tasks:rate%s%s' % [w, sa], 'tasks/min')],
        decimals=1,
        width=3,
      ),
      p.stat(
        'Capacity use',
        'Tasks running / declared capacity (agent:agency_agent_capacity:utilization_ratio).',
        'percentunit',
        [q('agent:agency_agent_capacity:utilization_ratio%s' % sa, 'capacity use')],
        thresholds=th.utilization,
        width=3,
      ),
      p.stat(
        'Last heard',
        "Seconds since the agent's last event. After %ds it counts as down and AgencyAgentDown fires." % c.staleAfterSeconds,
        's',
        [q('time() - max(agency_agent_last_seen_timestamp_seconds%s)' % sa, 'last heard')],
        thresholds=th.staleSeconds,
        decimals=0,
        width=3,
      ),

      p.row('Latency'),
      p.heatmap(
        'Task duration heatmap',
        "How many of the agent's tasks finished in each duration bucket (agency_agent_task_duration_seconds), per rate interval. Points are exemplars: the latest traced task of each bucket, with its trace_id.",
        's',
        q('sum by (le) (rate(agency_agent_task_duration_seconds_bucket%s[$__rate_interval]))' % sa, '{{le}}', format='heatmap', exemplar=true),
      ),
      p.timeseries(
        'Percentiles vs objective',
        "P50, P95 and P99 of the agent's task durations over %s, and its agent type's objective (dashed): the P95 should stay below it." % w,
        's',
        [
          q('agent:agency_agent_task_duration_seconds:p50_rate%s%s' % [w, sa], 'P50'),
          q('agent:agency_agent_task_duration_seconds:p95_rate%s%s' % [w, sa], 'P95'),
          q('agent:agency_agent_task_duration_seconds:p99_rate%s%s' % [w, sa], 'P99'),
          q('agent:agency_agent_task_duration_seconds:avg_rate%s%s' % [w, sa], 'mean'),
          q('agent:agency_agent_task_duration_seconds:objective_seconds%s' % sa, 'objective'),
        ],
        overrides=[{
          matcher: { id: 'byName', options: 'objective' },
          properties: [
            { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
            { id: 'color', value: { mode: 'fixed', fixedColor: 'red' } },
          ],
        }],
        min=0,
      ),

      p.row('Errors'),
      p.timeseries(
        'Errors / min by class',
        "The agent's failed tasks per minute over %s, by error_class." % w,
        'suffix: /min',
        [q('sum by (error_class) (agent:agency_agent_task_failures:per_minute_rate%s%s)' % [w, sa], '{{error_class}}')],
        stack=true,
        min=0,
      ),
      p.timeseries(
        'Success rate',
        "Share of the agent's finished tasks that succeeded over %s. Dashed: AgencyAgentErrorRateHigh thresholds (warning above %g%% errors, critical above %g%%)."
        % [w, c.thresholds.agentErrorRatioWarning * 100, c.thresholds.agentErrorRatioCritical * 100],
        'percentunit',
        [q('agent:agency_agent_tasks:success_ratio_rate%s%s' % [w, sa], 'success')],
        thresholds=th.success,
        thresholdsStyle='dashed',
        max=1,
      ),

      p.row('Load and resources'),
      p.timeseries(
        'Load vs capacity',
        "Tasks the agent runs now against its declared capacity, as the exporter replica that heard the agent's latest report has them.",
        'short',
        [
          q('max(agent:agency_agent_active_tasks:latest%s)' % sa, 'running'),
          q('max(agent:agency_agent_capacity_tasks:latest%s)' % sa, 'capacity'),
        ],
        overrides=[{
          matcher: { id: 'byName', options: 'capacity' },
          properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
        }],
        min=0,
        width=8,
      ),
      p.timeseries(
        'Capacity use',
        'Tasks running / declared capacity. The load component of the health score falls from %g%%; AgencyAgentOverloaded fires above %g%%.'
        % [c.loadFullScoreBelow * 100, c.thresholds.utilizationHigh * 100],
        'percentunit',
        [q('agent:agency_agent_capacity:utilization_ratio%s' % sa, 'capacity use')],
        thresholds=th.utilization,
        thresholdsStyle='dashed',
        min=0,
        width=8,
      ),
      p.timeseries(
        'Queue depth',
        "Tasks waiting in the agent's own queue, from its last heartbeat.",
        'short',
        [q('max(agent:agency_agent_queue_depth:latest%s)' % sa, 'queued')],
        min=0,
        width=8,
      ),
      p.timeseries(
        'CPU',
        'CPU use at the last heartbeat, 0..1. AgencyAgentCpuSaturated fires above %g%% for %s.' % [c.thresholds.cpuHigh * 100, c['for'].resources],
        'percentunit',
        [q('max(agent:agency_agent_cpu_usage_ratio:latest%s)' % sa, 'CPU')],
        thresholds=th.cpu,
        thresholdsStyle='dashed',
        min=0,
        max=1,
      ),
      p.timeseries(
        'Memory',
        'Memory in use at the last heartbeat.',
        'bytes',
        [q('max(agent:agency_agent_memory_bytes:latest%s)' % sa, 'memory')],
        min=0,
      ),

      p.row('Health'),
      p.timeseries(
        'Health score',
        "The agent's health score over time. Dashed: healthy from %g, degraded from %g." % [c.healthyScore, c.degradedScore],
        'none',
        [q('agent:agency_agent_health:score%s' % sa, 'score')],
        thresholds=th.health,
        thresholdsStyle='dashed',
        min=0,
        max=1,
      ),
      p.stateTimeline(
        'Health status',
        "The agent's health status over time: healthy, degraded, critical or unknown (silent).",
        [q(a.statusCode('agent:agency_agent_health:status', agent), '{{agent}}')],
        a.statusMappings,
        width=12,
        height=8,
      ),

      p.row('Quality and cost'),
      p.timeseries(
        'Mean quality score',
        "Mean quality score of the agent's completed tasks (agency_agent_task_quality_score), per rate interval.",
        'percentunit',
        [q(
          'sum(rate(agency_agent_task_quality_score_sum%s[$__rate_interval]))\n/ sum(rate(agency_agent_task_quality_score_count%s[$__rate_interval]))' % [sa, sa],
          'quality',
        )],
        min=0,
        max=1,
      ),
      p.timeseries(
        'Cost per hour',
        "What the agent's completed tasks cost (agency_agent_task_cost_usd_total) and what its LLM calls cost, in USD per hour over %s." % w,
        'currencyUSD',
        [
          q('agent:agency_agent_task_cost_usd:per_hour_rate%s%s' % [w, sa], 'tasks'),
          q('sum(agent:agency_agent_llm_cost_usd:per_hour_rate%s%s)' % [w, sa], 'LLM calls'),
        ],
        min=0,
      ),

      p.row('LLM calls'),
      p.timeseries(
        'Tokens / s by token type',
        "The agent's LLM tokens per second over %s, by token type. cache_read and cache_write are part of input, reasoning part of output." % w,
        'suffix: tokens/s',
        [q('sum by (token_type) (agent:agency_agent_llm_tokens:rate%s%s)' % [w, sa], '{{token_type}}')],
        min=0,
        width=8,
      ),
      p.timeseries(
        'LLM spend / h by model',
        "What the agent's LLM calls cost per hour over %s, by provider and model." % w,
        'currencyUSD',
        [q('agent:agency_agent_llm_cost_usd:per_hour_rate%s%s' % [w, sa], '{{provider}}/{{model}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'LLM requests / s by model',
        "The agent's LLM requests per second over %s, by provider and model." % w,
        'reqps',
        [q('agent:agency_agent_llm_requests:rate%s%s' % [w, sa], '{{provider}}/{{model}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'LLM error ratio by model',
        "Share of the agent's LLM requests that failed over %s, by provider and model. Dashed: the fleet-wide AgencyLlmErrorRateHigh thresholds (warning %g%%, critical %g%%)."
        % [w, c.thresholds.llmErrorRatioWarning * 100, c.thresholds.llmErrorRatioCritical * 100],
        'percentunit',
        [q('agent:agency_agent_llm_requests:error_ratio_rate%s%s' % [w, sa], '{{provider}}/{{model}}')],
        thresholds=th.llmErrorRatio,
        thresholdsStyle='dashed',
        min=0,
        max=1,
      ),
      p.timeseries(
        'LLM spend / h by agent type',
        'LLM spend per hour over %s, per agent type.' % w,
        'currencyUSD',
        [q('agent_type:agency_agent_llm_cost_usd:per_hour_rate%s%s' % [w, st], '{{agent_type}}')],
        min=0,
      ),

      p.row('Tool calls'),
      p.timeseries(
        'Tool calls / s by tool',
        "The agent's tool calls per second over %s, by tool, successful or not." % w,
        'suffix: calls/s',
        [q('agent:agency_agent_tool_calls:rate%s%s' % [w, sa], '{{tool}}')],
        stack=true,
        min=0,
      ),
      p.timeseries(
        'Tool error ratio by tool',
        "Share of the agent's tool calls that failed over %s, by tool. Dashed: the fleet-wide AgencyToolFailing threshold (%g%%)."
        % [w, c.thresholds.toolErrorRatioWarning * 100],
        'percentunit',
        [q('agent:agency_agent_tool_calls:error_ratio_rate%s%s' % [w, sa], '{{tool}}')],
        thresholds=th.toolErrorRatio,
        thresholdsStyle='dashed',
        min=0,
        max=1,
      ),

      p.row('Agent type $agent_type'),
      p.timeseries(
        'Success rate by agent type',
        'Share of finished tasks that succeeded over %s, per agent type.' % w,
        'percentunit',
        [q('agent_type:agency_agent_tasks:success_ratio_rate%s%s' % [w, st], '{{agent_type}}')],
        thresholds=th.success,
        thresholdsStyle='dashed',
        max=1,
        width=8,
      ),
      p.timeseries(
        'Latency by agent type',
        "P50, P95, P99 and mean task duration over %s per agent type, and each configured type's objective (dashed)." % w,
        's',
        [
          q('agent_type:agency_agent_task_duration_seconds:%s_rate%s%s' % [stat[0], w, st], '{{agent_type}} %s' % stat[1])
          for stat in [['p50', 'P50'], ['p95', 'P95'], ['p99', 'P99'], ['avg', 'mean']]
        ] + [
          // The objectives are constants of the rules, without job or cluster labels.
          q('agent_type:agency_agent_task_duration_seconds:objective_seconds{agent_type=~"$agent_type"}', '{{agent_type}} objective'),
        ],
        overrides=[{
          matcher: { id: 'byFrameRefID', options: 'E' },
          properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
        }],
        min=0,
        width=8,
      ),
      p.timeseries(
        'Latency error budget',
        "Share of the %s latency error budget left: tasks slower than their type's objective may be %g%% of all over %s."
        % [c.sloPeriod, latencyBudget * 100, c.sloPeriod],
        'percentunit',
        [q('agent_type:agency_agent_task_duration_seconds:error_budget_remaining_ratio%s' % st, '{{agent_type}}')],
        thresholds=th.budget,
        thresholdsStyle='dashed',
        width=8,
      ),
      p.timeseries(
        'Latency burn rate',
        'How fast each agent type spends its latency budget: slow-task ratio / %g. At 1 the budget lasts exactly %s; the burn-rate alerts fire at the dashed factors.'
        % [latencyBudget, c.sloPeriod],
        'short',
        [
          q('agent_type:agency_agent_task_duration_seconds:slow_ratio_rate%s%s / %g' % [window, st, latencyBudget], '{{agent_type}} %s' % window)
          for window in [fastTier.shortWindow, fastTier.longWindow]
        ],
        thresholds=th.burnRate,
        thresholdsStyle='dashed',
        min=0,
      ),
      p.timeseries(
        'Anomaly z-scores',
        'How far the last %s are from the %s baseline, in standard deviations, for P95 latency and error ratio. The info anomaly alerts fire above %g.'
        % [w, c.anomalyBaseline, c.thresholds.anomalyZScore],
        'none',
        [
          q('agent_type:agency_agent_task_duration_seconds:p95_zscore_%s%s' % [c.anomalyBaseline, st], '{{agent_type}} latency'),
          q('agent_type:agency_agent_tasks:error_ratio_zscore_%s%s' % [c.anomalyBaseline, st], '{{agent_type}} errors'),
        ],
        thresholds=th.anomaly,
        thresholdsStyle='dashed',
      ),
    ],
  )

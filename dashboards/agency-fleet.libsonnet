// Fleet overview: is the council of agents healthy, how much does it do, who is worst, what fires.
local agency = import 'lib/agency.libsonnet';
local d = import 'lib/dashboard.libsonnet';
local p = import 'lib/panels.libsonnet';

function(c)
  local a = agency { _config:: c };
  local th = a.thresholds(c);
  local w = c.agentWindow;
  local q = p.query;
  local sel = a.sel;
  d.new(
    c,
    uid=c.dashboardUids.fleet,
    title='Agency / Fleet overview',
    description='Health, throughput, latency and errors of every agent, the worst agents and the alerts firing.',
    tags=['fleet'],
    variables=[],
    panelList=[
      p.row('Now'),
      p.stat(
        'Fleet health',
        'fleet:agency_health:status: critical when fewer than %g%% of agents are live or the mean health score is below %g; degraded below %g%% live or a mean score below %g; unknown when no agent is tracked.'
        % [c.fleetDownRatio * 100, c.degradedScore, c.fleetLiveRatioDegraded * 100, c.healthyScore],
        'none',
        [q(a.statusCode('fleet:agency_health:status'), 'status')],
        mappings=a.statusMappings,
        graph=false,
      ),
      p.stat(
        'Active agents',
        'Agents heard from within the last %ds (fleet:agency_agent_liveness:active_agents).' % c.staleAfterSeconds,
        'short',
        [q('sum(fleet:agency_agent_liveness:active_agents%s)' % sel(), 'active')],
      ),
      p.stat(
        'Live share',
        'Share of tracked agents that are live (fleet:agency_agent_liveness:ratio). AgencyFleetMostlyDown pages below %g%%.' % (c.fleetDownRatio * 100),
        'percentunit',
        [q('min(fleet:agency_agent_liveness:ratio%s)' % sel(), 'live')],
        thresholds=th.liveRatio,
        min=0,
        max=1,
      ),
      p.stat(
        'Success rate',
        'Share of finished agent tasks that succeeded over %s, whole fleet. Colours follow AgencyAgentErrorRateHigh: warning above %g%% errors, critical above %g%%.'
        % [w, c.thresholds.agentErrorRatioWarning * 100, c.thresholds.agentErrorRatioCritical * 100],
        'percentunit',
        [q('fleet:agency_agent_tasks:success_ratio_rate%s%s' % [w, sel()], 'success')],
        thresholds=th.success,
        decimals=2,
      ),
      p.stat(
        'P95 task duration',
        '95th percentile of agent task durations over %s, whole fleet. Objectives differ per agent type: see the Agent detail dashboard.' % w,
        's',
        [q('fleet:agency_agent_task_duration_seconds:p95_rate%s%s' % [w, sel()], 'P95')],
      ),
      p.stat(
        'Errors / min',
        'Failed agent tasks per minute over %s, all error classes.' % w,
        'suffix: /min',
        [q('sum(fleet:agency_agent_task_failures:per_minute_rate%s%s)' % [w, sel()], 'errors')],
        decimals=1,
      ),
      p.stat(
        'Throughput',
        'Agent tasks finished per hour (successful or not), from the %s rate.' % w,
        'suffix: tasks/h',
        [q('3600 * sum(fleet:agency_agent_tasks:rate%s%s)' % [w, sel()], 'tasks/h')],
        decimals=0,
      ),
      p.stat(
        'Capacity use',
        'Tasks running / declared capacity of all agents. Health scores fall above %g%%; AgencyAgentOverloaded fires for an agent above %g%%.'
        % [c.loadFullScoreBelow * 100, c.thresholds.utilizationHigh * 100],
        'percentunit',
        [q('fleet:agency_agent_capacity:utilization_ratio%s' % sel(), 'capacity use')],
        thresholds=th.utilization,
      ),
      p.stat(
        'Mean health score',
        "Mean of the agents' health scores (0..1): healthy from %g, degraded from %g, critical below." % [c.healthyScore, c.degradedScore],
        'none',
        [q('fleet:agency_agent_health:score_avg%s' % sel(), 'score')],
        thresholds=th.health,
        decimals=2,
        min=0,
        max=1,
      ),
      p.stat(
        'Warnings firing',
        'Agency alerts firing at severity warning now (ALERTS).',
        'short',
        [q('count(%s)' % a.alerts('severity="warning"'), 'warning')],
        thresholds=p.thresholds('green', [[1, 'orange']]),
        noValue='0',
      ),
      p.stat(
        'Critical firing',
        'Agency alerts firing at severity critical now (ALERTS); these page.',
        'short',
        [q('count(%s)' % a.alerts('severity="critical"'), 'critical')],
        thresholds=th.alerts,
        noValue='0',
      ),
      p.stat(
        'Emergencies firing',
        'Agency alerts firing at severity emergency now (ALERTS): the fleet is mostly down or most workflow tasks fail.',
        'short',
        [q('count(%s)' % a.alerts('severity="emergency"'), 'emergency')],
        thresholds=th.alerts,
        noValue='0',
      ),

      p.row('Health'),
      p.stateTimeline(
        'Fleet health over time',
        'fleet:agency_health:status over the time range: healthy, degraded, critical or unknown.',
        [q(a.statusCode('fleet:agency_health:status'), 'fleet')],
        a.statusMappings,
        height=4,
      ),
      p.timeseries(
        'Agents by health status',
        'Number of agents in each health status (agent:agency_agent_health:status).',
        'short',
        [q('sum by (status) (agent:agency_agent_health:status%s)' % sel(), '{{status}}')],
        stack=true,
        overrides=[p.colorOverride(s[1], s[2]) for s in a.states],
        min=0,
      ),
      p.timeseries(
        'Health score',
        'Mean and lowest agent health score. Thresholds: healthy from %g, degraded from %g.' % [c.healthyScore, c.degradedScore],
        'none',
        [
          q('fleet:agency_agent_health:score_avg%s' % sel(), 'mean'),
          q('min(agent:agency_agent_health:score%s)' % sel(), 'lowest agent'),
        ],
        thresholds=th.health,
        thresholdsStyle='dashed',
        min=0,
        max=1,
      ),

      p.row('Performance'),
      p.timeseries(
        'Success rate by agent type',
        'Share of finished tasks that succeeded over %s, per agent type and for the fleet. Dashed lines: the warning and critical error ratios.' % w,
        'percentunit',
        [
          q('agent_type:agency_agent_tasks:success_ratio_rate%s%s' % [w, sel()], '{{agent_type}}'),
          q('fleet:agency_agent_tasks:success_ratio_rate%s%s' % [w, sel()], 'fleet'),
        ],
        thresholds=th.success,
        thresholdsStyle='dashed',
        max=1,
      ),
      p.timeseries(
        'Task duration percentiles',
        'P50, P95, P99 and mean of agent task durations over %s, whole fleet.' % w,
        's',
        [
          q('fleet:agency_agent_task_duration_seconds:p50_rate%s%s' % [w, sel()], 'P50'),
          q('fleet:agency_agent_task_duration_seconds:p95_rate%s%s' % [w, sel()], 'P95'),
          q('fleet:agency_agent_task_duration_seconds:p99_rate%s%s' % [w, sel()], 'P99'),
          q('fleet:agency_agent_task_duration_seconds:avg_rate%s%s' % [w, sel()], 'mean'),
        ],
        min=0,
      ),
      p.timeseries(
        'Errors / min by error class',
        'Failed tasks per minute over %s, by the error_class the exporter derived from the failure reason.' % w,
        'suffix: /min',
        [q('sum by (error_class) (fleet:agency_agent_task_failures:per_minute_rate%s%s)' % [w, sel()], '{{error_class}}')],
        stack=true,
        min=0,
      ),
      p.timeseries(
        'Throughput by agent type',
        'Tasks finished per hour, per agent type, from the %s rate.' % w,
        'suffix: tasks/h',
        [q('3600 * sum by (agent_type) (agent:agency_agent_tasks:rate%s%s)' % [w, sel()], '{{agent_type}}')],
        stack=true,
        min=0,
      ),
      p.timeseries(
        'P95 by agent type vs objective',
        'P95 task duration per agent type over %s, and the latency objective of each configured type (dashed).' % w,
        's',
        [
          q('agent_type:agency_agent_task_duration_seconds:p95_rate%s%s' % [w, sel()], '{{agent_type}} P95'),
          // The objectives are constants of the rules, without job or cluster labels.
          q('agent_type:agency_agent_task_duration_seconds:objective_seconds', '{{agent_type}} objective'),
        ],
        overrides=[{
          matcher: { id: 'byFrameRefID', options: 'B' },
          properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
        }],
        min=0,
        width=24,
      ),

      p.row('Capacity and queues'),
      p.timeseries(
        'Capacity use',
        'Tasks running / declared capacity: the fleet, and the busiest agent of each type (agent:agency_agent_capacity:utilization_ratio).',
        'percentunit',
        [
          q('fleet:agency_agent_capacity:utilization_ratio%s' % sel(), 'fleet'),
          q('max by (agent_type) (agent:agency_agent_capacity:utilization_ratio%s)' % sel(), 'busiest {{agent_type}}'),
        ],
        thresholds=th.utilization,
        thresholdsStyle='dashed',
        min=0,
        width=8,
      ),
      p.timeseries(
        'Queue depth and forecast',
        'Items waiting per queue, the depth predicted %ds ahead from the last 30 minutes (AgencyQueueBacklogGrowing fires above %d), and the baseline (dashed; AgencyQueueDepthAboveBaseline fires at %g times it, from %d items).'
        % [c.thresholds.queueForecastSeconds, c.thresholds.queueBacklogItems, c.relativeAlerts.queueDepth.factor, c.relativeAlerts.queueDepth.minItems],
        'short',
        [
          q('max by (queue) (queue:agency_queue_depth:latest%s)' % sel(), '{{queue}}'),
          q('max by (queue) (queue:agency_queue_depth:predict_linear_%ds%s)' % [c.thresholds.queueForecastSeconds, sel()], '{{queue}} forecast'),
          q('max by (queue) (%s)' % a.baseline('queue:agency_queue_depth:latest'), '{{queue}} baseline'),
        ],
        overrides=[a.baselineStyle],
        thresholds=th.queueBacklog,
        width=8,
      ),
      p.timeseries(
        'Queue wait P95',
        '95th percentile of the time items waited in each queue over %s, and its baseline (dashed; AgencyQueueWaitAboveBaseline fires at %g times it).'
        % [w, c.relativeAlerts.queueWait.factor],
        's',
        [
          q('max by (queue) (queue:agency_queue_wait_seconds:p95_rate%s%s)' % [w, sel()], '{{queue}}'),
          q('max by (queue) (%s)' % a.baseline('queue:agency_queue_wait_seconds:p95_rate%s' % w), '{{queue}} baseline'),
        ],
        overrides=[a.baselineStyle],
        min=0,
        width=8,
      ),

      p.row('Worst agents'),
      p.table(
        'Lowest health scores',
        'The 10 agents with the lowest health score now. Click an agent for its detail dashboard.',
        'none',
        [q('bottomk(10, agent:agency_agent_health:score%s)' % sel(), instant=true, format='table')],
        [['agent', 'agent'], ['agent_type', 'agent_type'], ['Value', 'health score']],
        thresholds=th.health,
        sortBy={ displayName: 'health score', desc: false },
        colored=['Value'],
        links=[a.agentLink(c)],
        width=8,
      ),
      p.table(
        'Highest error ratios',
        'The 10 agents failing the largest share of their tasks over %s. Click an agent for its detail dashboard.' % w,
        'percentunit',
        [q('topk(10, 1 - agent:agency_agent_tasks:success_ratio_rate%s%s)' % [w, sel()], instant=true, format='table')],
        [['agent', 'agent'], ['agent_type', 'agent_type'], ['Value', 'error ratio']],
        thresholds=th.errorRatio,
        sortBy={ displayName: 'error ratio', desc: true },
        colored=['Value'],
        links=[a.agentLink(c)],
        width=8,
      ),
      p.table(
        'Silent agents',
        'Tracked agents not heard from for more than %ds (agent:agency_agent_liveness:up == 0): AgencyAgentDown fires for them after %s. Empty while every agent reports.'
        % [c.staleAfterSeconds, c['for'].agentDown],
        'none',
        [q('agent:agency_agent_liveness:up%s == 0' % sel(), instant=true, format='table')],
        [['agent', 'agent'], ['agent_type', 'agent_type']],
        links=[a.agentLink(c)],
        width=8,
      ),

      p.row('Alerts'),
      p.timeseries(
        'Firing alerts by severity',
        'Agency alerts firing, counted by severity (ALERTS).',
        'short',
        [q('count by (severity) (%s)' % a.alerts(), '{{severity}}')],
        stack=true,
        bars=true,
        overrides=[
          p.colorOverride('info', 'blue'),
          p.colorOverride('warning', 'orange'),
          p.colorOverride('critical', 'red'),
          p.colorOverride('emergency', 'purple'),
        ],
        min=0,
      ),
      p.table(
        'Firing alerts',
        'Every Agency alert firing now, with what it is about.',
        'none',
        [q(a.alerts(), instant=true, format='table')],
        [
          ['alertname', 'alert'],
          ['severity', 'severity'],
          ['alert_type', 'type'],
          ['agent', 'agent'],
          ['agent_type', 'agent_type'],
          ['council', 'council'],
          ['queue', 'queue'],
          ['alert_id', 'reported alert'],
        ],
        sortBy={ displayName: 'severity', desc: false },
      ),
    ],
  )

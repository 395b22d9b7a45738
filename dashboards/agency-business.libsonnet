// Business & SLO: workflow completion, quality, cost and throughput, and the availability and
// latency objectives with their error budgets and burn rates.
local agency = import 'lib/agency.libsonnet';
local d = import 'lib/dashboard.libsonnet';
local p = import 'lib/panels.libsonnet';

function(c)
  local a = agency { _config:: c };
  local th = a.thresholds(c);
  local t = c.thresholds;
  local bw = c.businessWindow;
  local q = p.query;
  local s = a.sel();
  local availability = c.slos.availability.objective;
  local latency = c.slos.latency.objective;
  local tiers = [tier for tier in c.burnRateTiers if tier.enabled];
  local fastTier = c.burnRateTiers[0];  // the rules record every tier's windows
  // Windows the burn-rate alerts read, shortest first ("5m" < "1h" < "1d" by seconds).
  local burnWindows = std.sort(std.set([tier.shortWindow for tier in tiers] + [tier.longWindow for tier in tiers]), a.seconds);
  local errorRatio(window) = 'fleet:agency_workflow_tasks:error_ratio_rate%s%s' % [window, s];
  d.new(
    c,
    uid=c.dashboardUids.business,
    title='Agency / Business & SLO',
    description='Workflow completion, quality, cost and throughput; the availability (%g%%) and latency (%g%%) objectives, their error budgets and burn rates.'
                % [availability * 100, latency * 100],
    tags=['business', 'slo'],
    variables=[],
    panelList=[
      p.row('Now'),
      p.stat(
        'Completion rate',
        'Share of workflow tasks completed over %s. Below the %g%% objective the error budget burns; below %g%% AgencyWorkflowFailing pages.'
        % [bw, availability * 100, t.workflowSuccessEmergency * 100],
        'percentunit',
        [q('fleet:agency_workflow_tasks:success_ratio_rate%s%s' % [bw, s], 'completed')],
        thresholds=th.completion,
        decimals=2,
        width=3,
      ),
      p.stat(
        'Availability (%s)' % c.sloPeriod,
        'Share of workflow tasks completed over the SLO period (%s), against the %g%% objective.' % [c.sloPeriod, availability * 100],
        'percentunit',
        [q('1 - %s' % errorRatio(c.sloPeriod), 'availability')],
        thresholds=th.availability,
        decimals=3,
        width=3,
      ),
      p.stat(
        'Error budget left',
        'Share of the %s availability error budget (%g%% of tasks may fail) not yet spent. Negative: the objective is missed.' % [c.sloPeriod, (1 - availability) * 100],
        'percentunit',
        [q('fleet:agency_workflow_tasks:error_budget_remaining_ratio%s' % s, 'budget left')],
        thresholds=th.budget,
        decimals=1,
        width=3,
      ),
      p.stat(
        'Quality',
        'Mean workflow quality score over %s (0..1). AgencyWorkflowQualityLow fires below %g.' % [bw, t.qualityAvgWarning],
        'none',
        [q('fleet:agency_workflow_tasks:quality_score_avg_rate%s%s' % [bw, s], 'quality')],
        thresholds=th.quality,
        decimals=3,
        width=3,
      ),
      p.stat(
        'Cost per task',
        'Mean cost of a workflow task over %s. AgencyCostPerTaskHigh fires above %g USD.' % [bw, t.costPerTaskUsdWarning],
        'currencyUSD',
        [q('fleet:agency_workflow_tasks:cost_usd_per_task_rate%s%s' % [bw, s], 'USD/task')],
        thresholds=th.costPerTask,
        decimals=3,
        width=3,
      ),
      p.stat(
        'Cost per hour',
        'Workflow cost per hour, from the %s rate.' % bw,
        'currencyUSD',
        [q('fleet:agency_workflow_task_cost_usd:per_hour_rate%s%s' % [bw, s], 'USD/h')],
        decimals=2,
        width=3,
      ),
      p.stat(
        'Throughput',
        'Workflow tasks completed per hour, from the %s rate.' % bw,
        'suffix: tasks/h',
        [q('fleet:agency_workflow_tasks:throughput_per_hour%s' % s, 'tasks/h')],
        decimals=0,
        width=3,
      ),
      p.stat(
        'Cost forecast (24h)',
        'Cost per hour expected in 24 hours, extrapolated linearly from the last 6 hours.',
        'currencyUSD',
        [q('fleet:agency_workflow_task_cost_usd:per_hour_predict_linear_24h%s' % s, 'USD/h in 24h')],
        decimals=2,
        width=3,
      ),

      p.row('Workflow'),
      p.timeseries(
        'Completion rate',
        'Share of workflow tasks completed over %s. Dashed: the availability objective and the emergency threshold.' % bw,
        'percentunit',
        [q('fleet:agency_workflow_tasks:success_ratio_rate%s%s' % [bw, s], 'completed')],
        thresholds=th.completion,
        thresholdsStyle='dashed',
        max=1,
      ),
      p.timeseries(
        'Throughput',
        'Workflow tasks completed per hour, from the %s rate.' % bw,
        'suffix: tasks/h',
        [q('fleet:agency_workflow_tasks:throughput_per_hour%s' % s, 'completed/h')],
        min=0,
      ),
      p.timeseries(
        'Quality score',
        'Mean workflow quality score over %s and its baseline (the larger of its median over %s and the same hour a day earlier). AgencyWorkflowQualityLow fires at warning below the dashed threshold, at critical when the 10m mean is %g%% under the baseline.'
        % [bw, c.relativeBaseline, t.qualityDropCritical * 100],
        'none',
        [
          q('fleet:agency_workflow_tasks:quality_score_avg_rate%s%s' % [bw, s], 'mean quality'),
          q(a.baseline('fleet:agency_workflow_tasks:quality_score_avg_rate%s' % bw), 'baseline'),
        ],
        overrides=[a.baselineStyle],
        thresholds=th.quality,
        thresholdsStyle='dashed',
        max=1,
      ),
      p.heatmap(
        'Quality distribution',
        'Workflow tasks per quality-score bucket (agency_workflow_task_quality_score), per rate interval.',
        'none',
        q('sum by (le) (rate(agency_workflow_task_quality_score_bucket%s[$__rate_interval]))' % s, '{{le}}', format='heatmap'),
        scheme='Greens',
      ),

      p.row('Cost'),
      p.timeseries(
        'Cost per task',
        'Mean workflow task cost over %s and its baseline (dashed line). AgencyCostPerTaskHigh fires above the dashed threshold, AgencyCostPerTaskAboveBaseline at %g times the baseline.'
        % [bw, c.relativeAlerts.costPerTask.factor],
        'currencyUSD',
        [
          q('fleet:agency_workflow_tasks:cost_usd_per_task_rate%s%s' % [bw, s], 'USD/task'),
          q(a.baseline('fleet:agency_workflow_tasks:cost_usd_per_task_rate%s' % bw), 'baseline'),
        ],
        overrides=[a.baselineStyle],
        thresholds=th.costPerTask,
        thresholdsStyle='dashed',
        min=0,
        width=8,
      ),
      p.timeseries(
        'Cost per hour and forecast',
        'Workflow cost per hour (%s rate) and the cost per hour expected in 24 hours (linear from the last 6 hours).' % bw,
        'currencyUSD',
        [
          q('fleet:agency_workflow_task_cost_usd:per_hour_rate%s%s' % [bw, s], 'USD/h'),
          q('fleet:agency_workflow_task_cost_usd:per_hour_predict_linear_24h%s' % s, 'forecast in 24h'),
        ],
        overrides=[{
          matcher: { id: 'byName', options: 'forecast in 24h' },
          properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
        }],
        min=0,
        width=8,
      ),
      p.timeseries(
        'Agent cost by type',
        'What completed agent tasks cost per hour over %s, by agent type (agency_agent_task_cost_usd_total; LLM spend is on the LLM dashboard).' % c.agentWindow,
        'currencyUSD',
        [q('agent_type:agency_agent_task_cost_usd:per_hour_rate%s%s' % [c.agentWindow, s], '{{agent_type}}')],
        stack=true,
        min=0,
        width=8,
      ),

      p.row('Availability SLO (%g%% over %s)' % [availability * 100, c.sloPeriod]),
      p.timeseries(
        'Availability by window',
        'Share of workflow tasks completed over each window the burn-rate alerts read and over the SLO period. Dashed: the objective.',
        'percentunit',
        [q('1 - %s' % errorRatio(window), window) for window in burnWindows + [c.sloPeriod]],
        thresholds=th.availability,
        thresholdsStyle='dashed',
        max=1,
        width=8,
      ),
      p.timeseries(
        'Availability burn rate',
        "Error ratio / error budget (%g) per window: at 1 the budget lasts exactly %s. Dashed: the factors at which the burn-rate tiers alert (when both of a tier's windows exceed it)."
        % [1 - availability, c.sloPeriod],
        'short',
        [q('%s / %g' % [errorRatio(window), 1 - availability], window) for window in burnWindows],
        thresholds=th.burnRate,
        thresholdsStyle='dashed',
        min=0,
        width=8,
      ),
      p.timeseries(
        'Availability error budget left',
        'Share of the %s availability error budget not yet spent.' % c.sloPeriod,
        'percentunit',
        [q('fleet:agency_workflow_tasks:error_budget_remaining_ratio%s' % s, 'budget left')],
        thresholds=th.budget,
        thresholdsStyle='dashed',
        max=1,
        width=8,
      ),

      p.row("Latency SLO (%g%% of tasks under their type's objective over %s)" % [latency * 100, c.sloPeriod]),
      p.timeseries(
        'Latency error budget left',
        'Per agent type, the share of the %s latency error budget (%g%% of tasks may be slower than the objective) not yet spent.' % [c.sloPeriod, (1 - latency) * 100],
        'percentunit',
        [q('agent_type:agency_agent_task_duration_seconds:error_budget_remaining_ratio%s' % s, '{{agent_type}}')],
        thresholds=th.budget,
        thresholdsStyle='dashed',
        max=1,
      ),
      p.timeseries(
        'Latency burn rate (%s)' % fastTier.longWindow,
        "Per agent type, share of tasks slower than the objective over %s / %g: at 1 the budget lasts exactly %s. Dashed: the tiers' alert factors."
        % [fastTier.longWindow, 1 - latency, c.sloPeriod],
        'short',
        [q('agent_type:agency_agent_task_duration_seconds:slow_ratio_rate%s%s / %g' % [fastTier.longWindow, s, 1 - latency], '{{agent_type}}')],
        thresholds=th.burnRate,
        thresholdsStyle='dashed',
        min=0,
      ),
    ],
  )

// LLM usage & spend: tokens by model and token type, spend by model and agent type against the
// daily budget, spend per task, LLM latency and errors by model, and tool calls by tool.
local agency = import 'lib/agency.libsonnet';
local d = import 'lib/dashboard.libsonnet';
local p = import 'lib/panels.libsonnet';

function(c)
  local a = agency { _config:: c };
  local th = a.thresholds(c);
  local t = c.thresholds;
  local w = c.agentWindow;
  local bw = c.businessWindow;
  local q = p.query;
  local s = a.sel();
  local models = 'provider=~"$provider", model=~"$model"';
  local sm = a.sel(models);
  local sp = a.sel('provider=~"$provider"');
  local stool = a.sel('tool=~"$tool"');
  // input includes cached tokens and output reasoning ones: these two add up to all tokens.
  local allTokens = 'token_type=~"input|output"';
  local budget = c.llmDailyBudgetUsd;
  local tiers = [tier for tier in c.llmBudgetBurnTiers if tier.enabled];
  local spendWindows = std.sort(std.set([tier.shortWindow for tier in tiers] + [tier.longWindow for tier in tiers]), a.seconds);
  local fleetSpend(window) = 'fleet:agency_agent_llm_cost_usd:per_hour_rate%s%s' % [window, s];
  d.new(
    c,
    uid=c.dashboardUids.llm,
    title='Agency / LLM usage & spend',
    description='LLM tokens and spend by model, provider and agent type against the %g USD daily budget; spend per task; LLM latency and errors by model; tool calls and failures by tool.' % budget,
    tags=['llm'],
    variables=[
      d.queryVariable('provider', 'provider', 'label_values(agency_agent_llm_requests_total%s, provider)' % a.sel(), includeAll=true, multi=true),
      d.queryVariable('model', 'model', 'label_values(agency_agent_llm_requests_total%s, model)' % sp, includeAll=true, multi=true),
      d.queryVariable('tool', 'tool', 'label_values(agency_agent_tool_calls_total%s, tool)' % a.sel(), includeAll=true, multi=true),
    ],
    panelList=[
      p.row('Now'),
      p.stat(
        'Tokens / s',
        'Tokens the fleet sends and receives per second over %s (input + output: input includes cached tokens, output includes reasoning tokens).' % w,
        'suffix: tokens/s',
        [q('sum without (token_type) (fleet:agency_agent_llm_tokens:rate%s%s)' % [w, a.sel(allTokens)], 'tokens/s')],
        decimals=0,
        width=3,
      ),
      p.stat(
        'Spend / h',
        'LLM spend per hour over %s. Coloured at the rates the budget burn-rate tiers alert on (factor × %g USD / 24).' % [w, budget],
        'currencyUSD',
        [q(fleetSpend(w), 'USD/h')],
        thresholds=th.llmSpendPerHour,
        decimals=2,
        width=3,
      ),
      p.stat(
        'Spent (24h)',
        'LLM spend over the last 24 hours (rolling), against the daily budget of %g USD (llmDailyBudgetUsd).' % budget,
        'currencyUSD',
        [q('24 * %s' % fleetSpend('1d'), 'USD in 24h')],
        thresholds=p.lowerIsBetter(budget),
        decimals=2,
        width=3,
      ),
      p.stat(
        'Budget left today',
        'Share of the %g USD daily LLM budget not spent over the last 24 hours (rolling). Negative: the budget is exceeded.' % budget,
        'percentunit',
        [q('fleet:agency_agent_llm_cost_usd:daily_budget_remaining_ratio%s' % s, 'budget left')],
        thresholds=th.budget,
        decimals=1,
        width=3,
      ),
      p.stat(
        'Spend per task',
        'Cost of a finished agent task over %s including the LLM calls of its agents: (task cost + LLM cost) / tasks.' % bw,
        'currencyUSD',
        [q('fleet:agency_agent_tasks:total_cost_usd_per_task_rate%s%s' % [bw, s], 'USD/task')],
        decimals=4,
        width=3,
      ),
      p.stat(
        'LLM requests / s',
        'LLM requests the fleet sent per second over %s, successful or not.' % w,
        'reqps',
        [q('fleet:agency_agent_llm_requests:rate%s%s' % [w, s], 'requests/s')],
        decimals=2,
        width=3,
      ),
      p.stat(
        'LLM error ratio',
        'Share of LLM requests that failed over %s, across providers and models. AgencyLlmErrorRateHigh warns above %g%% and pages above %g%% for one model.'
        % [w, t.llmErrorRatioWarning * 100, t.llmErrorRatioCritical * 100],
        'percentunit',
        [q('fleet:agency_agent_llm_requests:error_ratio_rate%s%s' % [w, s], 'errors')],
        thresholds=th.llmErrorRatio,
        decimals=2,
        width=3,
      ),
      p.stat(
        'Tool calls / s',
        'Tool calls the fleet made per second over %s, successful or not.' % w,
        'suffix: calls/s',
        [q('fleet:agency_agent_tool_calls:rate%s%s' % [w, s], 'calls/s')],
        decimals=2,
        width=3,
      ),

      p.row('Tokens'),
      p.timeseries(
        'Tokens / s by model and token type',
        'Tokens per second over %s by provider, model and token type. cache_read and cache_write are part of input, reasoning part of output: do not stack them.' % w,
        'suffix: tokens/s',
        [q('model:agency_agent_llm_tokens:rate%s%s' % [w, sm], '{{provider}}/{{model}} {{token_type}}')],
        min=0,
        width=12,
      ),
      p.timeseries(
        'Tokens / s by agent type',
        'Input and output tokens per second over %s, by agent type.' % w,
        'suffix: tokens/s',
        [q('agent_type:agency_agent_llm_tokens:rate%s%s' % [w, a.sel(allTokens)], '{{agent_type}} {{token_type}}')],
        min=0,
        width=6,
      ),
      p.timeseries(
        'Token use z-score',
        'How far the fleet tokens per second of the last %s are from the %s baseline, in standard deviations, per token type. AgencyLlmTokenUsageAnomaly (info) fires above %g for %s tokens.'
        % [w, c.anomalyBaseline, t.anomalyZScore, std.join(' and ', c.llmAnomalyTokenTypes)],
        'none',
        [q('fleet:agency_agent_llm_tokens:zscore_%s%s' % [c.anomalyBaseline, s], '{{token_type}}')],
        thresholds=th.anomaly,
        thresholdsStyle='dashed',
        width=6,
      ),

      p.row('Spend'),
      p.timeseries(
        'Spend / h by model',
        'LLM spend per hour over %s by provider and model.' % w,
        'currencyUSD',
        [q('model:agency_agent_llm_cost_usd:per_hour_rate%s%s' % [w, sm], '{{provider}}/{{model}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'Spend / h by agent type',
        'LLM spend per hour over %s by agent type.' % w,
        'currencyUSD',
        [q('agent_type:agency_agent_llm_cost_usd:per_hour_rate%s%s' % [w, s], '{{agent_type}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'Spend / h by provider',
        'LLM spend per hour over %s by provider.' % w,
        'currencyUSD',
        [q('provider:agency_agent_llm_cost_usd:per_hour_rate%s%s' % [w, sp], '{{provider}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'Spend / h against the budget',
        'Fleet LLM spend per hour over each window the budget burn-rate tiers read, and the baseline of the %s rate (dashed line; AgencyLlmSpendAboveBaseline fires at %g times it). Dashed thresholds: the rates at which a tier alerts (when both of its windows exceed it); %g USD/h spends the daily budget of %g USD in exactly a day.'
        % [bw, c.relativeAlerts.llmSpend.factor, budget / 24, budget],
        'currencyUSD',
        [q(fleetSpend(window), window) for window in spendWindows]
        + [q(a.baseline('fleet:agency_agent_llm_cost_usd:per_hour_rate%s' % bw), '%s baseline' % bw)],
        overrides=[a.baselineStyle],
        thresholds=th.llmSpendPerHour,
        thresholdsStyle='dashed',
        min=0,
        width=8,
      ),
      p.timeseries(
        'Daily budget left',
        'Share of the %g USD daily LLM budget not spent over the last 24 hours (rolling).' % budget,
        'percentunit',
        [q('fleet:agency_agent_llm_cost_usd:daily_budget_remaining_ratio%s' % s, 'budget left')],
        thresholds=th.budget,
        thresholdsStyle='dashed',
        max=1,
        width=8,
      ),
      p.timeseries(
        'Spend per task',
        'Cost of a finished agent task over %s including the LLM calls of its agents, per agent type and for the fleet.' % bw,
        'currencyUSD',
        [
          q('agent_type:agency_agent_tasks:total_cost_usd_per_task_rate%s%s' % [bw, s], '{{agent_type}}'),
          q('fleet:agency_agent_tasks:total_cost_usd_per_task_rate%s%s' % [bw, s], 'fleet'),
        ],
        min=0,
        width=8,
      ),

      p.timeseries(
        'Tokens per task',
        'LLM tokens (input and output) per finished task over %s by agent type, and each baseline (dashed; AgencyLlmTokensPerTaskAboveBaseline fires at %g times it).'
        % [bw, c.relativeAlerts.tokensPerTask.factor],
        'short',
        [
          q('agent_type:agency_agent_llm_tokens:per_task_rate%s%s' % [bw, s], '{{agent_type}}'),
          q(a.baseline('agent_type:agency_agent_llm_tokens:per_task_rate%s' % bw), '{{agent_type}} baseline'),
        ],
        overrides=[a.baselineStyle],
        min=0,
        width=24,
      ),

      p.row('Latency and errors'),
      p.timeseries(
        'LLM latency by model',
        'P50 and P95 of LLM request durations over %s, by provider and model.' % w,
        's',
        [
          q('model:agency_llm_request_duration_seconds:p95_rate%s%s' % [w, sm], '{{provider}}/{{model}} P95'),
          q('model:agency_llm_request_duration_seconds:p50_rate%s%s' % [w, sm], '{{provider}}/{{model}} P50'),
        ],
        min=0,
        width=8,
      ),
      p.timeseries(
        'LLM error ratio by model',
        'Share of LLM requests that failed over %s, by provider and model. Dashed: AgencyLlmErrorRateHigh thresholds (warning %g%%, critical %g%%), once a model gets more than %g requests/s.'
        % [w, t.llmErrorRatioWarning * 100, t.llmErrorRatioCritical * 100, c.minLlmRequestRate],
        'percentunit',
        [q('model:agency_agent_llm_requests:error_ratio_rate%s%s' % [w, sm], '{{provider}}/{{model}}')],
        thresholds=th.llmErrorRatio,
        thresholdsStyle='dashed',
        min=0,
        max=1,
        width=8,
      ),
      p.timeseries(
        'LLM error ratio by provider',
        'Share of LLM requests that failed over %s, by provider: one provider failing for all its models is an outage on its side.' % w,
        'percentunit',
        [q('provider:agency_agent_llm_requests:error_ratio_rate%s%s' % [w, sp], '{{provider}}')],
        thresholds=th.llmErrorRatio,
        thresholdsStyle='dashed',
        min=0,
        max=1,
        width=8,
      ),
      p.timeseries(
        'LLM requests / s by model',
        'LLM requests per second over %s by provider and model.' % w,
        'reqps',
        [q('model:agency_agent_llm_requests:rate%s%s' % [w, sm], '{{provider}}/{{model}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'LLM requests / s by provider',
        'LLM requests per second over %s by provider.' % w,
        'reqps',
        [q('provider:agency_agent_llm_requests:rate%s%s' % [w, sp], '{{provider}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'LLM failures / s by class',
        'Failed LLM requests per second over %s, by error_class, for the selected providers and models.' % w,
        'reqps',
        [q('sum by (error_class) (model:agency_agent_llm_request_failures:rate%s%s)' % [w, sm], '{{error_class}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'Tokens / s by provider',
        'Input and output tokens per second over %s, by provider.' % w,
        'suffix: tokens/s',
        [q('provider:agency_agent_llm_tokens:rate%s%s' % [w, a.sel('provider=~"$provider", ' + allTokens)], '{{provider}} {{token_type}}')],
        min=0,
        width=24,
      ),

      p.row('Tools'),
      p.timeseries(
        'Tool calls / s by tool',
        'Tool calls per second over %s, by tool, successful or not.' % w,
        'suffix: calls/s',
        [q('tool:agency_agent_tool_calls:rate%s%s' % [w, stool], '{{tool}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.timeseries(
        'Tool error ratio by tool',
        'Share of tool calls that failed over %s, by tool. Dashed: AgencyToolFailing fires above %g%% for %s once a tool gets more than %g calls/s.'
        % [w, t.toolErrorRatioWarning * 100, c['for'].toolFailing, c.minToolCallRate],
        'percentunit',
        [q('tool:agency_agent_tool_calls:error_ratio_rate%s%s' % [w, stool], '{{tool}}')],
        thresholds=th.toolErrorRatio,
        thresholdsStyle='dashed',
        min=0,
        max=1,
        width=8,
      ),
      p.timeseries(
        'Tool call P95 by tool',
        '95th percentile of tool call durations over %s, by tool.' % w,
        's',
        [q('tool:agency_tool_call_duration_seconds:p95_rate%s%s' % [w, stool], '{{tool}}')],
        min=0,
        width=8,
      ),
    ],
  )

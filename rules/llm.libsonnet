// Recording rules for LLM requests and tool calls: tokens per second, spend per hour, spend per
// task including LLM spend, error ratios, latency percentiles, and the token-use z-score.
// Levels: agent (the exporter's own grain, replicas summed), agent_type, model (keeps provider
// and model), provider, tool and fleet. The alerts on them are in alerts/llm.libsonnet.
//
// Token types overlap: input includes cache_read and cache_write, output includes reasoning
// (the OTel GenAI conventions), so add input and output for all tokens, never all five types.
local lib = import 'lib.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local w = c.agentWindow,
    local bw = c.businessWindow,
    local rate(metric, window, extra=[], matchers='') = lib.sumRate(c, metric, window, extra, matchers),
    local quantile(q, bucket, window, extra=[]) =
      'histogram_quantile(%s, %s)' % [q, rate(bucket, window, extra)],
    local rule(record, expr) = { record: record, expr: std.stripChars(expr, '\n') },

    // Labels each level aggregates away from the raw LLM series.
    local levels = {
      agent: [],
      agent_type: ['agent', 'provider', 'model'],
      model: ['agent', 'agent_type'],
      provider: ['agent', 'agent_type', 'model'],
      fleet: ['agent', 'agent_type', 'provider', 'model'],
    },

    // Failed / sent. A series without failures has no failure series: it counts as 0.
    local errorRatio(failures, total, extra, failureExtra) =
      '(%(f)s / %(t)s) or (%(t)s * 0)' % {
        f: rate(failures, w, extra + failureExtra),
        t: rate(total, w, extra),
      },

    // Spend per hour of the fleet over every window the budget burn-rate tiers read, and a day.
    local budgetWindows = std.set(
      [t.longWindow for t in c.llmBudgetBurnTiers] + [t.shortWindow for t in c.llmBudgetBurnTiers] + [w, bw, '1d']
    ),
    local fleetSpend(window) = 'fleet:agency_agent_llm_cost_usd:per_hour_rate%s' % window,

    groups+: [
      {
        name: 'agency-llm.rules',
        rules: [
          rule('%s:agency_agent_llm_tokens:rate%s' % [level, w], rate('agency_agent_llm_tokens_total', w, levels[level]))
          for level in ['agent', 'agent_type', 'model', 'provider', 'fleet']
        ] + [
          rule('%s:agency_agent_llm_cost_usd:per_hour_rate%s' % [level, w], '3600 * %s' % rate('agency_agent_llm_cost_usd_total', w, levels[level]))
          for level in ['agent', 'agent_type', 'model', 'provider']
        ] + [
          rule(fleetSpend(window), '3600 * %s' % rate('agency_agent_llm_cost_usd_total', window, levels.fleet))
          for window in budgetWindows
        ] + [
          // Share of the daily budget not spent over the last 24 hours (rolling, not since
          // midnight); negative when the budget is exceeded.
          rule(
            'fleet:agency_agent_llm_cost_usd:daily_budget_remaining_ratio',
            '1 - 24 * %s / %g' % [fleetSpend('1d'), c.llmDailyBudgetUsd],
          ),
        ] + [
          rule('%s:agency_agent_llm_requests:rate%s' % [level, w], rate('agency_agent_llm_requests_total', w, levels[level]))
          for level in ['agent', 'model', 'provider', 'fleet']
        ] + [
          rule(
            '%s:agency_agent_llm_requests:error_ratio_rate%s' % [level, w],
            errorRatio('agency_agent_llm_request_failures_total', 'agency_agent_llm_requests_total', levels[level], ['error_class']),
          )
          for level in ['agent', 'model', 'provider', 'fleet']
        ] + [
          rule('model:agency_agent_llm_request_failures:rate%s' % w, rate('agency_agent_llm_request_failures_total', w, levels.model)),
        ] + [
          rule('model:agency_llm_request_duration_seconds:p%s_rate%s' % [q[2:], w], quantile(q, 'agency_llm_request_duration_seconds_bucket', w))
          for q in ['0.50', '0.95']
        ],
      },
      {
        // Cost of a finished task with the LLM calls its agents made: (task cost + LLM cost) /
        // tasks. Agents that already put their LLM spend into the task cost count it twice here;
        // report it in one place only.
        name: 'agency-llm-task-cost.rules',
        local perTask(extra) =
          local task = rate('agency_agent_task_cost_usd_total', bw, extra);
          local llm = rate('agency_agent_llm_cost_usd_total', bw, extra + ['provider', 'model']);
          '(%(task)s + %(llm)s\nor %(task)s\nor %(llm)s)\n/ %(tasks)s' % {
            task: task,
            llm: llm,
            tasks: rate('agency_agent_tasks_total', bw, extra),
          },
        rules: [
          // What the tasks themselves cost per hour, beside the LLM spend, for the dashboards.
          rule('agent:agency_agent_task_cost_usd:per_hour_rate%s' % w, '3600 * %s' % rate('agency_agent_task_cost_usd_total', w)),
          rule('agent_type:agency_agent_task_cost_usd:per_hour_rate%s' % w, '3600 * %s' % rate('agency_agent_task_cost_usd_total', w, ['agent'])),
          rule('agent_type:agency_agent_tasks:total_cost_usd_per_task_rate%s' % bw, perTask(['agent'])),
          rule('fleet:agency_agent_tasks:total_cost_usd_per_task_rate%s' % bw, perTask(['agent', 'agent_type'])),
          // Tokens of every kind (input and output cover them all) per finished task.
          rule(
            'agent_type:agency_agent_llm_tokens:per_task_rate%s' % bw,
            '%s\n/ %s' % [
              rate('agency_agent_llm_tokens_total', bw, ['agent', 'provider', 'model', 'token_type'], 'token_type=~"input|output"'),
              rate('agency_agent_tasks_total', bw, ['agent']),
            ],
          ),
        ],
      },
      {
        name: 'agency-tool.rules',
        local errors(extra) = errorRatio('agency_agent_tool_call_failures_total', 'agency_agent_tool_calls_total', extra, []),
        rules: [
          rule('agent:agency_agent_tool_calls:rate%s' % w, rate('agency_agent_tool_calls_total', w)),
          rule('agent:agency_agent_tool_calls:error_ratio_rate%s' % w, errors([])),
          rule('tool:agency_agent_tool_calls:rate%s' % w, rate('agency_agent_tool_calls_total', w, ['agent', 'agent_type'])),
          rule('tool:agency_agent_tool_calls:error_ratio_rate%s' % w, errors(['agent', 'agent_type'])),
          rule('fleet:agency_agent_tool_calls:rate%s' % w, rate('agency_agent_tool_calls_total', w, ['agent', 'agent_type', 'tool'])),
          rule('tool:agency_tool_call_duration_seconds:p95_rate%s' % w, quantile('0.95', 'agency_tool_call_duration_seconds_bucket', w)),
        ],
      },
      {
        // How far the fleet's tokens per second of the last agentWindow are from the baseline, in
        // standard deviations, per token type. A flat baseline gives no z-score.
        name: 'agency-llm-anomaly.rules',
        local tokens = 'fleet:agency_agent_llm_tokens:rate%s' % w,
        local b = c.anomalyBaseline,
        rules: [
          rule(
            'fleet:agency_agent_llm_tokens:zscore_%s' % b,
            '(%s - avg_over_time(%s[%s])) / %s' % [tokens, tokens, b, lib.spread(tokens, b)],
          ),
        ],
      },
    ],
  },
}

// Alerts on LLM requests and tool calls: the daily spend budget (multi-window burn rates),
// provider/model errors, failing tools and unusual token use. They read the rules of
// rules/llm.libsonnet. Links are added by alerts.libsonnet from `dashboard`.
{
  prometheusAlerts+:: {
    local c = $._config,
    local t = c.thresholds,
    local f = c['for'],
    local s = c.severities,
    local w = c.agentWindow,
    local hourlyBudget = c.llmDailyBudgetUsd / 24,

    local busyModel = 'model:agency_agent_llm_requests:rate%s > %g' % [w, c.minLlmRequestRate],
    local busyTool = 'tool:agency_agent_tool_calls:rate%s > %g' % [w, c.minToolCallRate],

    // One alert name, two thresholds: past the critical one both fire.
    local llmErrorRateHigh(threshold) = {
      alert: 'AgencyLlmErrorRateHigh',
      expr: 'model:agency_agent_llm_requests:error_ratio_rate%s > %g\nand %s' % [w, threshold, busyModel],
      'for': f.llmErrors,
      annotations: {
        summary: 'Too many requests to an LLM provider and model fail.',
        description: '{{ $value | humanizePercentage }} of requests to {{ $labels.provider }} model {{ $labels.model }} failed over the last %s.' % w,
      },
      dashboard:: 'llmModel',
    },

    groups+: [
      {
        name: 'agency-llm.alerts',
        rules: [
          {
            local threshold = tier.factor * hourlyBudget,
            local spend(window) = 'fleet:agency_agent_llm_cost_usd:per_hour_rate%s' % window,
            alert: 'AgencyLlmSpendBurnRateHigh',
            expr: '%s > %g\nand\n%s > %g' % [spend(tier.longWindow), threshold, spend(tier.shortWindow), threshold],
            'for': tier['for'],
            labels: {
              severity: tier.severity,
              alert_type: 'quality_degradation',
              budget: 'llm_daily',
              burn_tier: tier.name,
              burn_window: tier.longWindow,
            },
            annotations: {
              summary: 'LLM spend is on course to exhaust the daily budget early.',
              description: 'The fleet spends {{ $value | printf "%%.2f" }} USD/h on LLM calls over the last %s, %g times the %g USD/h a %g USD daily budget allows.'
                           % [tier.longWindow, tier.factor, hourlyBudget, c.llmDailyBudgetUsd],
            },
            dashboard:: 'llm',
          }
          for tier in c.llmBudgetBurnTiers
          if tier.enabled
        ] + [
          llmErrorRateHigh(t.llmErrorRatioWarning) { labels: { severity: 'warning', alert_type: 'system_health' } },
          llmErrorRateHigh(t.llmErrorRatioCritical) { labels: { severity: 'critical', alert_type: 'system_health' } },
          {
            alert: 'AgencyToolFailing',
            expr: 'tool:agency_agent_tool_calls:error_ratio_rate%s > %g\nand %s' % [w, t.toolErrorRatioWarning, busyTool],
            'for': f.toolFailing,
            labels: { severity: s.toolFailing, alert_type: 'agent_performance' },
            annotations: {
              summary: 'A tool fails too many of the calls agents make to it.',
              description: '{{ $value | humanizePercentage }} of calls to tool {{ $labels.tool }} failed over the last %s.' % w,
            },
            dashboard:: 'llmTool',
          },
          {
            alert: 'AgencyLlmTokenUsageAnomaly',
            expr: 'fleet:agency_agent_llm_tokens:zscore_%s{token_type=~"%s"} > %g'
                  % [c.anomalyBaseline, std.join('|', c.llmAnomalyTokenTypes), t.anomalyZScore],
            'for': f.anomaly,
            labels: { severity: s.anomaly, alert_type: 'quality_degradation' },
            annotations: {
              summary: "The fleet's LLM token use is far above its usual level.",
              description: 'The fleet uses {{ $labels.token_type }} tokens at {{ $value | printf "%%.1f" }} standard deviations above its mean over the last %s.' % c.anomalyBaseline,
            },
            dashboard:: 'llm',
          },
        ],
      },
    ],
  },
}

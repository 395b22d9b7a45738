// Relative alerts: a signal at a multiple of its own baseline (rules/baseline.libsonnet), for
// workloads whose absolute numbers nobody knows in advance. They stay silent while a baseline
// is not ready (too little history) and while the signal rests on too few events. The
// absolute alerts (AgencyCostPerTaskHigh, AgencyQueueBacklogGrowing, AgencyCouncilConsensusSlow)
// stay beside them. Links are added by alerts.libsonnet from `dashboard`.
local lib = import '../lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local s = c.severities,
    local bw = c.businessWindow,
    local relative = c.relativeAlerts,
    local ratio(key) = lib.baseline(c, lib.baselineSignals(c)[key].series).ratio,
    // At least relativeMinEvents of a counter over a window, summed without `extra`.
    local enough(counter, window, extra=[], matchers='') =
      'sum %s (increase(%s%s[%s])) >= %d' % [lib.without(c, extra), counter, lib.sel(c, matchers), window, c.relativeMinEvents],
    local times = '{{ $value | printf "%%.1f" }} times its baseline (the larger of its median over %s and the same hour a day earlier)' % c.relativeBaseline,

    // What each relative alert says and the events its ratio needs; thresholds in relativeAlerts.
    local alerts = {
      costPerTask: {
        alert: 'AgencyCostPerTaskAboveBaseline',
        expr: '%s > %g\nand %s' % [ratio('costPerTask'), relative.costPerTask.factor, enough('agency_workflow_tasks_total', bw)],
        labels: { alert_type: 'quality_degradation' },
        annotations: {
          summary: 'Workflow tasks cost far more than they usually do.',
          description: 'A workflow task costs %s over the last %s.' % [times, bw],
        },
        dashboard:: 'business',
      },
      llmSpend: {
        alert: 'AgencyLlmSpendAboveBaseline',
        expr: '%s > %g\nand %s' % [
          ratio('llmSpend'),
          relative.llmSpend.factor,
          enough('agency_agent_llm_requests_total', bw, ['agent', 'agent_type', 'provider', 'model']),
        ],
        labels: { alert_type: 'quality_degradation' },
        annotations: {
          summary: 'The fleet spends far more on LLM calls than it usually does.',
          description: 'LLM spend per hour over the last %s is %s.' % [bw, times],
        },
        dashboard:: 'llm',
      },
      tokensPerTask: {
        alert: 'AgencyLlmTokensPerTaskAboveBaseline',
        expr: '%s > %g\nand %s' % [ratio('tokensPerTask'), relative.tokensPerTask.factor, enough('agency_agent_tasks_total', bw, ['agent'])],
        labels: { alert_type: 'quality_degradation' },
        annotations: {
          summary: 'Tasks of an agent type use far more LLM tokens than they usually do.',
          description: 'A {{ $labels.agent_type }} task uses %s in LLM tokens over the last %s.' % [times, bw],
        },
        dashboard:: 'llm',
      },
      queueDepth: {
        alert: 'AgencyQueueDepthAboveBaseline',
        // A gauge: above the factor at every evaluation of gaugeWindow, so one scrape does not flip it.
        expr: 'min_over_time(%s[%s]) > %g\nand queue:agency_queue_depth:latest >= %d' % [
          ratio('queueDepth'),
          c.gaugeWindow,
          relative.queueDepth.factor,
          relative.queueDepth.minItems,
        ],
        labels: { alert_type: 'system_health' },
        annotations: {
          summary: 'A queue holds far more items than it usually does.',
          description: 'Queue {{ $labels.queue }} has held %s for %s.' % [times, c.gaugeWindow],
        },
        dashboard:: 'fleet',
      },
      queueWait: {
        alert: 'AgencyQueueWaitAboveBaseline',
        expr: '%s > %g\nand %s' % [ratio('queueWait'), relative.queueWait.factor, enough('agency_queue_wait_seconds_count', c.agentWindow)],
        labels: { alert_type: 'system_health' },
        annotations: {
          summary: "A queue's items wait far longer than they usually do.",
          description: 'Items of queue {{ $labels.queue }} wait %s (P95 over the last %s).' % [times, c.agentWindow],
        },
        dashboard:: 'fleet',
      },
      formationTime: {
        alert: 'AgencyCouncilFormationTimeAboveBaseline',
        expr: '%s > %g\nand %s' % [
          ratio('formationTime'),
          relative.formationTime.factor,
          enough('agency_council_consensus_formation_seconds_count', c.councilWindow),
        ],
        labels: { alert_type: 'coordination_failure' },
        annotations: {
          summary: 'A council takes far longer to reach consensus than it usually does.',
          description: 'Council {{ $labels.council }} needs %s to reach consensus (P95 over the last %s).' % [times, c.councilWindow],
        },
        dashboard:: 'council',
      },
    },

    groups+: [
      {
        name: 'agency-baseline.alerts',
        rules: [
          alerts[key] {
            'for': relative[key]['for'],
            labels+: { severity: s.relative },
          }
          for key in std.objectFields(relative)
          if relative[key].enabled
        ],
      },
    ],
  },
}

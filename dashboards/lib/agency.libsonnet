// What the Agency dashboards share: selectors, health states, and threshold colours derived
// from the same _config values the alerts use, so a panel turns red when the alert would fire.
local panels = import 'panels.libsonnet';

// A dashboard extends this library with the mixin's config: agency { _config:: c }.
{
  _config:: error 'extend lib/agency.libsonnet with { _config:: <the mixin config> }',

  // Matchers of the dashboard's $job and $cluster variables, on the configured labels.
  scope:: '%s=~"$job", %s=~"$cluster"' % [$._config.jobLabel, $._config.clusterLabel],
  // The dashboard's job and cluster, plus extra matchers: sel('agent=~"$agent"').
  // Recording rules keep job and cluster, so the same selector serves rules and raw metrics.
  sel(extra=''):: '{%s%s}' % [$.scope, if extra == '' then '' else ', ' + extra],

  // Health states as numbers, so a stat or state timeline can colour them: the status rules
  // are 0/1 series with a `status` label, exactly one of which is 1 per target.
  states:: [[1, 'healthy', 'green'], [2, 'degraded', 'orange'], [3, 'critical', 'red'], [4, 'unknown', 'text']],
  statusMappings:: panels.valueMappings($.states),
  statusCode(metric, selectorExtra='')::
    'max without (status) (\n    %s\n)' % std.join('\n  or ', [
      '%d * (%s%s == 1)' % [s[0], metric, $.sel('status="%s"%s' % [s[1], if selectorExtra == '' then '' else ', ' + selectorExtra])]
      for s in $.states
    ]),

  // The baseline the relative alerts compare a recorded signal with (rules/baseline.libsonnet),
  // with the dashboard's selector; drawn dashed beside the signal by baselineStyle.
  baseline(series, extra='')::
    (import '../../rules/lib.libsonnet').baseline($._config, series).value + $.sel(extra),
  baselineStyle:: {
    matcher: { id: 'byRegexp', options: '.*baseline' },
    properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
  },

  // A window ("5m", "1h", "30d") in seconds, to order windows.
  seconds(window)::
    local units = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
    std.parseInt(std.substr(window, 0, std.length(window) - 1)) * units[window[std.length(window) - 1]],

  // The mixin's alerts among ALERTS (every one is named Agency…), and those of them firing.
  agencyAlerts:: 'alertname=~"Agency.+"',
  firingAlerts:: 'alertstate="firing", %s' % $.agencyAlerts,
  // Firing Agency alerts of this job and cluster, with extra matchers.
  alerts(extra=''):: 'ALERTS%s' % $.sel($.firingAlerts + (if extra == '' then '' else ', ' + extra)),

  // Threshold colours from the mixin's config `c`.
  thresholds(c):: {
    local t = c.thresholds,
    success: panels.higherIsBetter(1 - t.agentErrorRatioCritical, 1 - t.agentErrorRatioWarning),
    errorRatio: panels.lowerIsBetter(t.agentErrorRatioWarning, t.agentErrorRatioCritical),
    health: panels.higherIsBetter(c.degradedScore, c.healthyScore),
    // Load scores fully up to loadFullScoreBelow; AgencyAgentOverloaded fires above utilizationHigh.
    utilization: panels.lowerIsBetter(c.loadFullScoreBelow, t.utilizationHigh),
    cpu: panels.lowerIsBetter(t.cpuHigh),
    liveRatio: panels.higherIsBetter(c.fleetDownRatio, c.fleetLiveRatioDegraded),
    staleSeconds: panels.lowerIsBetter(c.staleAfterSeconds),
    // P95 over the objective: at 1 AgencyAgentLatencyHigh is on its way.
    latencyVsObjective: panels.lowerIsBetter(1),
    consensus: panels.higherIsBetter(t.consensusRatioCritical, t.consensusRatioWarning),
    consensusP95: panels.lowerIsBetter(t.consensusP95SecondsWarning),
    debate: panels.thresholds('green', [[t.debateRatioInfo, 'blue']]),
    compliance: panels.higherIsBetter(t.complianceRatioCritical, t.complianceRatioWarning),
    falsePositive: panels.lowerIsBetter(t.falsePositiveRatioWarning),
    falseNegative: panels.lowerIsBetter(t.falseNegativeRatioWarning),
    quality: panels.thresholds('red', [[t.qualityAvgWarning, 'green']]),
    costPerTask: panels.lowerIsBetter(t.costPerTaskUsdWarning),
    queueBacklog: panels.lowerIsBetter(t.queueBacklogItems),
    // z-scores past anomalyZScore raise the info-level anomaly alerts.
    anomaly: panels.thresholds('green', [[t.anomalyZScore, 'blue']]),
    exporterLimit: panels.lowerIsBetter(t.exporterLimitRatio),
    // Workflow completion: below the availability objective the budget burns; below
    // workflowSuccessEmergency AgencyWorkflowFailing pages.
    completion: panels.higherIsBetter(t.workflowSuccessEmergency, c.slos.availability.objective),
    availability: panels.thresholds('orange', [[c.slos.availability.objective, 'green']]),
    budget: panels.thresholds('red', [[0, 'green']]),
    // Burn rate: each enabled tier's factor, coloured by the tier's severity.
    burnRate: panels.thresholds('green', [
      [tier.factor, if tier.severity == 'warning' then 'orange' else 'red']
      for tier in std.sort([tier for tier in c.burnRateTiers if tier.enabled], function(tier) tier.factor)
    ]),
    // LLM requests and tool calls: AgencyLlmErrorRateHigh warns and pages at these ratios,
    // AgencyToolFailing warns at its own.
    llmErrorRatio: panels.lowerIsBetter(t.llmErrorRatioWarning, t.llmErrorRatioCritical),
    toolErrorRatio: panels.lowerIsBetter(t.toolErrorRatioWarning),
    // Fleet LLM spend per hour: each enabled budget tier's factor × llmDailyBudgetUsd / 24,
    // coloured by the tier's severity.
    llmSpendPerHour: panels.thresholds('green', [
      [tier.factor * c.llmDailyBudgetUsd / 24, if tier.severity == 'warning' then 'orange' else 'red']
      for tier in std.sort([tier for tier in c.llmBudgetBurnTiers if tier.enabled], function(tier) tier.factor)
    ]),
    up: panels.thresholds('red', [[1, 'green']]),
    alerts: panels.thresholds('green', [[1, 'red']]),
  },

  // Links from a table row or series to the agent and council dashboards.
  agentLink(c):: panels.dashboardLink(
    'Agent detail: ${__data.fields.agent}',
    c.dashboardUids.agent,
    '&var-agent_type=${__data.fields.agent_type}&var-agent=${__data.fields.agent}',
  ),
}

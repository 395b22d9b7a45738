// Alerts on councils: consensus rate and speed, debates, constitutional compliance and the
// quality of their decisions. Links are added by alerts.libsonnet from `dashboard`.
local lib = import '../lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local t = c.thresholds,
    local f = c['for'],
    local s = c.severities,
    local cw = c.councilWindow,

    // Guards: a council must attempt consensus often enough for a ratio to mean something.
    local busyCouncil = 'council:agency_council_consensus:attempts_rate%s > %g' % [cw, c.minCouncilRate],

    // The ratio alerts have a tier each of multiWindowTiers: severe (…Critical thresholds) and
    // mild (…Warning). One alert name, both tiers: past the severe threshold both fire, and
    // Alertmanager lets the critical one mute the warning.
    local tiered(alert, thresholds, ratio, op, counter, matchers='', extra=[]) = [
      local tier = c.multiWindowTiers[name];
      alert(tier.longWindow) {
        expr: lib.tierExpr(c, name, ratio, '%s %g' % [op, thresholds[name]], counter, matchers, extra),
        'for': tier['for'],
        labels+: { severity: tier.severity },
      } + lib.held(c)
      for name in ['severe', 'mild']
    ],
    local consensusRateLow(window) = {
      alert: 'AgencyCouncilConsensusRateLow',
      labels: { alert_type: 'coordination_failure' },
      annotations: {
        summary: 'A council fails to reach consensus.',
        description: 'Council {{ $labels.council }} reached consensus in {{ $value | humanizePercentage }} of attempts over the last %s.' % window,
      },
      dashboard:: 'council',
    },
    local complianceRatioLow(window) = {
      alert: 'AgencyConstitutionalComplianceLow',
      labels: { alert_type: 'security_violation' },
      annotations: {
        summary: 'Council decisions violate the constitution.',
        description: 'Council {{ $labels.council }} complied with the constitution in {{ $value | humanizePercentage }} of checked decisions over the last %s.' % window,
      },
      dashboard:: 'council',
    },
    local falsePositiveRateHigh(window) = {
      alert: 'AgencyCouncilFalsePositiveRateHigh',
      labels: { alert_type: 'quality_degradation' },
      annotations: {
        summary: 'A council accepts too many cases it should reject.',
        description: 'Council {{ $labels.council }} has a false positive rate of {{ $value | humanizePercentage }} over the last %s.' % window,
      },
      dashboard:: 'council',
    },
    local falseNegativeRateHigh(window) = {
      alert: 'AgencyCouncilFalseNegativeRateHigh',
      labels: { alert_type: 'quality_degradation' },
      annotations: {
        summary: 'A council rejects too many cases it should accept.',
        description: 'Council {{ $labels.council }} has a false negative rate of {{ $value | humanizePercentage }} over the last %s.' % window,
      },
      dashboard:: 'council',
    },
    local decisions = 'agency_council_decisions_total',

    groups+: [
      {
        name: 'agency-council.alerts',
        rules: tiered(
          consensusRateLow,
          { severe: t.consensusRatioCritical, mild: t.consensusRatioWarning },
          function(window) 'council:agency_council_consensus:success_ratio_rate%s' % window,
          '<',
          'agency_council_consensus_attempts_total',
        ) + tiered(
          complianceRatioLow,
          { severe: t.complianceRatioCritical, mild: t.complianceRatioWarning },
          function(window) 'council:agency_council_consensus:compliance_ratio_rate%s' % window,
          '<',
          'agency_council_compliance_checks_total',
        ) + tiered(
          falsePositiveRateHigh,
          { severe: t.falsePositiveRatioCritical, mild: t.falsePositiveRatioWarning },
          function(window) 'council:agency_council_decisions:false_positive_ratio_rate%s' % window,
          '>',
          decisions,
          'outcome=~"fp|tn"',
          ['outcome'],
        ) + tiered(
          falseNegativeRateHigh,
          { severe: t.falseNegativeRatioCritical, mild: t.falseNegativeRatioWarning },
          function(window) 'council:agency_council_decisions:false_negative_ratio_rate%s' % window,
          '>',
          decisions,
          'outcome=~"fn|tp"',
          ['outcome'],
        ) + [
          {
            alert: 'AgencyCouncilConsensusSlow',
            expr: 'council:agency_council_consensus:formation_seconds_p95_rate%s > %g\nand %s' % [cw, t.consensusP95SecondsWarning, busyCouncil],
            'for': f.consensus,
            labels: { severity: s.consensusSlow, alert_type: 'coordination_failure' },
            annotations: {
              summary: 'A council takes too long to reach consensus.',
              description: 'Council {{ $labels.council }} needs {{ $value | humanizeDuration }} (P95) to reach consensus over the last %s.' % cw,
            },
            dashboard:: 'council',
          },
          {
            alert: 'AgencyCouncilDebateFrequencyHigh',
            expr: 'council:agency_council_consensus:debate_ratio_rate%s > %g\nand %s' % [cw, t.debateRatioInfo, busyCouncil],
            'for': f.consensus,
            labels: { severity: s.debateFrequency, alert_type: 'coordination_failure' },
            annotations: {
              summary: 'A council needs a debate for most decisions.',
              description: 'Council {{ $labels.council }} debated {{ $value | humanizePercentage }} of its consensus formations over the last %s.' % cw,
            },
            dashboard:: 'council',
          },
        ],
      },
    ],
  },
}

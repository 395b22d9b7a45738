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

    // Guards: a council must attempt consensus (or record decisions) often enough for a ratio
    // to mean something.
    local busyCouncil = 'council:agency_council_consensus:attempts_rate%s > %g' % [cw, c.minCouncilRate],
    local consensusLow(threshold) = 'council:agency_council_consensus:success_ratio_rate%s < %g\nand %s' % [cw, threshold, busyCouncil],
    local complianceLow(threshold) = 'council:agency_council_consensus:compliance_ratio_rate%s < %g\nand %s' % [cw, threshold, busyCouncil],
    local decided(outcomes) = '%s > %g' % [lib.sumRate(c, 'agency_council_decisions_total', cw, ['outcome'], 'outcome=~"%s"' % outcomes), c.minCouncilRate],

    // Alert names with two thresholds: past the critical one both fire.
    local consensusRateLow = {
      alert: 'AgencyCouncilConsensusRateLow',
      'for': f.consensus,
      labels: { alert_type: 'coordination_failure' },
      annotations: {
        summary: 'A council fails to reach consensus.',
        description: 'Council {{ $labels.council }} reached consensus in {{ $value | humanizePercentage }} of attempts over the last %s.' % cw,
      },
      dashboard:: 'council',
    },
    local complianceRatioLow = {
      alert: 'AgencyConstitutionalComplianceLow',
      'for': f.compliance,
      labels: { alert_type: 'security_violation' },
      annotations: {
        summary: 'Council decisions violate the constitution.',
        description: 'Council {{ $labels.council }} complied with the constitution in {{ $value | humanizePercentage }} of checked decisions over the last %s.' % cw,
      },
      dashboard:: 'council',
    },

    groups+: [
      {
        name: 'agency-council.alerts',
        rules: [
          consensusRateLow {
            expr: consensusLow(t.consensusRatioWarning),
            labels+: { severity: 'warning' },
          },
          consensusRateLow {
            expr: consensusLow(t.consensusRatioCritical),
            labels+: { severity: 'critical' },
          },
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
          complianceRatioLow {
            expr: complianceLow(t.complianceRatioWarning),
            labels+: { severity: 'warning' },
          },
          complianceRatioLow {
            expr: complianceLow(t.complianceRatioCritical),
            labels+: { severity: 'critical' },
          },
          {
            alert: 'AgencyCouncilFalsePositiveRateHigh',
            expr: 'council:agency_council_decisions:false_positive_ratio_rate%s > %g\nand %s' % [cw, t.falsePositiveRatioWarning, decided('fp|tn')],
            'for': f.quality,
            labels: { severity: s.decisionErrors, alert_type: 'quality_degradation' },
            annotations: {
              summary: 'A council accepts too many cases it should reject.',
              description: 'Council {{ $labels.council }} has a false positive rate of {{ $value | humanizePercentage }} over the last %s.' % cw,
            },
            dashboard:: 'council',
          },
          {
            alert: 'AgencyCouncilFalseNegativeRateHigh',
            expr: 'council:agency_council_decisions:false_negative_ratio_rate%s > %g\nand %s' % [cw, t.falseNegativeRatioWarning, decided('fn|tp')],
            'for': f.quality,
            labels: { severity: s.decisionErrors, alert_type: 'quality_degradation' },
            annotations: {
              summary: 'A council rejects too many cases it should accept.',
              description: 'Council {{ $labels.council }} has a false negative rate of {{ $value | humanizePercentage }} over the last %s.' % cw,
            },
            dashboard:: 'council',
          },
        ],
      },
    ],
  },
}

// Council & coordination: consensus, debates, constitutional compliance, coordination cost and
// decision quality of the councils.
local agency = import 'lib/agency.libsonnet';
local d = import 'lib/dashboard.libsonnet';
local p = import 'lib/panels.libsonnet';

function(c)
  local a = agency { _config:: c };
  local th = a.thresholds(c);
  local t = c.thresholds;
  local cw = c.councilWindow;
  local q = p.query;
  local sc = a.sel('council=~"$council"');
  local rule(name) = 'council:%s_rate%s%s' % [name, cw, sc];
  local violations = 'council:agency_council_compliance_violations:rate%s%s' % [cw, sc];
  d.new(
    c,
    uid=c.dashboardUids.council,
    title='Agency / Council & coordination',
    description='Consensus rate and formation time, debates, constitutional compliance, coordination overhead and decision quality of the councils, over %s.' % cw,
    tags=['council'],
    variables=[
      d.queryVariable(
        'council',
        'council',
        'label_values(agency_council_consensus_attempts_total%s, council)' % a.sel(),
        includeAll=true,
        multi=true,
      ),
    ],
    panelList=[
      p.row('Now (worst of the selected councils)'),
      p.stat(
        'Consensus rate',
        'Lowest share of consensus formations that succeeded over %s. AgencyCouncilConsensusRateLow: warning below %g%%, critical below %g%%.'
        % [cw, t.consensusRatioWarning * 100, t.consensusRatioCritical * 100],
        'percentunit',
        [q('min(%s)' % rule('agency_council_consensus:success_ratio'), 'consensus')],
        thresholds=th.consensus,
        decimals=1,
        width=3,
      ),
      p.stat(
        'Formation P95',
        'Highest P95 time to consensus over %s. AgencyCouncilConsensusSlow fires above %gs.' % [cw, t.consensusP95SecondsWarning],
        's',
        [q('max(%s)' % rule('agency_council_consensus:formation_seconds_p95'), 'P95')],
        thresholds=th.consensusP95,
        width=3,
      ),
      p.stat(
        'Debate ratio',
        'Highest share of formations that needed a debate over %s (info above %g%%).' % [cw, t.debateRatioInfo * 100],
        'percentunit',
        [q('max(%s)' % rule('agency_council_consensus:debate_ratio'), 'debates')],
        thresholds=th.debate,
        decimals=1,
        width=3,
      ),
      p.stat(
        'Rounds per debate',
        'Highest mean number of rounds per debate over %s.' % cw,
        'short',
        [q('max(%s)' % rule('agency_council_debate_rounds:avg'), 'rounds')],
        decimals=1,
        width=3,
      ),
      p.stat(
        'Compliance rate',
        'Lowest share of checked decisions that complied with the constitution over %s. AgencyConstitutionalComplianceLow: warning below %g%%, critical below %g%%.'
        % [cw, t.complianceRatioWarning * 100, t.complianceRatioCritical * 100],
        'percentunit',
        [q('min(%s)' % rule('agency_council_consensus:compliance_ratio'), 'compliance')],
        thresholds=th.compliance,
        decimals=2,
        width=3,
      ),
      p.stat(
        'Active sessions',
        'Coordination sessions open now, all selected councils (council:agency_council_sessions:active).',
        'short',
        [q('sum(council:agency_council_sessions:active%s)' % sc, 'sessions')],
        width=3,
      ),
      p.stat(
        'False positive rate',
        'Highest share of negatives a council accepted (fp / (fp + tn)) over %s. AgencyCouncilFalsePositiveRateHigh fires above %g%%.' % [cw, t.falsePositiveRatioWarning * 100],
        'percentunit',
        [q('max(%s)' % rule('agency_council_decisions:false_positive_ratio'), 'FP rate')],
        thresholds=th.falsePositive,
        decimals=1,
        width=3,
      ),
      p.stat(
        'False negative rate',
        'Highest share of positives a council rejected (fn / (fn + tp)) over %s. AgencyCouncilFalseNegativeRateHigh fires above %g%%.' % [cw, t.falseNegativeRatioWarning * 100],
        'percentunit',
        [q('max(%s)' % rule('agency_council_decisions:false_negative_ratio'), 'FN rate')],
        thresholds=th.falseNegative,
        decimals=1,
        width=3,
      ),

      p.row('Consensus'),
      p.timeseries(
        'Consensus rate',
        'Share of consensus formations that succeeded over %s, per council. Dashed: the alert thresholds.' % cw,
        'percentunit',
        [q(rule('agency_council_consensus:success_ratio'), '{{council}}')],
        thresholds=th.consensus,
        thresholdsStyle='dashed',
        max=1,
        width=8,
      ),
      p.timeseries(
        'Consensus attempts',
        'Consensus formations attempted per hour, per council, from the %s rate.' % cw,
        'suffix: /h',
        [q('3600 * %s' % rule('agency_council_consensus:attempts'), '{{council}}')],
        min=0,
        width=8,
      ),
      p.timeseries(
        'Formation time percentiles',
        'P50 and P95 of the time to reach consensus over %s per council, and the P95 baseline (dashed line; AgencyCouncilFormationTimeAboveBaseline fires at %g times it). Dashed threshold: AgencyCouncilConsensusSlow.'
        % [cw, c.relativeAlerts.formationTime.factor],
        's',
        [
          q(rule('agency_council_consensus:formation_seconds_p50'), '{{council}} P50'),
          q(rule('agency_council_consensus:formation_seconds_p95'), '{{council}} P95'),
          q(a.baseline('council:agency_council_consensus:formation_seconds_p95_rate%s' % cw, 'council=~"$council"'), '{{council}} P95 baseline'),
        ],
        overrides=[a.baselineStyle],
        thresholds=th.consensusP95,
        thresholdsStyle='dashed',
        min=0,
        width=8,
      ),
      p.heatmap(
        'Formation time heatmap',
        'Consensus formations per formation-time bucket (agency_council_consensus_formation_seconds), selected councils.',
        's',
        q('sum by (le) (rate(agency_council_consensus_formation_seconds_bucket%s[$__rate_interval]))' % sc, '{{le}}', format='heatmap'),
      ),
      p.heatmap(
        'Debate rounds heatmap',
        'Debates per number-of-rounds bucket (agency_council_debate_rounds), selected councils.',
        'short',
        q('sum by (le) (rate(agency_council_debate_rounds_bucket%s[$__rate_interval]))' % sc, '{{le}}', format='heatmap'),
        scheme='Blues',
      ),

      p.row('Debates'),
      p.timeseries(
        'Debate frequency',
        'Share of consensus formations that needed a debate over %s, per council (info above %g%%).' % [cw, t.debateRatioInfo * 100],
        'percentunit',
        [q(rule('agency_council_consensus:debate_ratio'), '{{council}}')],
        thresholds=th.debate,
        thresholdsStyle='dashed',
        min=0,
        max=1,
      ),
      p.timeseries(
        'Rounds per debate',
        'Mean rounds per debate over %s, per council.' % cw,
        'short',
        [q(rule('agency_council_debate_rounds:avg'), '{{council}}')],
        min=0,
      ),

      p.row('Constitution'),
      p.timeseries(
        'Compliance rate',
        'Share of checked decisions that complied with the constitution over %s, per council. Dashed: the alert thresholds.' % cw,
        'percentunit',
        [q(rule('agency_council_consensus:compliance_ratio'), '{{council}}')],
        thresholds=th.compliance,
        thresholdsStyle='dashed',
        max=1,
        width=8,
      ),
      p.timeseries(
        'Violations by principle',
        'Constitutional violations per hour over %s, by violated principle, selected councils.' % cw,
        'suffix: /h',
        [q('3600 * sum by (principle) (%s)' % violations, '{{principle}}')],
        stack=true,
        min=0,
        width=8,
      ),
      p.table(
        'Violations by council and principle',
        'Constitutional violations per hour over %s, by council and principle, most first.' % cw,
        'suffix: /h',
        [q('sort_desc(3600 * sum by (council, principle) (%s))' % violations, instant=true, format='table')],
        [['council', 'council'], ['principle', 'principle'], ['Value', 'violations/h']],
        sortBy={ displayName: 'violations/h', desc: true },
        width=8,
      ),

      p.row('Coordination'),
      p.timeseries(
        'Coordination overhead',
        'Seconds spent coordinating per second over %s, per council: 0.5 means half of wall-clock time; above 1, sessions overlap.' % cw,
        'suffix: s/s',
        [q(rule('agency_council_coordination:overhead_ratio'), '{{council}}')],
        min=0,
      ),
      p.timeseries(
        'Active sessions',
        'Coordination sessions open, per council.',
        'short',
        [q('council:agency_council_sessions:active%s' % sc, '{{council}}')],
        stack=true,
        min=0,
      ),

      p.row('Decision quality'),
      p.timeseries(
        'False positive rate',
        'fp / (fp + tn) of council decisions over %s. Dashed: AgencyCouncilFalsePositiveRateHigh threshold.' % cw,
        'percentunit',
        [q(rule('agency_council_decisions:false_positive_ratio'), '{{council}}')],
        thresholds=th.falsePositive,
        thresholdsStyle='dashed',
        min=0,
      ),
      p.timeseries(
        'False negative rate',
        'fn / (fn + tp) of council decisions over %s. Dashed: AgencyCouncilFalseNegativeRateHigh threshold.' % cw,
        'percentunit',
        [q(rule('agency_council_decisions:false_negative_ratio'), '{{council}}')],
        thresholds=th.falseNegative,
        thresholdsStyle='dashed',
        min=0,
      ),
    ],
  )

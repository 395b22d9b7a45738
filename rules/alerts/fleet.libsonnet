// Alerts on the fleet and the workflows it serves: most agents down, workflows failing,
// queues backing up, quality and cost. Links are added by alerts.libsonnet from `dashboard`.
local lib = import '../lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local t = c.thresholds,
    local f = c['for'],
    local s = c.severities,
    local w = c.agentWindow,
    local bw = c.businessWindow,
    local R = lib.without(c),

    local busyWorkflow = 'sum %s (rate(agency_workflow_tasks_total%s[%s])) > %g' % [R, lib.sel(c), w, c.minTaskRate],

    groups+: [
      {
        name: 'agency-fleet.alerts',
        rules: [
          {
            alert: 'AgencyFleetMostlyDown',
            expr: 'fleet:agency_agent_liveness:ratio < %g' % c.fleetDownRatio,
            'for': f.fleetDown,
            labels: { severity: s.fleetDown, alert_type: 'system_health' },
            annotations: {
              summary: 'Most agents have stopped reporting.',
              description: 'Only {{ $value | humanizePercentage }} of agents have reported in the last %ds.' % c.staleAfterSeconds,
            },
            dashboard:: 'fleet',
          },
          {
            alert: 'AgencyWorkflowFailing',
            expr: 'fleet:agency_workflow_tasks:error_ratio_rate%s > %g\nand %s' % [w, t.workflowSuccessEmergency, busyWorkflow],
            'for': f.workflowEmergency,
            labels: { severity: s.workflowEmergency, alert_type: 'system_health' },
            annotations: {
              summary: 'Most workflow tasks are failing.',
              description: '{{ $value | humanizePercentage }} of workflow tasks failed over the last %s.' % w,
            },
            dashboard:: 'business',
          },
          {
            alert: 'AgencyQueueBacklogGrowing',
            // Predicted above the threshold, and above today's depth: growing, not draining.
            expr: 'queue:agency_queue_depth:predict_linear_%(s)ds > %(n)g\nand queue:agency_queue_depth:predict_linear_%(s)ds > queue:agency_queue_depth:latest'
                  % { s: t.queueForecastSeconds, n: t.queueBacklogItems },
            'for': f.queueBacklog,
            labels: { severity: s.queueBacklog, alert_type: 'system_health' },
            annotations: {
              summary: 'A queue is on course to build a large backlog.',
              description: 'Queue {{ $labels.queue }} is predicted to hold {{ $value | printf "%%.0f" }} items within %ds.' % t.queueForecastSeconds,
            },
            dashboard:: 'fleet',
          },
        ] + [
          // Mild: the mean score under an absolute floor. Severe: down by qualityDropCritical
          // from its own baseline, since one workload's usual score is another's failure.
          local tier = c.multiWindowTiers[name];
          local quality(window) = 'fleet:agency_workflow_tasks:quality_score_avg_rate%s' % window;
          local baseline = lib.baseline(c, lib.baselineSignals(c).quality.series).value;
          local scored = 'agency_workflow_task_quality_score_count';
          {
            alert: 'AgencyWorkflowQualityLow',
            expr: if name == 'mild' then
              lib.tierExpr(c, name, quality, '< %g' % t.qualityAvgWarning, scored)
            else
              lib.tierExpr(c, name, function(window) '%s / %s' % [quality(window), baseline], '< %g' % (1 - t.qualityDropCritical), scored),
            'for': tier['for'],
            labels: { severity: tier.severity, alert_type: 'quality_degradation' },
            annotations: {
              summary: 'The quality of workflow results has dropped.',
              description: if name == 'mild' then
                'Mean workflow quality score is {{ $value | printf "%%.2f" }} over the last %s.' % tier.longWindow
              else
                'Mean workflow quality score over the last %s is {{ $value | humanizePercentage }} of its usual level (the baseline over %s).' % [tier.longWindow, c.relativeBaseline],
            },
            dashboard:: 'business',
          } + lib.held(c)
          for name in ['severe', 'mild']
        ] + [
          {
            alert: 'AgencyCostPerTaskHigh',
            expr: 'fleet:agency_workflow_tasks:cost_usd_per_task_rate%s > %g' % [bw, t.costPerTaskUsdWarning],
            'for': f.cost,
            labels: { severity: s.cost, alert_type: 'quality_degradation' },
            annotations: {
              summary: 'Workflow tasks cost more than budgeted.',
              description: 'A workflow task costs {{ $value | printf "%%.3f" }} USD on average over the last %s.' % bw,
            },
            dashboard:: 'business',
          },
        ],
      },
    ],
  },
}

// Alerts on single agents and agent types: errors, latency, health, liveness, resources and
// anomalies. runbook_url and dashboard_url are added by alerts.libsonnet from `dashboard`.
local lib = import '../lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local t = c.thresholds,
    local f = c['for'],
    local s = c.severities,
    local w = c.agentWindow,
    local R = lib.without(c),

    // Per-agent performance alerts hold through a flapping agent's dips (keepFiringFor).
    local held = lib.held(c),
    local busyAgent = 'agent:agency_agent_tasks:rate%s > %g' % [w, c.minTaskRate],
    // Guards use a plain `and`: both sides come from the same aggregation, so their label sets
    // (cluster, job, …) match exactly and a namesake in another cluster cannot satisfy them.
    local errorRatio(threshold) = '(1 - agent:agency_agent_tasks:success_ratio_rate%s) > %g\nand %s' % [w, threshold, busyAgent],

    // One alert name, two thresholds: past the critical one both fire.
    local errorRateHigh = {
      alert: 'AgencyAgentErrorRateHigh',
      'for': f.agentErrors,
      labels: { alert_type: 'agent_performance' },
      annotations: {
        summary: 'An agent fails too many of its tasks.',
        description: 'Agent {{ $labels.agent }} ({{ $labels.agent_type }}) failed {{ $value | humanizePercentage }} of its tasks over the last %s.' % w,
      },
      dashboard:: 'agent',
    } + held,

    groups+: [
      {
        name: 'agency-agent.alerts',
        rules: [
          errorRateHigh {
            expr: errorRatio(t.agentErrorRatioWarning),
            labels+: { severity: 'warning' },
          },
          errorRateHigh {
            expr: errorRatio(t.agentErrorRatioCritical),
            labels+: { severity: 'critical' },
          },
          {
            alert: 'AgencyAgentLatencyHigh',
            expr: 'agent:agency_agent_task_duration_seconds:p95_rate%s > agent:agency_agent_task_duration_seconds:objective_seconds\nand %s' % [w, busyAgent],
            'for': f.agentLatency,
            labels: { severity: s.agentLatency, alert_type: 'agent_performance' },
            annotations: {
              summary: "An agent's P95 task duration is above its agent type's objective.",
              description: 'Agent {{ $labels.agent }} ({{ $labels.agent_type }}) has a P95 task duration of {{ $value | humanizeDuration }} over the last %s.' % w,
            },
            dashboard:: 'agent',
          } + held,
          {
            alert: 'AgencyAgentHealthScoreLow',
            expr: 'agent:agency_agent_health:score < %g\nand agent:agency_agent_liveness:up == 1' % t.healthScoreLow,
            'for': f.healthScore,
            labels: { severity: s.healthScore, alert_type: 'agent_performance' },
            annotations: {
              summary: "An agent's health score is in the critical band.",
              description: 'Agent {{ $labels.agent }} ({{ $labels.agent_type }}) has a health score of {{ $value | printf "%.2f" }}.',
            },
            dashboard:: 'agent',
          } + held,
          {
            alert: 'AgencyAgentDown',
            expr: 'agent:agency_agent_liveness:up == 0',
            'for': f.agentDown,
            labels: { severity: s.agentDown, alert_type: 'system_health' },
            annotations: {
              summary: 'An agent has stopped reporting.',
              description: 'Agent {{ $labels.agent }} ({{ $labels.agent_type }}) has sent no event for more than %ds.' % c.staleAfterSeconds,
            },
            dashboard:: 'agent',
          },
          {
            alert: 'AgencyAgentCpuSaturated',
            expr: 'min_over_time(agent:agency_agent_cpu_usage_ratio:latest[%s]) > %g' % [c.gaugeWindow, t.cpuHigh],
            'for': f.resources,
            labels: { severity: s.resources, alert_type: 'system_health' },
            annotations: {
              summary: "An agent's CPU is saturated.",
              description: 'Agent {{ $labels.agent }} ({{ $labels.agent_type }}) has used {{ $value | humanizePercentage }} CPU or more for the last %s.' % c.gaugeWindow,
            },
            dashboard:: 'agent',
          },
          {
            alert: 'AgencyAgentOverloaded',
            expr: 'min_over_time(agent:agency_agent_capacity:utilization_ratio[%s]) > %g' % [c.gaugeWindow, t.utilizationHigh],
            'for': f.resources,
            labels: { severity: s.resources, alert_type: 'system_health' },
            annotations: {
              summary: 'An agent runs more tasks than its declared capacity.',
              description: 'Agent {{ $labels.agent }} ({{ $labels.agent_type }}) runs at {{ $value | humanizePercentage }} of its capacity.',
            },
            dashboard:: 'agent',
          },
          {
            alert: 'AgencyAgentLatencyAnomaly',
            expr: 'agent_type:agency_agent_task_duration_seconds:p95_zscore_%s > %g' % [c.anomalyBaseline, t.anomalyZScore],
            'for': f.anomaly,
            labels: { severity: s.anomaly, alert_type: 'agent_performance' },
            annotations: {
              summary: "An agent type's P95 task duration is far from its usual level.",
              description: 'P95 task duration of {{ $labels.agent_type }} agents is {{ $value | printf "%%.1f" }} standard deviations above its mean over the last %s.' % c.anomalyBaseline,
            },
            dashboard:: 'agentType',
          },
          {
            alert: 'AgencyAgentErrorRatioAnomaly',
            expr: 'agent_type:agency_agent_tasks:error_ratio_zscore_%s > %g' % [c.anomalyBaseline, t.anomalyZScore],
            'for': f.anomaly,
            labels: { severity: s.anomaly, alert_type: 'agent_performance' },
            annotations: {
              summary: "An agent type's error ratio is far from its usual level.",
              description: 'Error ratio of {{ $labels.agent_type }} agents is {{ $value | printf "%%.1f" }} standard deviations above its mean over the last %s.' % c.anomalyBaseline,
            },
            dashboard:: 'agentType',
          },
        ],
      },
    ],
  },
}

// Voluntary disruptions (drains, upgrades) stop at most maxUnavailable replicas at once.
{
  local k = $._kubernetes,

  kubernetes+:: {
    podDisruptionBudget: {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: k.metadata(k.name),
      spec: {
        maxUnavailable: k.maxUnavailable,
        selector: { matchLabels: k.selectorLabels },
      },
    },
  },
}

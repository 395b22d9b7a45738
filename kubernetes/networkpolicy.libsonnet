// Only Prometheus and the agents may open the exporter's port; the exporter opens no
// connection of its own (no egress rule: every egress is refused, DNS included).
{
  local k = $._kubernetes,
  local np = k.networkPolicy,

  kubernetes+:: {
    [if np.enabled then 'networkPolicy']: {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: k.metadata(k.name),
      spec: {
        podSelector: { matchLabels: k.selectorLabels },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{
          from: np.prometheusPeers + np.ingestPeers,
          ports: [{ port: k.portName, protocol: 'TCP' }],
        }],
        egress: [],
      },
    },
  },
}

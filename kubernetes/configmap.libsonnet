// The exporter's configuration file, from the knobs: what the pod needs (listen address,
// shutdown timings, the Secrets' and the volume's paths) under the user's exporterConfig.
{
  local k = $._kubernetes,

  _kubernetes+:: {
    local k = self,
    exporterConfigFile: std.mergePatch(
      {
        listen: '0.0.0.0:%d' % k.port,
        shutdown_timeout: k.shutdownTimeoutSeconds,
        shutdown_grace: k.shutdownGraceSeconds,
      }
      + (if k.persistence.enabled then {
           persistence: {
             file: k.paths.stateDir + '/snapshot',
             interval: k.persistence.intervalSeconds,
           },
         } else {})
      + (if k.ingestTokensSecret != null then {
           ingest_tokens_file: k.paths.ingestTokensDir + '/tokens.yml',
         } else {})
      + (if k.webConfigSecret != null then {
           web_config_file: k.paths.webConfigDir + '/web.yml',
         } else {}),
      k.exporterConfig
    ),
    exporterConfigText: std.manifestYamlDoc(k.exporterConfigFile, quote_keys=false) + '\n',
  },

  kubernetes+:: {
    configMap: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: k.metadata(k.name + '-config'),
      data: { 'config.yml': k.exporterConfigText },
    },
  },
}

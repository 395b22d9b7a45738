"""The Kubernetes manifests: committed as the Jsonnet renders them, built by kustomize, valid
against the Kubernetes schemas, and consistent with the exporter, the image and the mixin."""

from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import _jsonnet
import kubernetes_validate
import pytest
import yaml

from agency_telemetry import __version__
from agency_telemetry.config import Config, parse_config, parse_listen

from scripts.generate import (
    MANIFEST_DIR,
    ROOT,
    kubernetes_manifest_names,
    manifest_files,
    render_config,
    render_kubernetes,
    stale_files,
)
from support.processes import require_binary

pytestmark = pytest.mark.integration

MANIFESTS = ROOT / MANIFEST_DIR
RULE_FILES = (ROOT / "rules/agency-rules.yml", ROOT / "rules/agency-alerts.yml")
# The Kubernetes releases whose schemas the objects must pass: the kubectl client's, and the
# newest that kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
OPERATOR_API = "monitoring.coreos.com/v1"
# Persistence on, and the web configuration (TLS) Secret set: every optional part at once.
VARIANT = {"persistence": {"enabled": True, "storageClass": "fast"}, "webConfigSecret": "web", "webTls": True}


@cache
def rendered() -> dict[str, dict]:
    return render_kubernetes()


@cache
def rendered_variant() -> dict[str, dict]:
    """The variant's objects but the PrometheusRule and dashboards (no knob of VARIANT touches
    them, and they take most of the rendering time)."""
    names = [n for n in kubernetes_manifest_names(VARIANT) if not n.startswith(("dashboard-", "prometheus-rule"))]
    return render_kubernetes(VARIANT, names)


@cache
def knobs() -> dict[str, Any]:
    snippet = "(import 'kubernetes/main.libsonnet')._kubernetes"
    return json.loads(_jsonnet.evaluate_snippet("knobs", snippet, jpathdir=[str(ROOT)]))


def kustomize(directory: Path) -> list[dict[str, Any]]:
    command = [require_binary("kubectl"), "kustomize", str(directory)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


@cache
def built() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS)


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def exporter_config(objects: list[dict[str, Any]]) -> Config:
    """The configuration file of the ConfigMap, read by the exporter's own parser."""
    config_map = one(objects, "ConfigMap", knobs()["name"] + "-config")
    return parse_config(config_map["data"]["config.yml"], "the ConfigMap's config.yml")


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == 1, [o["kind"] for o in workloads]
    return workloads[0]["spec"]["template"]["spec"]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = pod_spec(objects)["containers"]
    return only


def mount_of(objects: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """The volume mounted at ``path``'s directory (or at ``path``)."""
    directory = str(PurePosixPath(path).parent)
    (mount,) = [m for m in container(objects)["volumeMounts"] if m["mountPath"] in (path, directory)]
    (volume,) = [v for v in pod_spec(objects).get("volumes", []) if v["name"] == mount["name"]] or [None]
    return {"mount": mount, "volume": volume}


# --- the committed files ---------------------------------------------------------------------


def test_committed_manifests_are_the_rendered_ones(tmp_path):
    files = manifest_files(rendered())
    copy = tmp_path / MANIFEST_DIR
    shutil.copytree(MANIFESTS, copy)
    assert stale_files(files, tmp_path) == [], "kubernetes/manifests/ is stale; run `make generate`"

    (copy / "service.yaml").write_text((copy / "service.yaml").read_text().replace("9477", "9478"))
    (copy / "pod-disruption-budget.yaml").unlink()
    (copy / "replica-set.yaml").write_text("kind: ReplicaSet\n")
    assert stale_files(files, tmp_path) == [
        f"{MANIFEST_DIR}/pod-disruption-budget.yaml",
        f"{MANIFEST_DIR}/service.yaml",
        f"{MANIFEST_DIR}/replica-set.yaml (no longer rendered)",
    ]


def test_kustomize_builds_exactly_the_expected_objects():
    dashboards = sorted(path.name for path in (ROOT / "dashboards").glob("*.json"))
    expected = collections.Counter(
        {
            "ConfigMap": 1 + len(dashboards),
            "Deployment": 1,
            "Service": 2,
            "ServiceMonitor": 1,
            "PrometheusRule": 1,
            "PodDisruptionBudget": 1,
            "NetworkPolicy": 1,
        }
    )
    assert collections.Counter(o["kind"] for o in built()) == expected
    assert {o["metadata"]["namespace"] for o in built()} == {knobs()["namespace"]}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", ["default", "persistence"])
def test_core_objects_pass_the_kubernetes_schemas(version, variant):
    objects = built() if variant == "default" else list(rendered_variant().values())
    core = [o for o in objects if o["apiVersion"] != OPERATOR_API]
    assert len(core) >= 6
    for obj in core:
        kubernetes_validate.validate(obj, version, strict=True)
    broken = json.loads(json.dumps(one(core, "Service", knobs()["name"])))
    broken["spec"]["ports"][0]["port"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_persistence_variant_builds_with_kustomize(tmp_path):
    objects = rendered_variant()
    for name, text in manifest_files(objects).items():
        (tmp_path / PurePosixPath(name).name).write_text(text)
    kinds = collections.Counter(o["kind"] for o in kustomize(tmp_path))
    assert kinds["StatefulSet"] == 1
    assert "Deployment" not in kinds


# --- the pod -----------------------------------------------------------------------------------


def test_probes_hit_healthz_and_readyz_on_the_listening_port():
    config = exporter_config(built())
    main = container(built())
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert list(ports.values()) == [parse_listen(config.listen)[1]]
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = main[probe]["httpGet"]
        assert (get["path"], get["scheme"]) == (path, "HTTP")
        assert get["port"] in ports
    variant = container(list(rendered_variant().values()))
    assert {variant[p]["httpGet"]["scheme"] for p in ("startupProbe", "livenessProbe", "readinessProbe")} == {"HTTPS"}


def test_pod_runs_as_the_images_user_with_a_read_only_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid, gid = map(int, re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE).groups())
    for objects in (built(), list(rendered_variant().values())):
        pod = pod_spec(objects)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        security = container(objects)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert container(objects)["image"] == f"agency-telemetry:{__version__}"
        assert "resources" in container(objects) and container(objects)["resources"]["limits"]["memory"]


def test_termination_grace_outlasts_the_exporters_shutdown():
    config = exporter_config(built())
    interval = one(built(), "ServiceMonitor")["spec"]["endpoints"][0]["interval"]
    assert config.shutdown_grace > float(interval.removesuffix("s")), "a stopping replica must wait for a scrape"
    # Drain (shutdown_timeout), the last scrape (shutdown_grace), aiohttp's own close (shutdown_timeout).
    shutdown = 2 * config.shutdown_timeout + config.shutdown_grace
    assert pod_spec(built())["terminationGracePeriodSeconds"] > shutdown
    longer = render_kubernetes({"scrapeIntervalSeconds": 120}, ["config-map.yaml", "deployment.yaml"])
    objects = list(longer.values())
    assert exporter_config(objects).shutdown_grace > 120
    assert pod_spec(objects)["terminationGracePeriodSeconds"] > 2 * config.shutdown_timeout + 120


def test_files_the_configuration_names_are_mounted():
    objects = built()
    config = exporter_config(objects)
    args = container(objects)["args"]
    config_file = args[args.index("--config") + 1]
    assert mount_of(objects, config_file)["volume"]["configMap"]["name"] == knobs()["name"] + "-config"
    tokens = mount_of(objects, config.ingest_tokens_file)
    assert tokens["volume"]["secret"]["secretName"] == knobs()["ingestTokensSecret"]
    assert config.web_config_file is None and config.persistence.file is None
    # /tmp is the only writable path without persistence (the web configuration's inline keys).
    assert mount_of(objects, "/tmp/x")["volume"]["emptyDir"]

    variant = list(rendered_variant().values())
    config = exporter_config(variant)
    web = mount_of(variant, config.web_config_file)
    assert web["volume"]["secret"]["secretName"] == VARIANT["webConfigSecret"]
    state = mount_of(variant, config.persistence.file)
    assert state["volume"] is None, "the state must come from the claim template, one per replica"
    statefulset = one(variant, "StatefulSet")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == state["mount"]["name"]
    assert claim["spec"]["storageClassName"] == VARIANT["persistence"]["storageClass"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert statefulset["spec"]["serviceName"] == knobs()["name"] + "-metrics"


# --- scraping, rules and dashboards ------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service_once_with_the_mixins_job():
    objects = built()
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == OPERATOR_API
    services = [o for o in objects if o["kind"] == "Service"]
    selected = [s for s in services if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in selected] == [knobs()["name"] + "-metrics"], "scraped twice or never"
    (service,) = selected
    assert service["spec"]["publishNotReadyAddresses"] is True, "a stopping replica must stay a target"
    (endpoint,) = monitor["spec"]["endpoints"]
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert endpoint["port"] in ports
    assert ports[endpoint["port"]]["targetPort"] in {p["name"] for p in container(objects)["ports"]}
    assert endpoint["path"] == "/metrics"
    pod_labels = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["metadata"]["labels"]
    for svc in services:
        assert selects(svc["spec"]["selector"], pod_labels)
    mixin = render_config()
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    assert f'{mixin["jobLabel"]}="{job}"' in mixin["exporterSelector"]

    variant = one(list(rendered_variant().values()), "ServiceMonitor")["spec"]["endpoints"][0]
    assert variant["scheme"] == "https" and variant["tlsConfig"]


def test_a_name_the_mixin_does_not_select_is_refused():
    with pytest.raises(RuntimeError, match="exporterSelector"):
        render_kubernetes({"name": "agents"}, ["service.yaml"])


def committed_groups() -> list[dict[str, Any]]:
    return [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]


def test_prometheus_rule_holds_exactly_the_committed_rule_groups(tmp_path):
    rule = one(built(), "PrometheusRule")
    assert rule["apiVersion"] == OPERATOR_API and rule["metadata"]["name"]
    groups = rule["spec"]["groups"]
    assert groups == committed_groups()
    for group in groups:
        assert group["name"] and group["rules"]
        for r in group["rules"]:
            assert ("record" in r) != ("alert" in r) and r["expr"]
    path = tmp_path / "groups.yml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    command = [require_binary("promtool"), "check", "rules", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in result.stdout


def test_dashboard_config_maps_hold_the_committed_dashboards_with_the_sidecar_label():
    label = knobs()["grafanaDashboardLabel"]
    held = {}
    for config_map in built():
        if config_map["kind"] == "ConfigMap" and selects(label, config_map["metadata"]["labels"]):
            ((file, text),) = config_map["data"].items()
            held[file] = json.loads(text)
    committed = {path.name: json.loads(path.read_text()) for path in (ROOT / "dashboards").glob("*.json")}
    assert held == committed
    assert len(held) == len(committed) >= 1


def test_network_policy_and_disruption_budget_cover_the_pods():
    objects = built()
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    policy = one(objects, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels)
    (rule,) = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [p["name"] for p in container(objects)["ports"]]
    peers = knobs()["networkPolicy"]
    assert rule["from"] == peers["prometheusPeers"] + peers["ingestPeers"]
    budget = one(objects, "PodDisruptionBudget")
    assert selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
    # maxUnavailable, never minAvailable: with one replica minAvailable would block every drain.
    assert budget["spec"]["maxUnavailable"] >= 1 and "minAvailable" not in budget["spec"]

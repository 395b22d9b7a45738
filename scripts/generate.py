"""Render the mixin's Jsonnet into the committed rule files and Grafana dashboards.

    python scripts/generate.py [--check]

Writes ``rules/agency-rules.yml``, ``rules/agency-alerts.yml``, one ``dashboards/<name>.json``
per entry of the mixin's ``grafanaDashboards``, and the Kubernetes manifests of
``kubernetes/main.libsonnet`` (one ``kubernetes/manifests/<name>.yaml`` per object and the
``kustomization.yaml`` listing them). Uses the ``jsonnet`` Python binding, so nothing beyond
``pip install`` is needed. ``--check`` renders into memory and fails when a committed file
differs, is missing, or is a dashboard or manifest the Jsonnet no longer renders (the
stale-file tests use it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import _jsonnet
import yaml

ROOT = Path(__file__).resolve().parent.parent
HEADER = "# Generated from the Jsonnet sources by scripts/generate.py; do not edit.\n"


PARTS = {"rules": "prometheusRules", "alerts": "prometheusAlerts", "dashboards": "grafanaDashboards"}


def render_mixin(config_overrides: dict | None = None, parts: tuple[str, ...] = tuple(PARTS)) -> dict:
    """The mixin as data (``parts`` of it: Jsonnet evaluates nothing else), with ``_config``
    overridden by ``config_overrides`` (deep merge)."""
    overrides = json.dumps(config_overrides or {})
    fields = ", ".join(f"{part}: mixin.{PARTS[part]}" for part in parts)
    snippet = f"""
    local mixin = (import 'mixin.libsonnet') + {{ _config+:: std.mergePatch(super._config, {overrides}) }};
    {{ {fields} }}
    """
    return json.loads(_jsonnet.evaluate_snippet("generate", snippet, jpathdir=[str(ROOT)]))


def render_config() -> dict:
    """The mixin's ``_config`` as data (thresholds, windows, `for` durations...)."""
    snippet = "(import 'config.libsonnet')._config"
    return json.loads(_jsonnet.evaluate_snippet("config", snippet, jpathdir=[str(ROOT)]))


def rule_files(mixin: dict) -> dict[str, str]:
    return {
        "rules/agency-rules.yml": HEADER + _yaml(mixin["rules"]),
        "rules/agency-alerts.yml": HEADER + _yaml(mixin["alerts"]),
    }


DASHBOARD_DIR = "dashboards"


def dashboard_files(mixin: dict) -> dict[str, str]:
    """One pretty-printed JSON file per dashboard, keys sorted, so diffs stay small."""
    return {
        f"{DASHBOARD_DIR}/{name}": json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, dashboard in sorted(mixin["dashboards"].items())
    }


MANIFEST_DIR = "kubernetes/manifests"
KUSTOMIZATION = "kustomization.yaml"


def render_kubernetes(overrides: dict | None = None, files: list[str] | None = None) -> dict[str, dict]:
    """``kubernetesManifests`` of ``kubernetes/main.libsonnet`` (only ``files`` of it: Jsonnet
    evaluates nothing else), file name to object, with the knobs of ``_kubernetes`` overridden by
    ``overrides`` (nested dicts merge, as ``+:`` does, so the values derived from a knob follow it)."""
    patched = f"(import 'kubernetes/main.libsonnet') + {{ _kubernetes+:: {_jsonnet_patch(overrides or {})} }}"
    chosen = "std.objectFields(m)" if files is None else json.dumps(files)
    snippet = f"local m = ({patched}).kubernetesManifests; {{ [f]: m[f] for f in {chosen} }}"
    return json.loads(_jsonnet.evaluate_snippet("kubernetes", snippet, jpathdir=[str(ROOT)]))


def kubernetes_manifest_names(overrides: dict | None = None) -> list[str]:
    """The file names ``render_kubernetes`` gives with these overrides (no object is evaluated)."""
    patched = f"(import 'kubernetes/main.libsonnet') + {{ _kubernetes+:: {_jsonnet_patch(overrides or {})} }}"
    snippet = f"std.objectFields(({patched}).kubernetesManifests)"
    return json.loads(_jsonnet.evaluate_snippet("kubernetes", snippet, jpathdir=[str(ROOT)]))


def _jsonnet_patch(overrides: dict) -> str:
    fields = ", ".join(
        f"{json.dumps(key)}+: {_jsonnet_patch(value)}"
        if isinstance(value, dict)
        else f"{json.dumps(key)}: {json.dumps(value)}"
        for key, value in overrides.items()
    )
    return f"{{ {fields} }}"


def manifest_files(manifests: dict[str, dict]) -> dict[str, str]:
    """One YAML file per object, and the kustomization listing them all."""
    files = {f"{MANIFEST_DIR}/{name}": HEADER + manifest_yaml(obj) for name, obj in sorted(manifests.items())}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(manifests),
    }
    files[f"{MANIFEST_DIR}/{KUSTOMIZATION}"] = HEADER + yaml.dump(kustomization, Dumper=_Dumper, sort_keys=False)
    return files


def manifest_yaml(obj: dict) -> str:
    """An object as YAML, fields in Jsonnet's (sorted) order; a PrometheusRule's rules with their
    keys in the rule files' order."""
    if obj.get("kind") == "PrometheusRule":
        obj = {**obj, "spec": {**obj["spec"], **_ordered(obj["spec"])}}
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=1_000, allow_unicode=True)


def generated_files(mixin: dict, manifests: dict[str, dict]) -> dict[str, str]:
    return {**rule_files(mixin), **dashboard_files(mixin), **manifest_files(manifests)}


def orphaned_files(generated: dict[str, str], root: Path = ROOT) -> list[str]:
    """Dashboard JSON files and Kubernetes manifests under ``root`` that the Jsonnet no longer
    renders."""
    on_disk = {
        f"{directory}/{path.name}"
        for directory, pattern in ((DASHBOARD_DIR, "*.json"), (MANIFEST_DIR, "*.yaml"))
        for path in (root / directory).glob(pattern)
    }
    return sorted(on_disk - set(generated))


def stale_files(generated: dict[str, str], root: Path = ROOT) -> list[str]:
    """The generated files missing under ``root`` or different there, then those no longer rendered."""
    stale = [
        name for name, text in generated.items() if not (root / name).exists() or (root / name).read_text() != text
    ]
    return stale + [f"{name} (no longer rendered)" for name in orphaned_files(generated, root)]


RULE_KEY_ORDER = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (long PromQL) as literal blocks, so the files read like hand-written ones."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def _ordered(data: dict) -> dict:
    """Rules with their keys in the conventional order (Jsonnet sorts object fields)."""
    for group in data["groups"]:
        for rule in group["rules"]:
            unknown = set(rule) - set(RULE_KEY_ORDER)
            if unknown:
                raise ValueError(f"rule {rule.get('alert') or rule.get('record')}: no place for {sorted(unknown)}")
    return {
        "groups": [
            {**group, "rules": [{k: rule[k] for k in RULE_KEY_ORDER if k in rule} for rule in group["rules"]]}
            for group in data["groups"]
        ]
    }


def _yaml(data: dict) -> str:
    return yaml.dump(_ordered(data), Dumper=_Dumper, sort_keys=False, width=1_000, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    args = parser.parse_args(argv)
    files = generated_files(render_mixin(), render_kubernetes())
    if args.check:
        stale = stale_files(files)
        if stale:
            print(f"stale generated files: {', '.join(stale)}; run `make generate` and commit", file=sys.stderr)
            return 1
        return 0
    for name, text in files.items():
        path = ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name in orphaned_files(files):
        (ROOT / name).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())

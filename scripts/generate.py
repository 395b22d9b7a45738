"""Render the mixin's Jsonnet into the committed rule files and Grafana dashboards.

    python scripts/generate.py [--check]

Writes ``rules/agency-rules.yml``, ``rules/agency-alerts.yml`` and one ``dashboards/<name>.json``
per entry of the mixin's ``grafanaDashboards``. Uses the ``jsonnet`` Python binding, so nothing
beyond ``pip install`` is needed. ``--check`` renders into memory and fails when a committed
file differs, is missing, or is a dashboard the mixin no longer renders (the stale-file test
uses it).
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


def generated_files(mixin: dict) -> dict[str, str]:
    return {**rule_files(mixin), **dashboard_files(mixin)}


def orphaned_dashboards(generated: dict[str, str]) -> list[str]:
    """Dashboard JSON files on disk that the mixin no longer renders."""
    on_disk = {f"{DASHBOARD_DIR}/{path.name}" for path in (ROOT / DASHBOARD_DIR).glob("*.json")}
    return sorted(on_disk - set(generated))


RULE_KEY_ORDER = ("record", "alert", "expr", "for", "labels", "annotations")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (long PromQL) as literal blocks, so the files read like hand-written ones."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def _ordered(data: dict) -> dict:
    """Rules with their keys in the conventional order (Jsonnet sorts object fields)."""
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
    files = generated_files(render_mixin())
    stale = []
    for name, text in files.items():
        path = ROOT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for name in orphaned_dashboards(files):
        if args.check:
            stale.append(f"{name} (no longer rendered)")
        else:
            (ROOT / name).unlink()
    if stale:
        print(f"stale generated files: {', '.join(stale)}; run `make generate` and commit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The mixin as jsonnet-bundler vendors it: imported by another project from vendor/agency-telemetry/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import _jsonnet
import pytest

from scripts.generate import render_mixin

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# What the mixin is made of: its Jsonnet and the jsonnetfile.json that lets `jb install` take it.
SOURCES = [
    "jsonnetfile.json",
    "config.libsonnet",
    "mixin.libsonnet",
    "rules/**/*.libsonnet",
    "dashboards/**/*.libsonnet",
]


def test_jsonnetfile_declares_a_mixin_without_dependencies():
    jsonnetfile = json.loads((ROOT / "jsonnetfile.json").read_text())
    assert jsonnetfile == {"version": 1, "dependencies": [], "legacyImports": True}


def test_the_vendored_mixin_renders_what_the_repository_renders(tmp_path):
    """Every import inside the mixin is relative to its own file, so nothing needs the repository root."""
    vendored = tmp_path / "vendor" / "agency-telemetry"
    copied = [path for pattern in SOURCES for path in sorted(ROOT.glob(pattern))]
    assert len(copied) > 10, copied
    for path in copied:
        target = vendored / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    # A project of its own beside vendor/, importing the mixin as `jb install` leaves it.
    main = tmp_path / "monitoring.jsonnet"
    main.write_text(
        "local mixin = import 'agency-telemetry/mixin.libsonnet';\n"
        "{ rules: mixin.prometheusRules, alerts: mixin.prometheusAlerts, dashboards: mixin.grafanaDashboards }\n"
    )
    vendored_render = json.loads(_jsonnet.evaluate_file(str(main), jpathdir=[str(tmp_path / "vendor")]))
    assert vendored_render == render_mixin()

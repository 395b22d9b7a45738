"""The package's modules import downward only: input → validation → store → exposition → HTTP.

A module may import those listed before it here and nothing after, so a new import that reaches
back up (the store importing the HTTP layer, the schema importing the decoder) fails this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import agency_telemetry

PACKAGE = Path(agency_telemetry.__file__).parent
LAYERS = (
    "__init__",
    "validation",
    "units",
    "owners",
    "classifier",
    "config",
    "pricing",
    "events",
    "catalogue",
    "decoder",
    "otlp",
    "genai",
    "spans",
    "attribution",
    "datapoints",
    "reload",
    "tokens",
    "dedup",
    "limits",
    "store",
    "snapshot",
    "persistence",
    "refusals",
    "selfmetrics",
    "exposition",
    "webconfig",
    "ingest",
    "otlp_ingest",
    "routes",
    "server",
    "simulator",
    "cli",
    "__main__",
)


def package_imports(path: Path) -> set[str]:
    """The first-level package modules ``path`` imports (``from .store import x`` → store)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name if alias.name != "__version__" else "__init__" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            found.add(f"(a parent of the package, level {node.level})")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("agency_telemetry"):
            found.add(_module_of(node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(_module_of(a.name) for a in node.names if a.name.startswith("agency_telemetry"))
    return found


def _module_of(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_import_reader_sees_every_form(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from .store import Store\nimport agency_telemetry.routes\nfrom agency_telemetry.cli import x\n")
    assert package_imports(module) == {"store", "routes", "cli"}


def test_every_module_has_a_layer():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == set(LAYERS)


def test_modules_import_only_the_layers_below_them():
    for position, module in enumerate(LAYERS):
        imported = package_imports(PACKAGE / f"{module}.py")
        above = imported - set(LAYERS[:position])
        assert not above, f"{module} imports {sorted(above)}, which come after it in LAYERS"


def test_the_client_sdk_shares_nothing_with_the_server():
    for path in (PACKAGE / "client").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level in (0, 1), f"{path.name} imports from the server package"
                assert not (node.module or "").startswith("agency_telemetry"), path.name

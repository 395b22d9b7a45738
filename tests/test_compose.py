"""The docker-compose stack, checked without a Docker daemon.

`docker-compose config` (the real Compose tool) resolves docker-compose.yml, and the tests read
that resolved form: services, health checks, restart policies, pinned images, mounts, ports.
Prometheus' and Alertmanager's configurations are laid out in a temp dir the way the compose
mounts lay them out in the containers, and checked with promtool and amtool. The stack's own
programs (deploy/sink.py, deploy/fleet.py, the exporter) run here as real processes with the
containers' commands and health checks, mapped onto this checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from agency_telemetry.simulator import FleetSimulator

from scripts.local_stack import free_port, stop_process, wait_ready
from support.metrics import samples
from support.processes import require_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SERVICES = {"exporter", "demo-fleet", "prometheus", "alertmanager", "grafana", "webhook-sink"}
# Programs a health check may run in each third-party image: the prom/* images are busybox,
# grafana/grafana is Alpine; all have wget and none has curl. Add an image here only after
# looking at what it ships.
IMAGE_PROGRAMS = {
    "prom/prometheus": {"wget"},
    "prom/alertmanager": {"wget"},
    "grafana/grafana": {"wget"},
}
# The image built from the Dockerfile (python:*-slim): Python and the package's script, no curl
# or wget.
BUILT_PROGRAMS = {"python", "agency-telemetry"}
# Variables the compose file reads; cleared so the tests see the defaults.
OVERRIDES = ("ALERTMANAGER_SECRETS_DIR", "GRAFANA_ADMIN_PASSWORD_FILE")
# The stack's published ports: the processes started here must never take one of them.
STACK_PORTS = {3000, 8080, 9090, 9093, 9094, 9477}
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


# ---------------------------------------------------------------------------------------------
# Reading the compose file and the Dockerfile


def docker_compose(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``docker-compose`` on this checkout, with no .env file or COMPOSE_* setting of the user's."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in OVERRIDES}
    clean.update(env or {})
    with tempfile.TemporaryDirectory() as empty:
        env_file = Path(empty) / "env"
        env_file.write_text("")
        command = [
            require_binary("docker-compose"),
            "--file",
            str(COMPOSE_FILE),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env_file),
            *args,
        ]
        return subprocess.run(command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as ``docker-compose config`` resolves it."""
    result = docker_compose("config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@dataclass(frozen=True)
class Mount:
    source: str  # an absolute host path (a bind mount) or a named volume
    target: str
    read_only: bool

    @property
    def bind(self) -> bool:
        return self.source.startswith("/")


def mounts(service: Mapping[str, Any]) -> list[Mount]:
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append(Mount(volume["source"], volume["target"], bool(volume.get("read_only"))))
        else:
            source, target, *mode = volume.split(":")
            found.append(Mount(source, target, bool(mode) and "ro" in mode[0].split(",")))
    return found


def host_path(compose: Mapping[str, Any], name: str, container_path: str) -> Path | None:
    """Where a path in the service's container comes from on the host (bind mounts and secrets)."""
    service = compose["services"][name]
    sources = [(m.target, m.source) for m in mounts(service) if m.bind]
    for secret in service.get("secrets", []):
        target = secret.get("target", secret["source"])
        target = target if target.startswith("/") else f"/run/secrets/{target}"
        sources.append((target, compose["secrets"][secret["source"]]["file"]))
    for target, source in sorted(sources, key=lambda pair: len(pair[0]), reverse=True):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return Path(source, posixpath.relpath(container_path, target))
    return None


def lay_out(service: Mapping[str, Any], root: Path) -> None:
    """Copies the service's bind mounts under ``root`` at their container paths, nested ones last."""
    for mount in sorted((m for m in mounts(service) if m.bind), key=lambda m: len(m.target)):
        target = root / mount.target.lstrip("/")
        if Path(mount.source).is_dir():
            shutil.copytree(mount.source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mount.source, target)


def rewrite(text: str, container_dir: str, root: Path) -> str:
    """``container_dir`` (e.g. /etc/prometheus/) in a configuration, moved under ``root``."""
    return re.sub(rf"(?<![\w./-]){re.escape(container_dir)}", f"{root}{container_dir}", text)


def flags(service: Mapping[str, Any]) -> dict[str, str]:
    return dict(arg.partition("=")[::2] for arg in service.get("command", []) if arg.startswith("--"))


def argument(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def seconds(duration: str) -> float:
    parts = DURATION.findall(duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(int(n) * UNIT_SECONDS[u] for n, u in parts)


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, rest = (current + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def image_healthcheck() -> tuple[dict[str, str], list[str]]:
    """The Dockerfile's HEALTHCHECK: its options and its exec-form command."""
    [check] = [rest for keyword, rest in dockerfile() if keyword == "HEALTHCHECK"]
    options, _, command = check.partition(" CMD ")
    parsed = dict(option.lstrip("-").partition("=")[::2] for option in options.split())
    return parsed, json.loads(command)


def image_files() -> dict[str, Path]:
    """Files the Dockerfile copies into a directory of the image: image path → checkout path."""
    files = {}
    for keyword, rest in dockerfile():
        if keyword == "COPY" and not rest.startswith("--"):
            *sources, target = rest.split()
            if target.endswith("/"):
                files.update({target + Path(source).name: ROOT / source for source in sources})
    return files


def healthcheck_command(compose: Mapping[str, Any], name: str) -> list[str]:
    """The exec-form command of a service's health check, the compose file's or else the image's."""
    service = compose["services"][name]
    if "healthcheck" in service:
        test = service["healthcheck"]["test"]
        return test[1:] if test[0] == "CMD" else ["sh", "-c", *test[1:]]
    assert "build" in service, f"{name} has no health check"
    return image_healthcheck()[1]


def listen_port(service: Mapping[str, Any]) -> int:
    """The port a build-based service's command listens on (its --listen HOST:PORT)."""
    return int(argument(service["command"], "--listen").rpartition(":")[2])


def container_ports(service: Mapping[str, Any]) -> set[int]:
    return {int(str(port).rpartition(":")[2].split("/")[0]) for port in service.get("ports", [])}


def service_port(compose: Mapping[str, Any], name: str) -> int:
    service = compose["services"][name]
    return listen_port(service) if "build" in service else next(iter(container_ports(service)))


# ---------------------------------------------------------------------------------------------
# The compose file


def test_compose_file_is_valid_without_warnings() -> None:
    result = docker_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "WARN" not in result.stderr, result.stderr  # e.g. a variable used without a default


def test_every_service_has_a_restart_policy_and_a_health_check_it_can_run(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("restart") in ("always", "unless-stopped"), name
        if "healthcheck" in service:
            check = service["healthcheck"]
            assert not check.get("disable"), name
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name
            timing = (check["interval"], check["timeout"], check.get("start_period", "0s"))
            interval, timeout, _ = (seconds(t) for t in timing)
            assert timeout < interval, name
            assert check["retries"] >= 1, name
        else:  # only the exporter's own image has a HEALTHCHECK
            assert "build" in service, f"{name}: no health check in the compose file or its image"
            options, command = image_healthcheck()
            assert seconds(options["timeout"]) < seconds(options["interval"])
            assert f"127.0.0.1:{listen_port(service)}/" in " ".join(command), (
                f"{name} relies on the image's health check, which probes another port"
            )
        program = healthcheck_command(compose, name)[0]
        programs = BUILT_PROGRAMS if "build" in service else IMAGE_PROGRAMS[service["image"].rpartition(":")[0]]
        assert program in programs, f"{name}: its image has no {program!r}, only {sorted(programs)}"


def test_third_party_images_are_pinned_to_a_version(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            assert Path(service["build"]["context"]) == ROOT, name
            continue
        repository, _, tag = service["image"].rpartition(":")
        assert repository in IMAGE_PROGRAMS, name
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {service['image']} is not an exact version"
    [base] = [rest for keyword, rest in dockerfile() if keyword == "FROM"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim(-\w+)?", base), f"the Dockerfile's base {base} is not pinned"


def test_bind_mounts_and_secrets_come_from_the_repository(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for mount in mounts(service):
            if not mount.bind:
                assert mount.source in compose["volumes"], f"{name}: undeclared volume {mount.source}"
                continue
            source = Path(mount.source)
            assert source.is_relative_to(ROOT), f"{name}: {source} is outside the repository"
            assert source.exists(), f"{name}: {source} does not exist"
            assert mount.read_only, f"{name}: {mount.target} should be read-only"
    for name, secret in compose["secrets"].items():
        source = Path(secret["file"])
        assert source.is_relative_to(ROOT) and source.is_file(), name
        assert source.read_text().strip(), f"{name}: {source} is empty"


def test_secret_locations_can_be_overridden(compose: dict[str, Any], tmp_path: Path) -> None:
    password = tmp_path / "grafana-password"
    env = {"ALERTMANAGER_SECRETS_DIR": str(tmp_path), "GRAFANA_ADMIN_PASSWORD_FILE": str(password)}
    result = docker_compose("config", env=env)
    assert result.returncode == 0, result.stderr
    overridden = yaml.safe_load(result.stdout)
    assert host_path(overridden, "alertmanager", "/etc/alertmanager/secrets") == tmp_path
    target = overridden["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    assert host_path(overridden, "grafana", target) == password
    # … and without them, the stack's own placeholders.
    assert host_path(compose, "alertmanager", "/etc/alertmanager/secrets") == ROOT / "deploy/alertmanager-secrets"
    assert host_path(compose, "grafana", target) == ROOT / "deploy/grafana/admin-password"


def test_ports_are_published_on_loopback_and_documented(compose: dict[str, Any]) -> None:
    published = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip, host_port, container = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            published[name] = int(host_port)
            container_port = int(container.split("/")[0])
            if "build" in service:
                assert container_port == listen_port(service), name
            probe = " ".join(healthcheck_command(compose, name))
            assert f"127.0.0.1:{container_port}/" in probe, f"{name}'s health check does not probe {container_port}"
    header = COMPOSE_FILE.read_text().split("\n\n")[0]
    documented = {m[1]: int(m[2]) for m in re.finditer(r"^#\s+([\w-]+)\s+http://localhost:(\d+)", header, re.M)}
    assert documented == published


def test_container_paths_in_commands_exist_in_the_image(compose: dict[str, Any]) -> None:
    files = image_files()
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        for arg in [*service["command"], *healthcheck_command(compose, name)]:
            if arg.startswith("/app/"):
                assert arg in files, f"{name} runs {arg}, which the Dockerfile does not copy"
                assert files[arg].is_file(), arg
    assert [rest for keyword, rest in dockerfile() if keyword == "USER"][-1].split(":")[0] != "0"


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    """The build context as docker-py (Compose v1's library) computes it from .dockerignore."""
    interpreter = Path(require_binary("docker-compose")).read_text().splitlines()[0].removeprefix("#!").split()
    script = """
import json, sys
from docker.utils.build import exclude_paths

root = sys.argv[1]
with open(root + "/.dockerignore") as f:  # read as docker-py's build() reads it
    patterns = [line.strip() for line in f.read().splitlines()]
patterns = [p for p in patterns if p and p[0] != "#"]
print(json.dumps(sorted(exclude_paths(root, patterns, dockerfile="Dockerfile"))))
"""
    result = subprocess.run(
        [*interpreter, "-c", script, str(ROOT)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    context = {path for path in json.loads(result.stdout) if (ROOT / path).is_file()}
    package = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "exporter").rglob("*")
        if path.is_file() and not {"__pycache__", "agency_telemetry.egg-info"} & set(path.parts)
    }
    copied = {str(path.relative_to(ROOT)) for path in image_files().values()}
    assert package and {"deploy/fleet.py", "deploy/sink.py"} <= copied
    expected = {"Dockerfile", ".dockerignore", "pyproject.toml", "README.md"} | copied | package
    assert context == expected
    for keyword, rest in dockerfile():
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert source in context or any(path.startswith(f"{source}/") for path in context), rest


# ---------------------------------------------------------------------------------------------
# Prometheus


def test_prometheus_loads_every_rule_file_of_rules_through_its_mounts(compose: dict[str, Any]) -> None:
    config_file = flags(compose["services"]["prometheus"])["--config.file"]
    assert host_path(compose, "prometheus", config_file) == ROOT / "deploy/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    loaded = {host_path(compose, "prometheus", path) for path in config["rule_files"]}
    assert loaded == set((ROOT / "rules").glob("*.yml"))
    assert len(config["rule_files"]) == len(loaded)


def test_prometheus_keeps_data_for_the_longest_rule_range(compose: dict[str, Any]) -> None:
    retention = seconds(flags(compose["services"]["prometheus"])["--storage.tsdb.retention.time"])
    ranges = re.findall(r"\[(\w+)(?::\w*)?\]", "".join(p.read_text() for p in (ROOT / "rules").glob("*.yml")))
    longest = max(seconds(r) for r in ranges)
    assert longest >= 30 * 86400  # the SLO period: this test would not notice a range it cannot read
    assert retention >= longest


def test_prometheus_targets_are_the_stack_services(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = [
        (job["job_name"], target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    targets += [
        ("alerting", t)
        for am in config["alerting"]["alertmanagers"]
        for s in am["static_configs"]
        for t in s["targets"]
    ]
    scraped = set()
    for job, target in targets:
        host, _, port = target.rpartition(":")
        service = "prometheus" if host == "localhost" else host
        assert service in compose["services"], f"{job}: {target} is no service of the stack"
        assert int(port) == service_port(compose, service), f"{job}: {service} does not listen on {port}"
        scraped.add(service)
    assert {"exporter", "alertmanager", "prometheus"} <= scraped
    # The mixin's rules select the exporter by this job name (config.libsonnet's exporterSelector).
    assert any(job == "agency-telemetry" and target.startswith("exporter:") for job, target in targets)
    assert 'job="agency-telemetry"' in (ROOT / "config.libsonnet").read_text()


def test_promtool_checks_the_config_and_rules_as_mounted(compose: dict[str, Any], tmp_path: Path) -> None:
    service = compose["services"]["prometheus"]
    config_file = flags(service)["--config.file"]
    lay_out(service, tmp_path)
    config = tmp_path / config_file.lstrip("/")
    config.write_text(rewrite(config.read_text(), posixpath.dirname(config_file) + "/", tmp_path))
    result = subprocess.run(
        [require_binary("promtool"), "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rule_files = yaml.safe_load(config.read_text())["rule_files"]
    assert f"SUCCESS: {len(rule_files)} rule files found" in output
    for rule_file in rule_files:
        assert rule_file.startswith(str(tmp_path)) and Path(rule_file).is_file(), rule_file
        assert re.search(rf"Checking {re.escape(rule_file)}\n\s+SUCCESS: [1-9]\d* rules found", output), output


# ---------------------------------------------------------------------------------------------
# Alertmanager


def nested_values(node: Any, wanted: Callable[[str, Any], bool]) -> Iterator[Any]:
    """Every value under a key for which ``wanted(key, value)`` holds, in nested dicts and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            if wanted(key, value):
                yield value
            else:
                yield from nested_values(value, wanted)
    elif isinstance(node, list):
        for item in node:
            yield from nested_values(item, wanted)


def file_settings(node: Any) -> Iterator[str]:
    """Every ``*_file`` value of a configuration (secrets read from files)."""
    return nested_values(node, lambda key, value: key.endswith("_file") and isinstance(value, str))


def test_amtool_checks_the_config_as_mounted(compose: dict[str, Any], tmp_path: Path) -> None:
    service = compose["services"]["alertmanager"]
    config_file = flags(service)["--config.file"]
    assert host_path(compose, "alertmanager", config_file) == ROOT / "alertmanager/alertmanager.yml"
    lay_out(service, tmp_path)
    config = tmp_path / config_file.lstrip("/")
    config.write_text(rewrite(config.read_text(), posixpath.dirname(config_file) + "/", tmp_path))
    result = subprocess.run(
        [require_binary("amtool"), "check-config", str(config)], capture_output=True, text=True, timeout=30, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    templates = sorted((ROOT / "alertmanager/templates").glob("*.tmpl"))
    assert templates and f" - {len(templates)} templates" in output, output
    # amtool does not open the secret files; Alertmanager reads them when it notifies.
    secrets = list(file_settings(yaml.safe_load(config.read_text())))
    assert secrets
    for path in secrets:
        assert path.startswith(str(tmp_path)), path
        assert len(Path(path).read_text().strip().splitlines()) == 1, f"{path}: one line expected"


def test_placeholder_secrets_deliver_to_the_sink(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "alertmanager/alertmanager.yml").read_text())
    secrets = {host_path(compose, "alertmanager", path) for path in file_settings(config)}
    placeholders = ROOT / "deploy/alertmanager-secrets"
    assert secrets == set(placeholders.iterdir())
    assert {p.name for p in placeholders.iterdir()} == {
        p.name for p in (ROOT / "alertmanager/secrets.example").iterdir()
    }
    sink = compose["services"]["webhook-sink"]
    sink_port = listen_port(sink)
    for path in placeholders.glob("slack-*-webhook-url"):
        url = urlsplit(path.read_text().strip())
        assert (url.hostname, url.port) == ("webhook-sink", sink_port), path
    # The bundle's generic webhook reaches the sink under the alias it is addressed by.
    aliases = sink["networks"]["default"]["aliases"]
    hooks = [h["url"] for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert hooks
    for hook in hooks:
        url = urlsplit(hook)
        assert url.hostname in aliases and url.port == sink_port, hook


# ---------------------------------------------------------------------------------------------
# Grafana


def datasource_refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``datasource`` object in a dashboard: panels, targets, annotations, variables."""
    return nested_values(node, lambda key, value: key == "datasource" and isinstance(value, dict))


def test_grafana_provisioning_matches_the_mounts_and_the_dashboards(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    provisioning = ROOT / "dashboards/provisioning"
    for kind in ("dashboards", "datasources"):
        assert host_path(compose, "grafana", f"/etc/grafana/provisioning/{kind}") == provisioning / kind
    # Dashboards: every provider's path is the mount of dashboards/, where Grafana loads every
    # JSON file, in subdirectories too: exactly the generated dashboards.
    dashboards = sorted((ROOT / "dashboards").glob("*.json"))
    assert len(dashboards) == 6  # fleet, agent, council, business, exporter, LLM usage & spend
    [providers_file] = (provisioning / "dashboards").glob("*.yml")
    for provider in yaml.safe_load(providers_file.read_text())["providers"]:
        source = host_path(compose, "grafana", provider["options"]["path"])
        assert source == ROOT / "dashboards", provider["name"]
        assert sorted(source.rglob("*.json")) == dashboards
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(compose, "grafana", home) in dashboards
    # Datasource: the default one, of the type the dashboards' datasource variable asks for.
    [datasources_file] = (provisioning / "datasources").glob("*.yml")
    [datasource] = yaml.safe_load(datasources_file.read_text())["datasources"]
    assert datasource["isDefault"] is True
    url = urlsplit(datasource["url"])
    assert (url.hostname, url.port) == ("prometheus", service_port(compose, "prometheus"))
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert seconds(datasource["jsonData"]["timeInterval"]) >= seconds(prometheus["global"]["scrape_interval"])
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        assert variable["query"] == datasource["type"], path.name
        assert variable.get("current", {}).get("value") in (None, datasource["uid"]), path.name
        refs = {(ref.get("type"), ref.get("uid")) for ref in datasource_refs(dashboard)}
        refs.discard(("grafana", "-- Grafana --"))  # Grafana's built-in annotations
        allowed = {(datasource["type"], "${datasource}"), (datasource["type"], datasource["uid"])}
        assert refs and refs <= allowed, f"{path.name} names datasources {refs}"


def test_grafana_admin_password_and_root_url(compose: dict[str, Any]) -> None:
    environment = compose["services"]["grafana"]["environment"]
    password = host_path(compose, "grafana", environment["GF_SECURITY_ADMIN_PASSWORD__FILE"])
    assert password is not None and password.read_text().strip()
    # Alerts link to dashboards on the mixin's grafanaUrl: the URL Grafana says it is served at.
    root_url = environment["GF_SERVER_ROOT_URL"]
    alerts = yaml.safe_load((ROOT / "rules/agency-alerts.yml").read_text())
    links = [r["annotations"]["dashboard_url"] for g in alerts["groups"] for r in g["rules"] if "alert" in r]
    assert links and all(link.startswith(root_url + "/d/") for link in links)
    assert urlsplit(root_url).port in {int(p.split(":")[1]) for p in compose["services"]["grafana"]["ports"]}


# ---------------------------------------------------------------------------------------------
# The stack's programs, run here


def loopback_port() -> int:
    port = free_port()
    while port in STACK_PORTS:
        port = free_port()
    return port


def local(command: list[str], replace: Mapping[str, str] | None = None) -> list[str]:
    """A container command to run here: its programs and /app/ files mapped onto this checkout."""
    programs = {"python": [sys.executable], "agency-telemetry": [sys.executable, "-m", "agency_telemetry"]}
    files = image_files()
    mapped = list(programs.get(command[0], command[:1]))
    for arg in command[1:]:
        value = str(files.get(arg, arg))
        for old, new in (replace or {}).items():
            value = value.replace(old, new)
        mapped.append(value)
    return mapped


def get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = resp.read().decode()
        return resp.status, json.loads(body) if resp.headers.get_content_type() == "application/json" else body


def post(url: str, payload: Any, headers: Mapping[str, str] | None = None) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return int(resp.status)


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=20, check=False)


@contextlib.contextmanager
def running(command: list[str], log: Path, ready: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A process with its output in ``log``, optionally waited for until ``ready`` answers; stopped on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        if ready:
            wait_ready(proc, ready, log, timeout=15)
        yield proc
    finally:
        stop_process(proc)


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, as `docker stop` sends it: the process must exit 0, promptly."""
    proc.terminate()
    assert proc.wait(timeout=10) == 0, log.read_text()


def wait_for(condition: Callable[[], bool], what: str, log: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()}"
        time.sleep(0.05)


def start_exporter(
    compose: Mapping[str, Any], tmp_path: Path, *extra: str
) -> tuple[contextlib.AbstractContextManager[subprocess.Popen[bytes]], str, Path, int]:
    """The exporter service's command, on a free loopback port."""
    service = compose["services"]["exporter"]
    port = loopback_port()
    listen = argument(service["command"], "--listen")
    state = str(Path(argument(service["command"], "--persistence.file")).parent)  # the volume's mount point
    command = local([*service["command"], *extra], {listen: f"127.0.0.1:{port}", state: str(tmp_path / "state")})
    log = tmp_path / f"exporter-{port}.log"
    url = f"http://127.0.0.1:{port}"
    return running(command, log, ready=f"{url}/healthz"), url, log, port


def test_the_exporter_persists_its_state_on_a_named_volume(compose: dict[str, Any]) -> None:
    service = compose["services"]["exporter"]
    state = Path(argument(service["command"], "--persistence.file")).parent
    mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in service["volumes"]}
    assert mounts.get(str(state)) in compose["volumes"], "persistence.file must be on a named volume"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"chown 10001:10001 {state}" in dockerfile  # a fresh volume takes the directory's owner


def test_sink_summarises_slack_and_pagerduty_notifications(compose: dict[str, Any], tmp_path: Path) -> None:
    service = compose["services"]["webhook-sink"]
    port = loopback_port()
    listen = argument(service["command"], "--listen")
    url = f"http://127.0.0.1:{port}"
    healthcheck = local(healthcheck_command(compose, "webhook-sink"), {f":{listen_port(service)}/": f":{port}/"})
    log = tmp_path / "sink.log"
    with running(local(service["command"], {listen: f"127.0.0.1:{port}"}), log, ready=f"{url}/healthz") as proc:
        assert run(healthcheck).returncode == 0
        slack = {
            "channel": "#agency-incidents",
            "username": "Alertmanager",
            "attachments": [{"title": "[FIRING:1] AgencyFleetMostlyDown\nmore", "text": "…", "color": "danger"}],
        }
        pagerduty = {
            "routing_key": "local-stack-placeholder",
            "dedup_key": "abc",
            "event_action": "trigger",
            "payload": {"summary": "[FIRING:1] AgencyFleetMostlyDown", "severity": "critical", "source": "am"},
        }
        webhook = {
            "receiver": "chat-team",
            "status": "firing",
            "alerts": [{"labels": {"alertname": "AgencyAgentReportedAlert"}}],
        }
        assert post(f"{url}/slack/incident", slack) == 200
        assert post(f"{url}/pagerduty", pagerduty) == 200
        assert post(f"{url}/alertmanager", webhook, {"Authorization": "Bearer secret-token-value"}) == 200
        status, received = get(f"{url}/")
        assert status == 200
        assert [(r["path"], r["summary"]) for r in received] == [
            ("/slack/incident", "Slack #agency-incidents: [FIRING:1] AgencyFleetMostlyDown"),
            ("/pagerduty", "PagerDuty trigger critical: [FIRING:1] AgencyFleetMostlyDown"),
            ("/alertmanager", "webhook firing chat-team: AgencyAgentReportedAlert (1 alert)"),
        ]
        assert [r["body"] for r in received] == [slack, pagerduty, webhook]
        assert received[2]["headers"] == {"authorization": "present"}
        assert "secret-token-value" not in json.dumps(received)
        stop(proc, log)
    output = log.read_text()
    assert "POST /slack/incident" in output and "Slack #agency-incidents: [FIRING:1]" in output
    assert "PagerDuty trigger critical" in output and "secret-token-value" not in output
    assert run(healthcheck).returncode != 0  # and the health check notices it is gone


def test_fleet_feeds_the_exporter_and_reports_its_health(compose: dict[str, Any], tmp_path: Path) -> None:
    fleet = compose["services"]["demo-fleet"]
    exporter, url, exporter_log, port = start_exporter(compose, tmp_path)
    heartbeat = tmp_path / "heartbeat"
    to_exporter = {argument(fleet["command"], "--url"): url}
    check = [*local(healthcheck_command(compose, "demo-fleet")), "--heartbeat", str(heartbeat)]
    image_check = local(image_healthcheck()[1], {f":{listen_port(compose['services']['exporter'])}/": f":{port}/"})
    log = tmp_path / "fleet.log"
    with exporter as exporter_proc:
        assert run(image_check).returncode == 0  # the exporter's image health check
        result = run(check)
        assert result.returncode == 1 and "missing" in result.stdout  # before any batch
        with running([*local(fleet["command"], to_exporter), "--heartbeat", str(heartbeat)], log) as proc:
            wait_for(heartbeat.exists, "no batch got through", log)
            assert run(check).returncode == 0
            agents = int(argument(fleet["command"], "--agents"))
            _, metrics = get(f"{url}/metrics")
            infos = [key for key in samples(metrics) if key[0] == "agency_agent_info"]
            assert len(infos) == agents + FleetSimulator.otel_agents  # and those sending OTLP spans
            assert any(key[0] == "agency_council_consensus_attempts_total" for key in samples(metrics))
            first = heartbeat.stat().st_mtime_ns
            wait_for(lambda: heartbeat.stat().st_mtime_ns > first, "the next batch did not renew the heartbeat", log)
            stop(proc, log)
        assert "stopped" in log.read_text()
        # Once no batch gets through for longer than --max-age, the fleet is unhealthy.
        stale = time.time() - 2 * float(argument(check, "--max-age"))
        os.utime(heartbeat, (stale, stale))
        result = run(check)
        assert result.returncode == 1 and "ago" in result.stdout
        stop(exporter_proc, exporter_log)
    assert run(image_check).returncode != 0


def test_fleet_is_unhealthy_while_the_exporter_refuses_its_batches(compose: dict[str, Any], tmp_path: Path) -> None:
    fleet = compose["services"]["demo-fleet"]
    config = tmp_path / "exporter.yml"
    # Every batch of the fleet is larger, its OTLP requests too (a small OTLP request of few spans
    # would pass a limit on events, and make the fleet look healthy by chance).
    config.write_text("limits:\n  max_body_size: 64\n")
    exporter, url, _, _ = start_exporter(compose, tmp_path, "--config", str(config))
    heartbeat = tmp_path / "heartbeat"
    log = tmp_path / "fleet.log"
    command = [*local(fleet["command"], {argument(fleet["command"], "--url"): url}), "--heartbeat", str(heartbeat)]
    with exporter, running(command, log):

        def refused() -> float:
            _, metrics = get(f"{url}/metrics")
            return sum(
                v for (name, _), v in samples(metrics).items() if name == "agency_exporter_requests_rejected_total"
            )

        wait_for(lambda: refused() >= 3, "the fleet's batches did not arrive", log)
        assert not heartbeat.exists()
        check = [*local(healthcheck_command(compose, "demo-fleet")), "--heartbeat", str(heartbeat)]
        assert run(check).returncode == 1
        assert "batch refused: 413" in log.read_text()

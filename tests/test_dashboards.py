"""The Grafana dashboards: structure, conventions, queries, and every query run on a real Prometheus."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.generate import render_config, render_mixin
from scripts.local_stack import RULE_FILES
from support.harness import exposed_metric_names
from support.processes import require_binary
from support.stack import Stack, StackError

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Series Prometheus itself makes: scrape health and alert state.
BUILTINS = {
    "up",
    "ALERTS",
    "ALERTS_FOR_STATE",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
# Recording rules that are constants of the mixin (vector(…)), so they carry no job or cluster.
UNSCOPED = {"agent_type:agency_agent_task_duration_seconds:objective_seconds"}

# Panels that are empty in a healthy demo fleet, with the reason. (dashboard uid, panel title).
LEGITIMATELY_EMPTY = {
    ("agency-fleet", "Critical firing"): "no critical alert can fire in the test: each has a `for` of 2m or more",
    ("agency-fleet", "Emergencies firing"): "no emergency can fire in the test: each has a `for` of 2m or more, "
    "and the demo fleet is neither mostly down nor failing most workflow tasks",
    ("agency-fleet", "Silent agents"): "lists agents not heard from for staleAfterSeconds; every demo agent reports",
    ("agency-exporter", "Configuration reloads"): "the demo exporter runs without a web configuration or tokens file",
}

# Baselines (rules/baseline.libsonnet) are recorded only once their signal has hours of
# history (relativeBaselineMinHistory): a stack started for a test never has them. The
# promtool tests in tests/rules/alerts_baseline*.test.yml prove they are recorded.
BASELINE = re.compile(r"_baseline_\d+[smhd]$")


def needs_baseline_history(expr: str) -> bool:
    names = metric_names(expr)
    return bool(names) and all(BASELINE.search(name) for name in names)


# Self-metrics an exporter only has with a web configuration or ingest tokens file, which the
# demo stack does not use (the panels reading them are listed above or read them with `or`).
ONLY_WITH_SECURITY_FILES = {"agency_exporter_reload_success", "agency_exporter_web_rejected_total"}

# What the end-to-end test substitutes for Grafana's own variables.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "5s", "__range": "5m", "__range_s": "300"}


# --- loading ----------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@cache
def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in DASHBOARD_FILES}


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels that show data; row headings are layout, not panels with queries."""
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            yield panel, target


def all_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Panel queries and annotation queries."""
    return [t["expr"] for _, t in targets(dashboard)] + [
        a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], str, str]]:
    """(variable, series selector, label) of every label_values() variable."""
    found = []
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"]["query"])
            assert match, f"{var['name']}: not a label_values(selector, label) query"
            found.append((var, match[1], match[2]))
    return found


@cache
def config() -> dict[str, Any]:
    return render_config()


@cache
def _rendered(overrides: str) -> dict[str, Any]:
    result: dict[str, Any] = render_mixin(json.loads(overrides))["dashboards"]
    return result


def rendered_dashboards(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The mixin's dashboards rendered from the Jsonnet, with _config overrides (cached)."""
    return _rendered(json.dumps(overrides or {}, sort_keys=True))


def recording_rules() -> list[dict[str, Any]]:
    return [rule for g in yaml.safe_load(RULE_FILES[0].read_text())["groups"] for rule in g["rules"]]


# --- PromQL, lexically ---------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "offset"}
_KEYWORDS |= {"inf", "nan", "Inf", "NaN"}
_NAME = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)")
_RATE = re.compile(r"\b(rate|irate|increase)\(")


def _blank_strings(expr: str) -> str:
    """Label values replaced by x's of the same length, so positions still match the original."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + "x" * (len(m[0]) - 2) + '"', expr)


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (not functions, keywords or label names)."""
    e = _blank_strings(expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for match in _NAME.finditer(e):
        if re.match(r"\s*\(", e[match.end() :]) or match[1] in _KEYWORDS:
            continue
        names.add(match[1])
    return names


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, its {…} matchers or '') for every vector selector of the expression."""
    blank = _blank_strings(expr)
    names = metric_names(expr)
    found = []
    for match in re.finditer(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(\s*\{[^}]*\})?", blank):
        if match[1] in names:
            found.append((match[1], expr[match.start(2) : match.end(2)] if match[2] else ""))
    return found


def rated(expr: str) -> list[tuple[str, str, str]]:
    """(function, metric, range) of every rate()/irate()/increase(); fails on other arguments."""
    found = []
    for match in _RATE.finditer(expr):
        arg = re.match(r"\s*([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*\[([^\]]+)\]\s*\)", expr[match.end() :])
        assert arg, f"{match[1]}() of something other than a plain range selector in {expr!r}"
        found.append((match[1], arg[1], arg[3]))
    return found


def recorded() -> set[str]:
    return {rule["record"] for rule in recording_rules()}


# --- generation, files and provisioning -----------------------------------------------------


@pytest.mark.slow
def test_every_configured_dashboard_is_generated_under_its_uid():
    uids = sorted(config()["dashboardUids"].values())
    assert sorted(d["uid"] for d in dashboards().values()) == uids
    assert sorted(dashboards()) == [f"{uid}.json" for uid in uids]
    assert rendered_dashboards() == dashboards(), "dashboards/*.json are stale; run `make generate`"


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards():
    datasources = yaml.safe_load((DASHBOARD_DIR / "provisioning/datasources/prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    [prometheus] = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["uid"] and prometheus["isDefault"] is True
    providers = yaml.safe_load((DASHBOARD_DIR / "provisioning/dashboards/agency.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.integration
def test_jsonnet_sources_are_formatted():
    files = [ROOT / "mixin.libsonnet", *sorted(DASHBOARD_DIR.rglob("*.libsonnet"))]
    result = subprocess.run(
        [require_binary("jsonnetfmt"), "--test", *map(str, files)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"run `jsonnetfmt -i` on: {result.stdout}{result.stderr}"


# --- structure of every dashboard ---------------------------------------------------------

by_file = pytest.mark.parametrize("name", [p.name for p in DASHBOARD_FILES])


@by_file
def test_dashboard_has_what_grafana_needs_and_the_project_conventions(name):
    dashboard = dashboards()[name]
    for key in ("title", "uid", "panels", "templating", "time", "schemaVersion"):
        assert key in dashboard, key
    assert isinstance(dashboard["templating"]["list"], list)
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["refresh"] == config()["dashboardRefresh"] == "5s"
    assert "agency-telemetry" in dashboard["tags"]
    assert dashboard["description"]
    assert set(dashboard["time"]) == {"from", "to"}
    assert "id" not in dashboard or dashboard["id"] is None, "a fixed id clashes on import"


@by_file
def test_datasource_job_and_cluster_variables(name):
    variables = {v["name"]: v for v in dashboards()[name]["templating"]["list"]}
    assert [v["name"] for v in dashboards()[name]["templating"]["list"]][:3] == ["datasource", "cluster", "job"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    cluster = variables["cluster"]
    assert cluster["includeAll"] is True and cluster["allValue"] == ".*", "cluster may be absent: All must be .*"
    for var, _, label in variable_queries(dashboards()[name]):
        assert var["datasource"] == DATASOURCE, var["name"]
        assert label == var["name"], var["name"]
        if var["includeAll"]:
            assert var["allValue"] == ".*", var["name"]
    job_selector = next(sel for var, sel, _ in variable_queries(dashboards()[name]) if var["name"] == "job")
    assert 'cluster=~"$cluster"' in job_selector


@by_file
def test_links_to_the_other_dashboards_keep_time_and_variables(name):
    [link] = [link for link in dashboards()[name]["links"] if link["type"] == "dashboards"]
    assert link["tags"] == ["agency-telemetry"]
    assert link["includeVars"] is True and link["keepTime"] is True


@by_file
def test_panel_ids_are_unique_and_the_grid_has_no_overlaps(name):
    panels = dashboards()[name]["panels"]
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(ids) == len(set(ids))
    boxes = []
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] >= 1 and pos["h"] >= 1, panel["title"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']} goes past column 24"
        boxes.append((panel["title"], pos["x"], pos["y"], pos["x"] + pos["w"], pos["y"] + pos["h"]))
    for i, (a, ax0, ay0, ax1, ay1) in enumerate(boxes):
        for b, bx0, by0, bx1, by1 in boxes[i + 1 :]:
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, f"{a!r} overlaps {b!r}"


@by_file
def test_every_panel_has_a_description_a_unit_and_the_datasource_variable(name):
    dashboard = dashboards()[name]
    for row in dashboard["panels"]:
        if row["type"] == "row":
            assert row["title"] and row["gridPos"]["w"] == 24 and not row.get("targets")
    for panel in data_panels(dashboard):
        title = panel["title"]
        assert panel["description"].strip(), title
        assert panel["fieldConfig"]["defaults"]["unit"], title
        assert panel["datasource"] == DATASOURCE, title
        assert panel["targets"], title
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), title
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, title
            assert target["expr"].strip(), title
        if panel["type"] == "heatmap":
            assert [t["format"] for t in panel["targets"]] == ["heatmap"], title


@by_file
def test_table_links_and_overrides_name_the_columns_they_see(name):
    """Field overrides, sorting and data links apply after the organize transformation renames."""
    for panel in data_panels(dashboards()[name]):
        if panel["type"] != "table":
            continue
        [organize] = [t["options"] for t in panel["transformations"] if t["id"] == "organize"]
        headers = set(organize["renameByName"].values())
        for override in panel["fieldConfig"]["overrides"]:
            assert override["matcher"]["options"] in headers, panel["title"]
        for sort in panel["options"]["sortBy"]:
            assert sort["displayName"] in headers, panel["title"]
        for link in panel["fieldConfig"]["defaults"]["links"]:
            assert set(re.findall(r"__data\.fields\.(\w+)", link["url"])) <= headers, panel["title"]


def _datasource_refs(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from _datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_refs(item)


@by_file
def test_no_datasource_uid_is_hard_coded(name):
    grafana_builtin = {"type": "grafana", "uid": "-- Grafana --"}  # the built-in annotations
    for ref in _datasource_refs(dashboards()[name]):
        assert ref in (DATASOURCE, grafana_builtin), ref


# --- queries ----------------------------------------------------------------------------


@by_file
def test_rates_of_raw_counters_use_rate_interval(name):
    for expr in all_exprs(dashboards()[name]):
        for function, metric, window in rated(expr):
            assert window == "$__rate_interval", f"{function}({metric}[{window}])"
            assert ":" not in metric, f"{function}() of the recording rule {metric}: rules are not counters"


def rated_by_rules() -> set[str]:
    return {
        m[1]
        for rule in recording_rules()
        for m in re.finditer(r"\b(?:rate|irate|increase)\(([a-zA-Z_:][\w:]*)", rule["expr"])
    }


@by_file
def test_panels_read_recording_rules_where_one_exists(name):
    """A raw counter the rules already turn into a rate is read raw only as heatmap buckets."""
    for panel, target in targets(dashboards()[name]):
        for _, metric, _ in rated(target["expr"]):
            if metric in rated_by_rules():
                assert metric.endswith("_bucket") and target["format"] == "heatmap", (
                    f"{panel['title']}: reads rate({metric}) though a recording rule records it"
                )


# The histograms whose buckets carry exemplars (trace ids) in OpenMetrics.
WITH_EXEMPLARS = {
    "agency_agent_task_duration_seconds_bucket",
    "agency_llm_request_duration_seconds_bucket",
    "agency_tool_call_duration_seconds_bucket",
}


@by_file
def test_queries_of_buckets_with_exemplars_ask_for_them(name):
    for panel, target in targets(dashboards()[name]):
        if any(metric in WITH_EXEMPLARS for _, metric, _ in rated(target["expr"])):
            assert target.get("exemplar") is True, f"{panel['title']}: set exemplar=true on its query"


@by_file
def test_queries_read_only_exported_metrics_recorded_rules_and_builtins(name):
    known = exposed_metric_names() | recorded() | BUILTINS
    dashboard = dashboards()[name]
    read = set().union(*(metric_names(e) for e in all_exprs(dashboard)))
    read |= set().union(*(metric_names(sel) for _, sel, _ in variable_queries(dashboard)))
    assert read, name
    assert sorted(read - known) == []


@by_file
def test_selectors_filter_by_the_job_and_cluster_variables(name):
    for expr in all_exprs(dashboards()[name]):
        for metric, matchers in selectors(expr):
            if metric in UNSCOPED:
                continue
            assert 'job=~"$job"' in matchers and 'cluster=~"$cluster"' in matchers, f"{metric} in {expr!r}"


@pytest.mark.slow
def test_job_and_cluster_variables_follow_the_config():
    """Other label names and a hidden cluster variable, as a multi-cluster stack may need."""
    overrides = {"jobLabel": "scrape_job", "clusterLabel": "k8s_cluster", "showMultiCluster": False}
    for name, dashboard in rendered_dashboards(overrides).items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["cluster"]["hide"] == 2, name
        assert variables["cluster"]["query"]["query"] == "label_values(agency_exporter_build_info, k8s_cluster)"
        assert variables["job"]["query"]["query"] == (
            'label_values(agency_exporter_build_info{k8s_cluster=~"$cluster"}, scrape_job)'
        )
        for expr in all_exprs(dashboard):
            for metric, matchers in selectors(expr):
                if metric in UNSCOPED:
                    continue
                assert 'scrape_job=~"$job"' in matchers and 'k8s_cluster=~"$cluster"' in matchers, (name, expr)
                assert not re.search(r"(?<![\w])(job|cluster)=~", matchers), (name, expr)
        for var, selector, _ in variable_queries(dashboard):
            if var["name"] not in {"cluster", "job"}:
                assert 'scrape_job=~"$job"' in selector and 'k8s_cluster=~"$cluster"' in selector, (name, var)
    for name, dashboard in dashboards().items():
        assert {v["name"]: v for v in dashboard["templating"]["list"]}["cluster"]["hide"] == 0, name


def test_every_recording_rule_family_is_on_some_dashboard():
    """Not every window of every SLO, but every kind of derived metric appears somewhere."""
    read = set().union(*(metric_names(e) for d in dashboards().values() for e in all_exprs(d)))
    family = re.compile(r"_rate\w+$|_(vs_)?baseline\w*$|_\d+[smhd]$")  # a signal and its baseline are one
    families = {family.sub("", name) for name in recorded()}
    shown = {family.sub("", name) for name in read}
    assert sorted(families - shown) == []


def test_alert_dashboard_links_name_existing_dashboards_and_variables():
    by_uid = {d["uid"]: d for d in dashboards().values()}
    alerts = [rule for g in yaml.safe_load(RULE_FILES[1].read_text())["groups"] for rule in g["rules"]]
    for alert in alerts:
        url = alert["annotations"]["dashboard_url"]
        match = re.search(r"/d/([\w-]+)(?:\?(.*))?$", url)
        assert match and match[1] in by_uid, url
        names = {v["name"] for v in by_uid[match[1]]["templating"]["list"]}
        for param in (match[2] or "").split("&"):
            if param:
                assert param.split("=")[0].removeprefix("var-") in names, (alert["alert"], param)


# --- thresholds come from the alerts' config --------------------------------------------------


def _panel(dashboards_by_name: dict[str, Any], name: str, title: str) -> dict[str, Any]:
    [panel] = [p for p in dashboards_by_name[name]["panels"] if p["title"] == title and p["type"] == "stat"]
    return panel


def _steps(panel: dict[str, Any]) -> list[float | None]:
    return [step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "thresholds": {
                "agentErrorRatioWarning": 0.2,
                "agentErrorRatioCritical": 0.6,
                "complianceRatioWarning": 0.97,
                "complianceRatioCritical": 0.9,
                "costPerTaskUsdWarning": 2,
            },
            "healthyScore": 0.7,
            "degradedScore": 0.4,
        },
    ],
    ids=["default", "overridden"],
)
@pytest.mark.slow
def test_threshold_colours_follow_the_alert_config(overrides):
    rendered = rendered_dashboards(overrides)
    c = {**config(), **overrides, "thresholds": {**config()["thresholds"], **overrides.get("thresholds", {})}}
    t = c["thresholds"]
    expected = {
        ("agency-fleet.json", "Success rate"): [
            None,
            1 - t["agentErrorRatioCritical"],
            1 - t["agentErrorRatioWarning"],
        ],
        ("agency-agent.json", "Success rate"): [
            None,
            1 - t["agentErrorRatioCritical"],
            1 - t["agentErrorRatioWarning"],
        ],
        ("agency-agent.json", "Health score"): [None, c["degradedScore"], c["healthyScore"]],
        ("agency-fleet.json", "Mean health score"): [None, c["degradedScore"], c["healthyScore"]],
        ("agency-council.json", "Compliance rate"): [None, t["complianceRatioCritical"], t["complianceRatioWarning"]],
        ("agency-council.json", "Consensus rate"): [None, t["consensusRatioCritical"], t["consensusRatioWarning"]],
        ("agency-business.json", "Cost per task"): [None, t["costPerTaskUsdWarning"]],
        ("agency-business.json", "Quality"): [None, t["qualityAvgWarning"]],
    }
    for (name, title), steps in expected.items():
        assert _steps(_panel(rendered, name, title)) == pytest.approx(steps), (name, title)


# --- every query on a real Prometheus ----------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("stack")
    persisted = ["--persistence.file", str(workdir / "state" / "snapshot")]  # for the persistence panels
    with Stack.start(workdir, agents=12, tick=0.25, exporter_args=persisted) as running:
        yield running


def substitute(expr: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        assert name in values, f"no value for ${name} in {expr!r}"
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", replace, expr)


def promql_regex_escape(value: str) -> str:
    """A label value as a literal regex inside a PromQL string, as Grafana escapes =~ values."""
    return re.sub(r"([.*+?^${}()|\[\]\\])", r"\\\\\1", value)


def resolve_variables(stack: Stack, dashboard: dict[str, Any]) -> dict[str, str]:
    """Runs the dashboard's label_values() variables in order, as Grafana does, taking the first value."""
    values = dict(GRAFANA_VARIABLES)
    for var, selector, label in variable_queries(dashboard):
        options = stack.label_values(label, substitute(selector, values))
        if options:
            values[var["name"]] = promql_regex_escape(options[0])
        else:
            assert var["includeAll"], f"{dashboard['uid']}: variable {var['name']} has no values"
            values[var["name"]] = var["allValue"]
    return values


@pytest.mark.integration
def test_every_panel_query_returns_data_from_a_real_prometheus(stack):
    """The demo fleet, scraped every second with the mixin's rules loaded; every query polled until it has data."""
    for uid, title in LEGITIMATELY_EMPTY:  # each names exactly one panel
        [dashboard] = [d for d in dashboards().values() if d["uid"] == uid]
        assert [p["title"] for p in data_panels(dashboard)].count(title) == 1, (uid, title)
    stack.wait_for("count(agency_agent_info) >= 12", timeout=20)
    # (dashboard uid, panel id, panel title, refId) -> the query with the variables substituted
    Key = tuple[str, int, str, str]
    queries: dict[Key, str] = {}
    for dashboard in dashboards().values():
        values = resolve_variables(stack, dashboard)
        assert values["job"] == "agency-telemetry" and values["cluster"] == ".*"
        for panel, target in targets(dashboard):
            key = (dashboard["uid"], panel["id"], panel["title"], target["refId"])
            queries[key] = substitute(target["expr"], values)
        for annotation in dashboard["annotations"]["list"]:
            if "expr" in annotation:  # must run, but critical alerts do not fire in a healthy fleet
                stack.query_range(substitute(annotation["expr"], values), step=2)
    assert len(queries) == sum(1 for d in dashboards().values() for _ in targets(d)) > 100

    errors: dict[Key, str] = {}
    with_data: set[Key] = set()
    wanted = {
        key
        for key, expr in queries.items()
        if (key[0], key[2]) not in LEGITIMATELY_EMPTY and not needs_baseline_history(expr)
    }
    deadline = time.monotonic() + 60
    while True:
        for key, expr in queries.items():
            if key in with_data or key in errors:
                continue
            try:
                if any(series["values"] for series in stack.query_range(expr, step=2)):
                    with_data.add(key)
            except StackError as exc:
                errors[key] = str(exc)
        if wanted <= with_data | set(errors) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert errors == {}
    missing = {key: queries[key] for key in sorted(wanted - with_data)}
    assert missing == {}, "queries without data after 60 s"


@pytest.mark.integration
def test_every_metric_the_dashboards_read_exists_in_prometheus(stack):
    read = set().union(*(metric_names(e) for d in dashboards().values() for e in all_exprs(d)))
    read -= ONLY_WITH_SECURITY_FILES
    read = {name for name in read if not BASELINE.search(name)}
    deadline = time.monotonic() + 30
    while (absent := read - stack.metric_names()) and time.monotonic() < deadline:
        time.sleep(1)
    assert sorted(absent) == []

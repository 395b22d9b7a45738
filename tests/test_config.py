"""Configuration: defaults with no file, units, and errors that name the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agency_telemetry.config import Config, ConfigError, load_config, parse_config, with_overrides

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_need_no_file():
    config = load_config(None)
    assert config == Config()
    assert config.limits.max_agents == 10_000
    assert config.limits.max_body_size == 16 * 2**20
    assert config.expiry.agent_ttl == 3600
    assert config.buckets.task_duration_seconds[0] == 0.05
    assert config.buckets.task_duration_seconds[-1] == 600
    assert config.error_class_names[-1] == "other"


def test_an_empty_file_is_the_defaults(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("# nothing\n")
    assert load_config(path) == Config()


def test_durations_and_sizes_take_units():
    config = parse_config(
        """
        limits: {max_body_size: 10 MiB}
        expiry: {agent_ttl: 30s, alert_ttl: 24h, dedup_window: 10m, sweep_interval: 2}
        shutdown_timeout: 1.5 s
        """
    )
    assert config.limits.max_body_size == 10 * 2**20
    assert (config.expiry.agent_ttl, config.expiry.alert_ttl, config.expiry.dedup_window) == (30, 86400, 600)
    assert config.expiry.sweep_interval == 2
    assert config.shutdown_timeout == 1.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limitz: 1", r"unknown field `limitz`; allowed keys here: listen, agent_types, limits"),
        ("limits: {max_agents: 0}", r"^<config>: limits\.max_agents: Expected `int` >= 1"),
        ("limits: {max_agents: many}", r"limits\.max_agents: Expected `int`, got `str`"),
        ("limits: {foo: 1}", r"limits: .*unknown field `foo`; allowed keys here: max_agents"),
        ("expiry: {agent_ttl: 5 kg}", r"expiry\.agent_ttl: 'kg' is not a unit of duration"),
        ("expiry: {agent_ttl: -3}", r"expiry\.agent_ttl: must be above 0"),
        ("expiry: {agent_ttl: 0}", r"expiry\.agent_ttl: must be above 0"),
        ("expiry: {new_series_hold: -1s}", r"expiry\.new_series_hold: must be 0 or more"),
        ("limits: {max_body_size: 3 s}", r"limits\.max_body_size: 's' is not a unit of size"),
        ("buckets: {debate_rounds: [3, 2]}", r"bucket bounds must be strictly increasing"),
        ("error_classes: [{name: x, pattern: '('}]", r"error_classes\[0\]: .*not a valid regex"),
        ("error_classes: [{name: other, pattern: x}]", r"names must be unique and not 'other'"),
        ("listen: nowhere", r"listen: 'nowhere' is not HOST:PORT"),
        ("agent_types: ['a b']", r"agent_types\[0\]: Expected `str` matching regex"),
        ("- just\n- a list", r"top level must be a mapping"),
        ("limits: [unclosed", r"not valid YAML"),
    ],
)
def test_bad_configuration_names_the_key_and_what_is_allowed(text, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_config(text)


def test_the_new_series_hold_is_a_duration_that_0_turns_off():
    assert Config().expiry.new_series_hold == 30
    assert parse_config("expiry: {new_series_hold: 2m}").expiry.new_series_hold == 120
    assert parse_config("expiry: {new_series_hold: 0}").expiry.new_series_hold == 0
    assert parse_config("expiry: {new_series_hold: 0s}").expiry.new_series_hold == 0


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(tmp_path / "missing.yml")


def test_every_key_is_documented_in_the_readme():
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", section, re.M))
    config = Config()
    keys = set()
    for name in config.__struct_fields__:
        section = getattr(config, name)
        if hasattr(section, "__struct_fields__"):
            keys |= {f"{name}.{key}" for key in section.__struct_fields__}
        else:
            keys.add(name)
    assert keys - documented == set(), "document these keys in the README configuration table"
    assert documented - keys == set(), "the README documents keys that do not exist"


def test_pricing_entries_are_checked():
    config = parse_config("pricing: [{model: 'gpt-*', input: 1, output: 2}]")
    assert config.pricing[0].provider is None and config.pricing[0].cache_read is None
    for bad in (
        "pricing: [{model: x, input: -1, output: 1}]",
        "pricing: [{model: x, input: 1}]",
        "pricing: [{input: 1, output: 1}]",
    ):
        with pytest.raises(ConfigError, match="pricing"):
            parse_config(bad)


def test_the_example_pricing_file_is_a_valid_configuration():
    example = Path(__file__).resolve().parent.parent / "examples/pricing.yaml"
    config = parse_config(example.read_text(), str(example))
    assert len(config.pricing) >= 3
    assert "# Prices as of" in example.read_text()


def test_shutdown_grace_may_be_set_to_its_default_0():
    assert parse_config("shutdown_grace: 0s").shutdown_grace == 0
    assert parse_config("shutdown_grace: 45s").shutdown_grace == 45
    with pytest.raises(ConfigError, match=r"shutdown_grace: must be 0 or more"):
        parse_config("shutdown_grace: -1s")


def test_persistence_flags_are_checked_as_the_files_keys_are(tmp_path):
    config = with_overrides(Config(), {"persistence": {"file": "state/snap", "interval": "30s"}}, "command line")
    assert (config.persistence.file, config.persistence.interval) == ("state/snap", 30)
    assert with_overrides(config, {"persistence": {"file": None, "interval": None}}, "command line") == config
    with pytest.raises(ConfigError, match=r"command line: persistence\.interval: .*'soon'"):
        with_overrides(Config(), {"persistence": {"interval": "soon"}}, "command line")
    path = tmp_path / "config.yml"
    path.write_text("persistence: {file: data/snapshot}\n")
    assert load_config(path).persistence.file == str(tmp_path / "data" / "snapshot")  # next to the file

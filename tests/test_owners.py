"""Every event class against the owner table: limits, token scopes and the owners the store adds.

The store checks limits, and tokens check scopes, for the owners each class declares in
``Event.owners``; these tests make sure that declaration is the truth for every class, so a new
event type cannot add owners past a limit or name owners outside a token's scope.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import _jsonnet
import pytest

from agency_telemetry.events import EVENT_CLASSES, Event, Names, event_type
from agency_telemetry.limits import LimitExceeded
from agency_telemetry.owners import CAPPED, FLEET, LIMITED, OTHER, OWNERS
from agency_telemetry.refusals import REFUSALS
from agency_telemetry.tokens import SCOPE_KINDS, Forbidden, Token, TokenEntry, Tokens

from support.events import ONE_OF_EACH
from support.harness import Harness

ROOT = Path(__file__).resolve().parent.parent
FRESH = "fresh-owner"
TRACKED = (*LIMITED, *CAPPED)


def samples_of(cls: type[Event]) -> list[dict[str, Any]]:
    return [event for event in ONE_OF_EACH if event["type"] == event_type(cls)]


DECODER = Harness().decoder


def decoded(event: dict[str, Any]) -> Event:
    return DECODER.decode(json.dumps(event).encode(), "application/json")[0]


def adding(cls: type[Event]) -> list[tuple[Names, dict[str, Any]]]:
    """Each owner the class may add, with a sample event that adds it."""
    found = []
    for names in cls.owners:
        if not names.creates:
            continue
        sample = next(e for e in samples_of(cls) if decoded(e).new_owner(names) is not None)
        found.append((names, sample))
    return found


def test_every_event_class_has_a_sample_and_names_its_owners():
    for cls in EVENT_CLASSES:
        assert samples_of(cls), f"ONE_OF_EACH has no {event_type(cls)} event"
        assert cls.owners, f"{cls.__name__} declares no owner"
        for names in cls.owners:
            assert names.kind in OWNERS
            assert names.field is None or names.field in cls.__struct_fields__, (cls, names)


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=event_type)
def test_the_store_adds_exactly_the_owners_a_class_declares(cls):
    for sample in samples_of(cls):
        event = decoded(sample)
        declared = {n.kind for n in cls.owners if n.creates and event.new_owner(n) is not None}
        harness = Harness()
        harness.send(sample)
        added = {kind for kind in TRACKED if harness.store.tracked[kind]}
        assert added == declared & set(TRACKED), sample
        for names in cls.owners:  # and the owner added is the one the limit check counted
            key = event.new_owner(names) if names.creates else None
            if key is not None and names.kind in TRACKED:
                assert set(harness.store.tracked[names.kind]) == {key}, (sample, names)


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=event_type)
def test_an_event_that_adds_an_owner_counts_against_its_limit(cls):
    for names, sample in adding(cls):
        kind = names.kind
        if kind.limit is None:
            continue
        harness = Harness(f"limits: {{{kind.limit}: 1}}")
        first = {**sample, names.field: "first-owner"}
        if kind.name == "principle":  # a violation needs the check failed
            first["constitutional_compliance"] = False
        harness.send(first)
        assert len(harness.store.tracked[kind]) == 1
        if kind.overflow:  # past the limit the event still counts, under "other"
            harness.send({**first, names.field: FRESH})
            other = "\n".join((OTHER,) * len(kind.labels))
            assert set(harness.store.tracked[kind]) == {first_key(cls, names, first), other}
            assert harness.store.stats.overflow[kind.name] == 1
            continue
        before = harness.text()
        with pytest.raises(LimitExceeded) as info:
            harness.send({**first, names.field: FRESH})
        assert info.value.reason == kind.limit_reason
        assert REFUSALS[info.value.reason].status == 429
        assert harness.text() == before, "a refused batch changed the store"
        harness.send(first)  # an owner already tracked is no new one


def first_key(cls: type[Event], names: Names, sample: dict[str, Any]) -> str | None:
    return decoded(sample).new_owner(names)


def scoped_token(**scope: Any) -> Token:
    entry = TokenEntry(name="t", token="x" * 16, **scope)
    return Token(entry, hashlib.sha256(b"x" * 16).digest())


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=event_type)
def test_token_scopes_cover_every_owner_a_class_names(cls):
    nothing = {kind: ["no-such-id"] for kind in SCOPE_KINDS}
    for sample in samples_of(cls):
        event = decoded(sample)
        named = [n for n in cls.owners if n.kind.scope is not None and (n.field is None or getattr(event, n.field))]
        assert named, sample
        with pytest.raises(Forbidden):
            Tokens.authorize(scoped_token(**nothing, fleet=False), [event])
        for names in named:
            allowed = {**nothing, "fleet": names.kind.scope == FLEET}
            if names.kind.scope != FLEET:
                allowed[names.kind.scope] = [getattr(event, names.field)]
            Tokens.authorize(scoped_token(**allowed), [event])  # the owner's own scope lets it through
            if names.kind.scope != FLEET:
                elsewhere = {**allowed, names.kind.scope: ["no-such-id"]}
                with pytest.raises(Forbidden):
                    Tokens.authorize(scoped_token(**elsewhere), [event])


def test_the_tokens_file_has_a_scope_key_for_every_scoped_owner_kind():
    assert set(SCOPE_KINDS) == {k.scope for k in OWNERS if k.scope not in (None, FLEET)}
    assert set(SCOPE_KINDS) <= set(TokenEntry.__struct_fields__)


def test_every_limit_has_a_refusal_and_a_setting():
    config = Harness().config
    for kind in LIMITED:
        assert kind.limit in config.limits.__struct_fields__, kind
        assert REFUSALS[kind.limit_reason].status == 429
    for kind in OWNERS:
        assert kind.ttl is None or kind.ttl in config.expiry.__struct_fields__, kind


def mixin_lib(field: str) -> Any:
    snippet = f"(import 'rules/lib.libsonnet').{field}"
    return json.loads(_jsonnet.evaluate_snippet("lib", snippet, jpathdir=[str(ROOT)]))


def test_the_mixin_knows_every_limit_the_exporter_has():
    """AgencyExporterLimitNear and the exporter dashboard pair agency_exporter_tracked{kind} with
    agency_exporter_limit{limit}: their list must be the owner table's."""
    assert [(p["kind"], p["limit"]) for p in mixin_lib("exporterLimits")] == [(k.name, k.limit) for k in LIMITED]


def test_the_mixin_names_only_refusal_reasons_the_exporter_has():
    ingest = {r.reason for r in REFUSALS.values() if not r.web}
    web = {r.reason for r in REFUSALS.values() if r.web}
    assert set(mixin_lib("authReasons").split("|")) <= ingest
    assert set(mixin_lib("webAuthReasons").split("|")) <= web

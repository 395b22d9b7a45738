"""Who may send events: bearer tokens for ``POST /v1/events``, their scopes and rate limits.

The tokens file lists every accepted token. Several may be valid at once, which is how a token
is rotated: add the new one, move the clients, remove the old one. A token is compared by its
SHA-256 digest against every configured digest with :func:`hmac.compare_digest`, never stopping
at the first match, so neither the time to answer nor an early exit tells a guesser anything.

A token may be scoped to agent, council and queue id patterns (shell-style, ``judge-*``): a
batch naming anything outside its scope is refused whole with ``403``, so one agent's
credentials cannot write another agent's metrics. Events that name no agent, council or queue
(``business``, ``alert``) need ``fleet: true``. A token with no scope keys may send anything.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

from msgspec import Meta, Struct

from .config import ConfigError, load_yaml
from .events import EVENT_CLASSES, Event
from .owners import FLEET, OWNERS

SCOPE_KINDS = tuple(kind.scope for kind in OWNERS if kind.scope not in (None, FLEET))  # agents, councils, queues
VERDICTS_MAX = 100_000  # ids remembered per token as in or out of scope; starts over when full


class TokenEntry(Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]+$", max_length=64)]
    token: Annotated[str, Meta(min_length=16)] | None = None
    token_file: str | None = None
    sha256: Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    agents: list[str] | None = None
    councils: list[str] | None = None
    queues: list[str] | None = None
    fleet: bool | None = None
    rate_limit: Annotated[float, Meta(gt=0)] | None = None  # events per second
    burst: Annotated[int, Meta(ge=1)] | None = None  # events at once; default: one second's worth

    def __post_init__(self) -> None:
        sources = [key for key in ("token", "token_file", "sha256") if getattr(self, key) is not None]
        if len(sources) != 1:
            raise ValueError(f"token {self.name!r}: give exactly one of token, token_file, sha256 (got {sources})")
        if self.burst is not None and self.rate_limit is None:
            raise ValueError(f"token {self.name!r}: burst needs rate_limit")


class TokensFile(Struct, kw_only=True, forbid_unknown_fields=True):
    tokens: Annotated[list[TokenEntry], Meta(min_length=1)]


class TokenBucket:
    """``rate`` per second, up to ``burst`` at once; :meth:`take` says how long to wait."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.level = burst
        self.updated = clock()

    def take(self, amount: float) -> float:
        """Takes ``amount`` and returns 0, or takes nothing and returns the seconds until it could."""
        now = self.clock()
        self.level = min(self.burst, self.level + (now - self.updated) * self.rate)
        self.updated = now
        if amount <= self.level:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.rate


class Scope:
    """Which agent, council and queue ids a token may name, and whether fleet-wide events."""

    def __init__(self, entry: TokenEntry) -> None:
        self.unrestricted = all(getattr(entry, kind) is None for kind in SCOPE_KINDS) and entry.fleet is None
        self.fleet = bool(entry.fleet) or self.unrestricted
        self.patterns = {kind: tuple(getattr(entry, kind) or ()) for kind in SCOPE_KINDS}
        self._matchers = {kind: _matcher(patterns) for kind, patterns in self.patterns.items()}
        self._verdicts: dict[str, dict[str, bool]] = {kind: {} for kind in SCOPE_KINDS}

    def allows(self, kind: str, value: str) -> bool:
        verdicts = self._verdicts[kind]
        verdict = verdicts.get(value)
        if verdict is None:
            if len(verdicts) >= VERDICTS_MAX:
                verdicts.clear()
            verdict = verdicts[value] = self._matchers[kind](value)
        return verdict

    def describe(self) -> str:
        parts = [f"{kind} {', '.join(p) or '(none)'}" for kind, p in self.patterns.items()]
        return "; ".join([*parts, f"fleet {'yes' if self.fleet else 'no'}"])


def _matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    joined = "|".join(fnmatch.translate(pattern) for pattern in patterns)
    if not joined:
        return lambda value: False
    match = re.compile(joined).match
    return lambda value: match(value) is not None


class Token:
    def __init__(self, entry: TokenEntry, digest: bytes) -> None:
        self.name = entry.name
        self.digest = digest
        self.scope = Scope(entry)
        rate = entry.rate_limit
        self.bucket = TokenBucket(rate, entry.burst or max(1, math.ceil(rate))) if rate else None


def _bucket_key(token: Token) -> tuple[str, float, float] | None:
    bucket = token.bucket
    return (token.name, bucket.rate, bucket.burst) if bucket else None


class Forbidden(Exception):
    """A batch names something outside the token's scope; the message says what and where."""


def _scoped_fields(cls: type[Event]) -> tuple[tuple[str, str | None], ...]:
    """(scope kind, field) of every owner an event class names; (FLEET, None) for a fleet-wide one."""
    return tuple(
        (FLEET, None) if names.kind.scope == FLEET else (names.kind.scope, names.field)
        for names in cls.owners
        if names.kind.scope is not None
    )


OWNER_FIELDS = {cls: _scoped_fields(cls) for cls in EVENT_CLASSES}


class Tokens:
    """The tokens of one tokens file: authenticate a bearer token, check a batch against it."""

    def __init__(self, tokens: list[Token], previous: Tokens | None = None) -> None:
        self.tokens = tokens
        # A token that keeps its name, rate and burst keeps its bucket: a reload grants no new burst.
        kept = {_bucket_key(t): t.bucket for t in previous.tokens if t.bucket} if previous else {}
        for token in tokens:
            token.bucket = kept.get(_bucket_key(token), token.bucket)

    def authenticate(self, presented: str) -> Token | None:
        """The token whose secret is ``presented``, comparing against every one of them."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found

    @staticmethod
    def authorize(token: Token, events: list[Event]) -> None:
        """Raises :class:`Forbidden` for the first event naming something outside the scope."""
        scope = token.scope
        if scope.unrestricted:
            return
        allows = scope.allows
        for index, event in enumerate(events):
            for kind, field in OWNER_FIELDS[event.__class__]:
                if field is None:
                    if not scope.fleet:
                        raise _forbidden(token, index, "fleet-wide events")
                    continue
                value = getattr(event, field)
                if value is not None and not allows(kind, value):
                    raise _forbidden(token, index, f"{kind[:-1]} {value!r}")


def _forbidden(token: Token, index: int, what: str) -> Forbidden:
    return Forbidden(
        f"event {index}: token {token.name!r} may not send events about {what}; "
        f"its scope is {token.scope.describe()} (ingest tokens file)"
    )


def load_tokens(path: str | Path, previous: Tokens | None = None) -> tuple[Tokens, list[Path]]:
    """The tokens in ``path`` and every file they were read from (to watch for changes)."""
    path = Path(path)
    parsed = load_yaml(path, TokensFile, "ingest tokens file")
    files = [path]
    tokens = []
    for entry in parsed.tokens:
        digest = _digest(entry, path.parent, files)
        tokens.append(Token(entry, digest))
    _check_unique(path, tokens)
    return Tokens(tokens, previous), files


def _digest(entry: TokenEntry, directory: Path, files: list[Path]) -> bytes:
    if entry.sha256 is not None:
        return bytes.fromhex(entry.sha256)
    secret = entry.token
    if entry.token_file is not None:
        token_path = directory / entry.token_file
        files.append(token_path)
        try:
            secret = token_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"token {entry.name!r}: cannot read token_file {token_path}: {exc.strerror}") from None
        if len(secret) < 16:
            message = f"{token_path} holds fewer than 16 characters; use a long random token"
            raise ConfigError(f"token {entry.name!r}: {message}")
    assert secret is not None
    return hashlib.sha256(secret.encode()).digest()


def _check_unique(path: Path, tokens: list[Token]) -> None:
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: token names must be unique, got {names}")
    if len({t.digest for t in tokens}) != len(tokens):
        raise ConfigError(f"{path}: two entries have the same token; each token must appear once")

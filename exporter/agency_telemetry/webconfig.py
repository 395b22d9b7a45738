"""The exporter-toolkit web configuration file (``--web.config.file``): TLS, basic auth, rate
limit and headers; and the middleware that applies them to every request.

The same file format as node_exporter and every exporter built on the Prometheus
exporter-toolkit, so a Prometheus scrape config with ``tls_config`` and ``basic_auth`` that
works against those works against this exporter unchanged. Keys are strict, relative paths are
resolved from the file's directory, and the file (with the certificates it names) is read again
when it changes; a connection uses the settings in force when it was opened.

Differences, each refused with an error saying so rather than silently ignored:
``client_auth_type`` ``RequestClientCert`` and ``RequireAnyClientCert`` (they accept any
certificate unverified, which Python's ssl module cannot do, and the toolkit calls insecure) and
``curve_preferences`` (Python cannot set a curve list; OpenSSL's defaults apply). ``http2`` is
accepted; the exporter speaks HTTP/1.1, which Prometheus uses for scrapes anyway.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import bcrypt
import msgspec
from aiohttp import web
from msgspec import Meta, Struct

from .config import ConfigError, Seconds, load_yaml
from .refusals import refusal_answer
from .reload import Reloadable
from .tokens import TokenBucket

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
# Go's names of the TLS 1.2 suites it offers, and OpenSSL's names for them. TLS 1.3 suites
# are not configurable, in Go as here.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
}
ALLOWED_HEADERS = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
AUTH_CACHE_MAX = 1024  # (user, password, hash) verdicts kept; bcrypt costs ~70 ms per check


class _Strict(Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class TLSServerConfig(_Strict):
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: list[str] | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS13"
    cipher_suites: list[str] | None = None
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] | None = None

    def __post_init__(self) -> None:
        for inline, file in (("cert", "cert_file"), ("key", "key_file"), ("client_ca", "client_ca_file")):
            if getattr(self, inline) is not None and getattr(self, file) is not None:
                raise ValueError(f"give {inline} or {file}, not both")
        if self.cert is None and self.cert_file is None:
            raise ValueError("cert_file (or cert) is required")
        if self.key is None and self.key_file is None:
            raise ValueError("key_file (or key) is required")
        if self.client_auth_type in UNVERIFIED_CLIENT_AUTH:
            raise ValueError(
                f"client_auth_type {self.client_auth_type} accepts client certificates without verifying "
                "them; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
            )
        if self.client_auth_type not in CLIENT_AUTH:
            raise ValueError(f"client_auth_type must be one of {', '.join(CLIENT_AUTH)}, got {self.client_auth_type!r}")
        has_ca = self.client_ca is not None or self.client_ca_file is not None
        if has_ca and self.client_auth_type == "NoClientCert":
            raise ValueError(
                "client_ca_file is set but client_auth_type is NoClientCert: set RequireAndVerifyClientCert"
            )
        if not has_ca and self.client_auth_type != "NoClientCert":
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file to verify against")
        if self.client_allowed_sans and self.client_auth_type != "RequireAndVerifyClientCert":
            raise ValueError("client_allowed_sans needs client_auth_type RequireAndVerifyClientCert")
        if TLS_VERSIONS[self.min_version] > TLS_VERSIONS[self.max_version]:
            raise ValueError(f"min_version {self.min_version} is above max_version {self.max_version}")
        unknown = [s for s in self.cipher_suites or () if s not in CIPHER_SUITES]
        if unknown:
            raise ValueError(f"cipher_suites: unknown {unknown}; known: {', '.join(CIPHER_SUITES)}")
        if self.curve_preferences is not None:
            raise ValueError("curve_preferences is not supported (Python cannot set a curve list); remove it")


class HTTPServerConfig(_Strict):
    http2: bool = True
    headers: dict[str, str] = {}

    def __post_init__(self) -> None:
        for name, value in self.headers.items():
            if name not in ALLOWED_HEADERS:
                raise ValueError(f"headers: {name!r} cannot be set; allowed: {', '.join(ALLOWED_HEADERS)}")
            allowed = ALLOWED_HEADERS[name]
            if allowed is not None and value.lower() not in allowed:
                raise ValueError(f"headers: {name} must be one of {', '.join(allowed)}, got {value!r}")


class RateLimit(_Strict):
    interval: Seconds  # time between two requests, on average
    burst: Annotated[int, Meta(ge=1)]


class WebConfigFile(_Strict):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = msgspec.field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, str] = {}
    rate_limit: RateLimit | None = None

    def __post_init__(self) -> None:
        for user, hashed in self.basic_auth_users.items():
            if not (hashed.startswith(BCRYPT_PREFIXES) and len(hashed) == 60 and hashed[4:6].isdigit()):
                raise ValueError(
                    f"basic_auth_users: the password of {user!r} must be a bcrypt hash "
                    "(htpasswd -nBC 10 \"\" | tr -d ':\\n'), not the password itself"
                )


class WebSecurity:
    """The settings of one version of the web configuration file, ready to use."""

    def __init__(self, parsed: WebConfigFile, ssl_context: ssl.SSLContext | None, auth: BasicAuth | None) -> None:
        self.ssl_context = ssl_context
        self.basic_auth = auth
        tls = parsed.tls_server_config
        self.allowed_sans = frozenset(tls.client_allowed_sans) if tls and tls.client_allowed_sans else None
        self.headers = dict(parsed.http_server_config.headers)
        limit = parsed.rate_limit
        self.rate_limit = TokenBucket(1 / limit.interval, limit.burst) if limit else None


def load_web_config(path: Path, previous: WebSecurity | None = None) -> tuple[WebSecurity, list[Path]]:
    """The settings in ``path`` and every file they were read from (to watch for changes)."""
    parsed = load_yaml(path, WebConfigFile, "web configuration file")
    files = [path]
    ssl_context = None
    if parsed.tls_server_config is not None:
        try:
            ssl_context = _ssl_context(parsed.tls_server_config, path.parent, files)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{path}: tls_server_config: {exc}") from None
    if previous is not None and (previous.ssl_context is None) != (ssl_context is None):
        raise ConfigError(f"{path}: turning TLS on or off needs a restart of the exporter")
    cache = previous.basic_auth.cache if previous and previous.basic_auth else None
    auth = BasicAuth(parsed.basic_auth_users, cache) if parsed.basic_auth_users else None
    return WebSecurity(parsed, ssl_context, auth), files


def _ssl_context(tls: TLSServerConfig, directory: Path, files: list[Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.cipher_suites:
        context.set_ciphers(":".join(CIPHER_SUITES[name] for name in tls.cipher_suites))
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    with (
        _pem_file(tls.cert, tls.cert_file, directory, files) as cert,
        _pem_file(tls.key, tls.key_file, directory, files) as key,
    ):
        context.load_cert_chain(cert, key)
    context.verify_mode = CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca is not None:
        context.load_verify_locations(cadata=tls.client_ca)
    elif tls.client_ca_file is not None:
        ca_file = directory / tls.client_ca_file
        files.append(ca_file)
        context.load_verify_locations(cafile=ca_file)
    return context


@contextlib.contextmanager
def _pem_file(inline: str | None, file: str | None, directory: Path, files: list[Path]) -> Any:
    """A path to the PEM: the named file, or the inline text in a private temporary file."""
    if file is not None:
        path = directory / file
        files.append(path)
        yield path
        return
    assert inline is not None
    fd, name = tempfile.mkstemp(suffix=".pem")  # created 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(inline)
        yield name
    finally:
        os.unlink(name)


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes in a worker thread, with a cache.

    bcrypt is slow on purpose (~70 ms at cost 10), so it never runs on the event loop, and a
    verdict is remembered per (user, password, hash) so a scraper pays it once. An unknown
    user is checked against a fixed hash, so the answer takes as long as for a known one."""

    def __init__(self, users: dict[str, str], cache: dict[bytes, bool] | None = None) -> None:
        self.users = {user: hashed.encode() for user, hashed in users.items()}
        self.cache = cache if cache is not None else {}
        # as costly as the users' own hashes ("$2y$10$..." -> 10), so timing tells nothing
        self.unknown_user_hash = _unknown_user_hash(max(int(h[4:6]) for h in self.users.values()))

    async def check(self, authorization: str | None) -> bool:
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        known = user in self.users
        hashed = self.users[user] if known else self.unknown_user_hash
        key = hashlib.sha256(b"\0".join((user.encode(), password, hashed))).digest()
        verdict = self.cache.get(key)
        if verdict is None:
            loop = asyncio.get_running_loop()
            verdict = await loop.run_in_executor(None, bcrypt.checkpw, password, hashed) and known
            if len(self.cache) >= AUTH_CACHE_MAX:
                self.cache.clear()
            self.cache[key] = verdict
        return verdict


def _basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "replace"), password


@functools.cache
def _unknown_user_hash(cost: int) -> bytes:
    return bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(cost))


def web_security(settings: Reloadable[WebSecurity], on_refusal: Callable[[str], None], ingest_has_tokens: bool) -> Any:
    """The web configuration's rate limit and basic auth, on every endpoint; ingest is left to
    its bearer tokens when an ingest tokens file is set (both would use ``Authorization``).
    Returns the middleware and the response hook adding the configured headers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        current = settings.current
        if current.rate_limit is not None:
            wait = current.rate_limit.take(1)
            if wait:
                on_refusal("rate_limit")
                message = "over the web configuration's rate_limit; retry later"
                return refusal_answer("rate_limit", message, retry_after=wait)
        auth = current.basic_auth
        exempt = ingest_has_tokens and request.path == "/v1/events"
        if auth is not None and not exempt and not await auth.check(request.headers.get("Authorization")):
            on_refusal("basic_auth")
            message = "basic auth required (basic_auth_users of the web configuration)"
            return refusal_answer("basic_auth", message, headers={"WWW-Authenticate": "Basic"})
        return await handler(request)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(settings.current.headers)

    return middleware, add_headers

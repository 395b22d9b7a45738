"""The exporter-toolkit web configuration: TLS (with and without client certificates), basic
auth against bcrypt hashes, reloads, strict keys — on a real listener, with real certificates
generated per test, and a real Prometheus scraping over TLS with basic auth."""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
import trustme
import yaml

from agency_telemetry import server as listener
from agency_telemetry import webconfig
from agency_telemetry.config import ConfigError, parse_config
from agency_telemetry.routes import WEB_CONFIG, create_app
from agency_telemetry.server import Server, start_server, stop_server
from agency_telemetry.webconfig import load_web_config

from scripts.local_stack import free_port, stop_process
from support.metrics import value
from support.processes import run_cli, start_daemon

PASSWORD = "correct horse battery staple"
# As `htpasswd -nbBC 4 "" PASSWORD` writes it: the $2y$ prefix; cost 4 keeps the tests fast.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)


class PKI:
    """A CA with a server certificate for 127.0.0.1, a client certificate, and a stranger CA."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = trustme.CA()
        self.stranger = trustme.CA()
        self.server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.client = self.ca.issue_cert("prometheus.example")
        self.other_client = self.ca.issue_cert("intruder.example")
        self.stranger_client = self.stranger.issue_cert("prometheus.example")
        self.ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        self.server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
        self.server.private_key_pem.write_to_path(str(directory / "server.key"))

    def client_context(self, cert: trustme.LeafCert | None = None, ca: trustme.CA | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        (ca or self.ca).configure_trust(context)
        if cert is not None:
            cert.configure_cert(context)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    return PKI(tmp_path)


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await serve(web_config_yaml)`` runs the exporter on a free port with that web config."""
    servers: list[Server] = []

    async def start(web_config: str, extra: str = "") -> Server:
        path = tmp_path / "web.yml"
        path.write_text(web_config)
        app = create_app(parse_config(f"web_config_file: {path}\n{extra}"))
        server = await start_server(app, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await stop_server(server, 1)


TLS = "tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
MTLS = (
    "tls_server_config: {cert_file: server.crt, key_file: server.key, "
    "client_auth_type: RequireAndVerifyClientCert, client_ca_file: ca.pem}\n"
)


async def get(url: str, context: ssl.SSLContext | bool = False, auth: str | None = None) -> tuple[int, str, Any]:
    headers = {"Authorization": auth} if auth else {}
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context, headers=headers) as resp:
        return resp.status, await resp.text(), resp.headers


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def refused(server: Server, context: ssl.SSLContext) -> bool:
    """One connection attempt (no client retries): True when the server refuses the session."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    except (ssl.SSLError, ConnectionError):
        return True
    return not answer.startswith(b"HTTP/1.1 200")


def url(server: Server, path: str = "/metrics") -> str:
    return f"{'https' if server.tls else 'http'}://127.0.0.1:{server.port}{path}"


# --- TLS --------------------------------------------------------------------------------


async def test_tls_serves_metrics_and_refuses_plain_http(serve: Callable[..., Any], pki: PKI) -> None:
    server = await serve(TLS)
    status, text, _ = await get(url(server), pki.client_context())
    assert status == 200 and "agency_exporter_build_info" in text
    with pytest.raises(aiohttp.ClientError):
        await get(f"http://127.0.0.1:{server.port}/metrics")
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await get(url(server), pki.client_context(ca=pki.stranger))  # a server the client cannot trust


async def test_required_client_certificates_are_verified(serve: Callable[..., Any], pki: PKI) -> None:
    server = await serve(MTLS)
    assert (await get(url(server), pki.client_context(pki.client)))[0] == 200
    for cert in (None, pki.stranger_client):  # no certificate; one from another CA
        assert await refused(server, pki.client_context(cert))
    text = (await get(url(server), pki.client_context(pki.client)))[1]
    assert value(text, "agency_exporter_web_rejected_total", reason="handshake") == 2


async def test_optional_client_certificates_are_verified_when_given(serve: Callable[..., Any], pki: PKI) -> None:
    server = await serve(MTLS.replace("RequireAndVerifyClientCert", "VerifyClientCertIfGiven"))
    assert (await get(url(server), pki.client_context()))[0] == 200
    assert (await get(url(server), pki.client_context(pki.client)))[0] == 200
    with pytest.raises(aiohttp.ClientError):
        await get(url(server), pki.client_context(pki.stranger_client))


async def test_client_allowed_sans_turns_away_other_valid_certificates(serve: Callable[..., Any], pki: PKI) -> None:
    server = await serve(MTLS.replace("}", ", client_allowed_sans: [prometheus.example]}"))
    assert (await get(url(server), pki.client_context(pki.client)))[0] == 200
    assert await refused(server, pki.client_context(pki.other_client))
    text = (await get(url(server), pki.client_context(pki.client)))[1]
    assert value(text, "agency_exporter_web_rejected_total", reason="client_san") == 1


async def test_min_version_refuses_older_clients(serve: Callable[..., Any], pki: PKI) -> None:
    server = await serve(TLS.replace("}", ", min_version: TLS13}"))
    old = pki.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiohttp.ClientError):
        await get(url(server), old)
    assert (await get(url(server), pki.client_context()))[0] == 200


async def test_a_stalled_handshake_does_not_hold_the_listener(
    serve: Callable[..., Any], pki: PKI, monkeypatch: Any
) -> None:
    monkeypatch.setattr(listener, "TLS_HANDSHAKE_TIMEOUT", 0.5)
    server = await serve(TLS)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # never says hello
    assert await asyncio.wait_for(reader.read(), 5) == b"", "the server closes the silent connection"
    writer.close()
    assert (await get(url(server), pki.client_context()))[0] == 200


async def test_a_reloaded_web_config_applies_to_the_next_connection(
    serve: Callable[..., Any], pki: PKI, tmp_path: Path
) -> None:
    """Renewed certificates and a stricter client policy take effect without a restart."""
    server = await serve(TLS)
    assert (await get(url(server), pki.client_context()))[0] == 200
    (tmp_path / "web.yml").write_text(MTLS)
    await wait_for_reload(server)
    with pytest.raises(aiohttp.ClientError):
        await get(url(server), pki.client_context())
    assert (await get(url(server), pki.client_context(pki.client)))[0] == 200
    # a renewed server certificate from a new CA, written over the old files
    new_ca = trustme.CA()
    renewed = new_ca.issue_cert("127.0.0.1")
    renewed.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    renewed.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    await wait_for_reload(server)
    assert (await get(url(server), pki.client_context(pki.client, ca=new_ca)))[0] == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await get(url(server), pki.client_context(pki.client))


async def wait_for_reload(server: Server) -> None:
    reloadable = server.runner.app[WEB_CONFIG]
    before = reloadable.success_time
    for _ in range(100):  # the watcher polls every second
        if reloadable.success_time != before:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the changed web configuration was not reloaded within 5 s")


async def test_a_broken_reload_keeps_serving_with_the_previous_settings(
    serve: Callable[..., Any], pki: PKI, tmp_path: Path
) -> None:
    server = await serve(TLS)
    (tmp_path / "web.yml").write_text(TLS.replace("server.key", "missing.key"))
    reloadable = server.runner.app[WEB_CONFIG]
    assert not reloadable.check()
    status, text, _ = await get(url(server), pki.client_context())
    assert status == 200
    assert value(text, "agency_exporter_reload_success", file="web_config") == 0
    (tmp_path / "web.yml").write_text("basic_auth_users: {}\n")
    assert not reloadable.check(), "TLS cannot be turned off by a reload"


# --- basic auth -------------------------------------------------------------------------


async def test_basic_auth_protects_every_endpoint(serve: Callable[..., Any]) -> None:
    server = await serve(f"basic_auth_users: {{prometheus: '{HASH}'}}\n")
    good = basic("prometheus", PASSWORD)
    for path in ("/metrics", "/", "/healthz"):
        status, _, headers = await get(url(server, path))
        assert status == 401 and headers["WWW-Authenticate"] == "Basic"
        assert (await get(url(server, path), auth=good))[0] == 200
    for wrong in (basic("prometheus", "wrong"), basic("nobody", PASSWORD)):
        assert (await get(url(server), auth=wrong))[0] == 401
    async with aiohttp.ClientSession() as session:
        resp = await session.post(url(server, "/v1/events"), data=b"{}", headers={"Content-Type": "application/json"})
        assert resp.status == 401, "without ingest tokens, ingest is behind basic auth too"
    text = (await get(url(server), auth=good))[1]
    assert value(text, "agency_exporter_web_rejected_total", reason="basic_auth") == 6


async def test_ingest_tokens_take_over_ingest_from_basic_auth(serve: Callable[..., Any], tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yml"
    tokens.write_text("tokens: [{name: a, token: a-long-ingest-token-0123}]\n")
    server = await serve(f"basic_auth_users: {{prometheus: '{HASH}'}}\n", f"ingest_tokens_file: {tokens}\n")
    headers = {"Content-Type": "application/x-ndjson", "Authorization": "Bearer a-long-ingest-token-0123"}
    async with aiohttp.ClientSession() as session:
        resp = await session.post(
            url(server, "/v1/events"), data=b'{"type":"business","completed":true}', headers=headers
        )
        assert resp.status == 202
    assert (await get(url(server)))[0] == 401, "/metrics stays behind basic auth"


async def test_bcrypt_runs_off_the_event_loop_once_per_credentials(serve: Callable[..., Any], monkeypatch: Any) -> None:
    calls: list[tuple[bytes, str]] = []
    checkpw = bcrypt.checkpw

    def recording(password: bytes, hashed: bytes) -> bool:
        calls.append((hashed, threading.current_thread().name))
        return checkpw(password, hashed)

    monkeypatch.setattr(webconfig.bcrypt, "checkpw", recording)
    server = await serve(f"basic_auth_users: {{prometheus: '{HASH}'}}\n")
    good = basic("prometheus", PASSWORD)
    for _ in range(3):
        assert (await get(url(server), auth=good))[0] == 200
    assert len(calls) == 1, "a verdict is cached per (user, password, hash)"
    assert calls[0][1] != threading.main_thread().name, "bcrypt ran on the event loop's thread"
    assert (await get(url(server), auth=basic("nobody", PASSWORD)))[0] == 401
    unknown_user_hash = calls[1][0]
    assert unknown_user_hash != HASH.encode() and unknown_user_hash[4:7] == HASH.encode()[4:7], (
        "an unknown user is checked against a fixed hash of the same cost, so the answer takes as long"
    )


async def test_headers_and_rate_limit_of_the_web_config(serve: Callable[..., Any]) -> None:
    server = await serve(
        "http_server_config: {headers: {X-Frame-Options: deny, X-Content-Type-Options: nosniff}}\n"
        "rate_limit: {interval: 1h, burst: 2}\n"
    )
    for _ in range(2):
        status, _, headers = await get(url(server))
        assert status == 200 and headers["X-Frame-Options"] == "deny" and headers["X-Content-Type-Options"] == "nosniff"
    status, _, headers = await get(url(server))
    assert status == 429 and int(headers["Retry-After"]) > 3000


# --- strict loading ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config: {cert_file: server.crt, key_file: server.key, bogus: 1}\n", "unknown field `bogus`"),
        ("tls_server_config: {cert_file: server.crt}\n", "key_file"),
        (TLS.replace("}", ", client_auth_type: RequireAnyClientCert}"), "without verifying"),
        (TLS.replace("}", ", client_ca_file: ca.pem}"), "client_auth_type is NoClientCert"),
        (TLS.replace("}", ", client_auth_type: RequireAndVerifyClientCert}"), "needs client_ca_file"),
        (TLS.replace("}", ", min_version: TLS13, max_version: TLS12}"), "above max_version"),
        (TLS.replace("}", ", cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]}"), "unknown"),
        (TLS.replace("}", ", curve_preferences: [X25519]}"), "curve_preferences is not supported"),
        (TLS.replace("server.key", "nope.key"), "No such file"),
        ("basic_auth_users: {alice: plaintext}\n", "must be a bcrypt hash"),
        ("http_server_config: {headers: {Server: x}}\n", "cannot be set"),
        ("http_server_config: {headers: {X-Frame-Options: allow}}\n", "deny, sameorigin"),
        ("rate_limit: {interval: 0, burst: 1}\n", "rate_limit.interval"),
        ("basic_auth_users: [alice]\n", "basic_auth_users"),
    ],
)
def test_a_bad_web_config_is_refused_with_what_to_change(pki: PKI, text: str, message: str) -> None:
    path = pki.directory / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_web_config(path)


def test_relative_paths_are_resolved_from_the_files_directory(pki: PKI, tmp_path: Path, monkeypatch: Any) -> None:
    path = pki.directory / "web.yml"
    path.write_text(MTLS)
    monkeypatch.chdir("/")
    settings, files = load_web_config(path)
    assert settings.ssl_context is not None
    assert set(files) == {path, pki.directory / "server.crt", pki.directory / "server.key", pki.directory / "ca.pem"}


@pytest.mark.integration
def test_check_config_and_serve_refuse_a_bad_web_config(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {alice: plaintext}\n")
    config = tmp_path / "config.yml"
    config.write_text("web_config_file: web.yml\n")  # relative to the configuration file, not the cwd
    for command in (
        ["check-config", str(config)],
        ["serve", "--listen", f"127.0.0.1:{free_port()}", "--web.config.file", str(web)],
    ):
        result = run_cli(*command, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "must be a bcrypt hash" in result.stderr


# --- a real Prometheus ------------------------------------------------------------------


@pytest.mark.integration
async def test_a_real_prometheus_scrapes_over_tls_with_basic_auth(
    serve: Callable[..., Any], pki: PKI, tmp_path: Path
) -> None:
    """An ordinary scrape config with tls_config and basic_auth works unchanged; the wrong
    password and a missing CA are refused, and Prometheus says why."""
    server = await serve(
        MTLS.replace("}", ", client_allowed_sans: [prometheus.example]}")
        + f"basic_auth_users: {{prometheus: '{HASH}'}}\n"
    )
    pki.client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
    pki.client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    (tmp_path / "password").write_text(PASSWORD)
    target = f"127.0.0.1:{server.port}"
    tls = {"ca_file": "ca.pem", "cert_file": "client.crt", "key_file": "client.key"}

    def job(name: str, password_file: str, tls_config: dict[str, str]) -> dict[str, Any]:
        return {
            "job_name": name,
            "scheme": "https",
            "tls_config": tls_config,
            "basic_auth": {"username": "prometheus", "password_file": password_file},
            "static_configs": [{"targets": [target]}],
        }

    (tmp_path / "wrong").write_text("not the password")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            job("good", "password", tls),
            job("wrong-password", "wrong", tls),
            job("no-client-cert", "password", {"ca_file": "ca.pem"}),
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    arguments = [f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}"]
    proc, prometheus = await asyncio.to_thread(start_daemon, "prometheus", arguments, tmp_path)
    try:
        targets = await scraped_targets(prometheus, 3)
    finally:
        await asyncio.to_thread(stop_process, proc)
    assert targets["good"]["health"] == "up", targets["good"]
    assert targets["wrong-password"]["health"] == "down"
    assert "401" in targets["wrong-password"]["lastError"]
    assert targets["no-client-cert"]["health"] == "down"
    text = (await get(url(server), pki.client_context(pki.client), basic("prometheus", PASSWORD)))[1]
    assert value(text, "agency_exporter_web_rejected_total", reason="basic_auth")


async def scraped_targets(prometheus: str, count: int) -> dict[str, dict[str, Any]]:
    """The active targets by job, once each has been scraped at least once (twice for health)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            async with session.get(f"{prometheus}/api/v1/targets") as resp:
                active = (await resp.json())["data"]["activeTargets"]
            targets = {t["labels"]["job"]: t for t in active}
            if len(targets) == count and all(t["health"] != "unknown" for t in targets.values()):
                return targets
            await asyncio.sleep(0.1)
    pytest.fail(f"Prometheus did not scrape all {count} targets within 30 s: {targets}")

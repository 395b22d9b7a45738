"""An exporter app served on a loopback port in the test's event loop, with a client bound to it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from support.events import ndjson


class Exporter:
    """A running exporter app with a client bound to it."""

    def __init__(self, client: TestClient, app: web.Application) -> None:
        self.client = client
        self.app = app

    async def post(self, body: bytes | str, content_type: str = "application/x-ndjson") -> tuple[int, Any]:
        data = body.encode() if isinstance(body, str) else body
        resp = await self.client.post("/v1/events", data=data, headers={"Content-Type": content_type})
        return resp.status, await resp.json()

    async def send(self, *events: dict[str, Any]) -> Any:
        status, payload = await self.post(ndjson(events))
        assert status == 202, payload
        return payload

    async def metrics(self, accept: str | None = None) -> str:
        headers = {"Accept": accept} if accept else {}
        resp = await self.client.get("/metrics", headers=headers)
        assert resp.status == 200
        return await resp.text()

"""The synchronous client: the asynchronous one, run on an event loop in a daemon thread.

``send`` hands the event to that loop and returns at once, so application threads never wait
for the network. Events still queued when the interpreter exits are flushed by an ``atexit``
hook (for up to ``exit_timeout`` seconds).
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from ._async import AsyncClient, ClientSettings, Event, Stats


class Client:
    def __init__(self, url: str | Sequence[str] | None = None, exit_timeout: float = 10.0, **settings: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="agency-telemetry-client", daemon=True)
        self._thread.start()
        self._client: AsyncClient = self._call(self._make(url, settings))
        self._call(self._client.start())
        self._exit_timeout = exit_timeout
        self._closed = False
        atexit.register(self.close)

    @staticmethod
    async def _make(url: str | Sequence[str] | None, settings: dict[str, Any]) -> AsyncClient:
        return AsyncClient(url, **settings)

    def _call(self, coroutine: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def settings(self) -> ClientSettings:
        return self._client.settings

    @property
    def stats(self) -> Stats:
        return self._client.stats

    def send(self, event: Event) -> str:
        """Queue one event; returns its ``id``. Thread-safe, never blocks on the network."""
        event.setdefault("id", uuid.uuid4().hex)
        self._loop.call_soon_threadsafe(self._client.send, event)
        return str(event["id"])

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is sent; False if ``timeout`` passed first."""
        return bool(self._call(self._client.flush(timeout)))

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop the sender and its thread. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._call(self._client.close(self._exit_timeout if timeout is None else timeout))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

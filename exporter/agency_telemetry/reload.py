"""Files that are read again when they change: the web configuration and the ingest tokens.

Certificates renewed by cert-manager or a rotated token take effect without a restart, as
with exporter-toolkit. A file that no longer loads leaves the previous settings in force; the
failure is logged and shown by ``agency_exporter_reload_success{file=...}`` = 0.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from .config import ConfigError

T = TypeVar("T")
POLL_SECONDS = 1.0  # how often the files are checked for changes (a stat each)
log = logging.getLogger("agency_telemetry.reload")

Loader = Callable[[Path, "T | None"], tuple[T, list[Path]]]
"""Reads the file (given what it held before) into settings and the files they came from."""


class Reloadable(Generic[T]):
    """Settings loaded from ``path`` and reloaded by :meth:`check` when any of their files change."""

    def __init__(self, kind: str, path: str | Path, loader: Loader[T]) -> None:
        self.kind = kind  # "web_config" or "ingest_tokens": the `file` label of the self-metrics
        self.path = Path(path)
        self.loader = loader
        self.current, files = loader(self.path, None)  # a bad file at start-up is fatal: raise
        self._stamps = _stamps(files)
        self.success = True
        self.success_time = time.time()
        self.failures = 0

    def check(self) -> bool:
        """Reloads if a file changed; True when new settings took effect."""
        stamps = _stamps(list(self._stamps))
        if stamps == self._stamps:
            return False
        try:
            settings, files = self.loader(self.path, self.current)
        except ConfigError as exc:
            self._stamps = stamps  # report a broken file once, not every poll
            self.success = False
            self.failures += 1
            log.error("%s: not reloaded, the previous settings stay in force: %s", self.path, exc)
            return False
        self.current, self._stamps = settings, _stamps(files)
        self.success, self.success_time = True, time.time()
        log.info("%s: reloaded", self.path)
        return True


def _stamps(files: list[Path]) -> dict[Path, tuple[int, int, int] | None]:
    """What identifies a file's version without reading it: inode, size, modification time."""
    stamps: dict[Path, tuple[int, int, int] | None] = {}
    for file in files:
        try:
            stat = os.stat(file)
        except OSError:
            stamps[file] = None
        else:
            stamps[file] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return stamps

"""Failure reasons (free text) to a bounded ``error_class`` label.

Patterns are tried in configured order and the first match wins; a reason nothing matches
is ``other``. Agents repeat the same few reasons, so results are cached: a regex runs
once per distinct reason, not once per failure. The cache is bounded because reasons are
free text an agent controls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class ErrorClassifier:
    CACHE_SIZE = 4096

    def __init__(self, classes: Iterable[tuple[str, str]], fallback: str) -> None:
        pairs = list(classes)
        self.names: tuple[str, ...] = (*(name for name, _ in pairs), fallback)
        self._patterns = [re.compile(pattern, re.IGNORECASE) for _, pattern in pairs]
        self._fallback_index = len(pairs)
        self._cache: dict[str, int] = {}

    def index(self, reason: str) -> int:
        """Position of the reason's class in :attr:`names`."""
        found = self._cache.get(reason)
        if found is None:
            found = next((i for i, p in enumerate(self._patterns) if p.search(reason)), self._fallback_index)
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[reason] = found
        return found

    def classify(self, reason: str) -> str:
        return self.names[self.index(reason)]

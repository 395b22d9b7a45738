"""The spend of an LLM request from its token counts and the configured ``pricing`` table.

The first entry whose patterns match the request's provider and model prices it. Patterns are
matched once per distinct (provider, model), then remembered: agents call few models.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable

from .config import Price

CACHE_SIZE = 4096  # (provider, model) pairs remembered; the memory starts over when full


def _matcher(pattern: str | None) -> Callable[[str], bool]:
    if pattern is None:
        return lambda value: True
    match = re.compile(fnmatch.translate(pattern)).match
    return lambda value: match(value) is not None


class Pricing:
    def __init__(self, prices: Iterable[Price]) -> None:
        self._rules = [(_matcher(p.provider), _matcher(p.model), p) for p in prices]
        self._found: dict[tuple[str, str], Price | None] = {}

    def price(self, provider: str, model: str) -> Price | None:
        """The first matching entry, or None: the model is unpriced."""
        key = (provider, model)
        if key in self._found:
            return self._found[key]
        found = next((p for by_provider, by_model, p in self._rules if by_provider(provider) and by_model(model)), None)
        if len(self._found) >= CACHE_SIZE:
            self._found.clear()
        self._found[key] = found
        return found


def cost(price: Price, *, input: int, output: int, cache_read: int, cache_write: int, reasoning: int) -> float:
    """USD for these token counts; ``input`` includes the cached ones, ``output`` the reasoning ones."""
    read = price.input if price.cache_read is None else price.cache_read
    write = price.input if price.cache_write is None else price.cache_write
    thinking = price.output if price.reasoning is None else price.reasoning
    uncached = input - cache_read - cache_write
    usd = uncached * price.input + cache_read * read + cache_write * write
    usd += (output - reasoning) * price.output + reasoning * thinking
    return usd / 1e6

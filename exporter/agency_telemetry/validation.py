"""What every file and request the exporter reads shares: the label-value pattern, and where in
the input a msgspec validation error points."""

from __future__ import annotations

import re

# \Z, not $: msgspec searches, and $ also matches before a final newline.
ID_PATTERN = r"^[A-Za-z0-9_.:/-]+\Z"
LABEL_VALUE = re.compile(ID_PATTERN)  # anchored at both ends: match() checks the whole value
LABEL_CHARACTERS = "letters, digits and _ . : / -"

_LOCATION = re.compile(r" - at `\$(?:\[(\d+)\])?\.?([^`]*)`$")


def error_location(message: str) -> tuple[str, int | None, str]:
    """msgspec's ``"Expected `int`, got `str` - at `$[2].limits.max_agents`"`` as
    ``("Expected `int`, got `str`", 2, "limits.max_agents")``: the text, the index of the item
    in a top-level array (or None), and the key path below it ("" for the item itself)."""
    match = _LOCATION.search(message)
    if match is None:
        return message, None, ""
    index, path = match.groups()
    return message[: match.start()], None if index is None else int(index), path

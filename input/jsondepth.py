"""How deeply a JSON text nests, found without parsing it (pure, no recursion).

``json.loads`` recurses once per ``[`` or ``{``: a few kilobytes of brackets raise
``RecursionError`` deep inside the parser (a 64 KiB control message of 30,000 ``[`` did, and
ended the client's stream). Every JSON that comes from outside is measured here first and
refused when it nests deeper than its limit.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 64
"""Nesting farview's own messages never approach (the deepest, an entity tree, is flat lists
of flat objects: a tree's depth is in the data, not in the JSON's nesting, see
:class:`~farview.input.scene.EntityNode`)."""


_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
"""A whole string (skipped: brackets inside it do not count) or one bracket."""


def nests_deeper(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays and objects more than ``limit`` levels deep (brackets
    inside strings do not count). Cheap: a text with at most ``limit`` brackets is not scanned,
    and a scan stops at the first level past the limit."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False

"""One regular expression for many literal names (KG labels), built as a trie.

An alternation of thousands of names sorted longest first makes the regex engine try every name at
every position; a trie tests shared prefixes once, so a scan costs about the text length times the
name depth. Semantics are those of the longest-first alternation: at a position the longest name that
the surrounding pattern accepts wins (the optional longer continuation is tried first and given up on
backtracking).
"""
from __future__ import annotations

import re
from collections.abc import Iterable


def trie_pattern(names: Iterable[str]) -> str:
    """Regex source, with no capturing groups, matching exactly the non-empty ``names``."""
    root: dict = {}
    for name in names:
        if not name:
            continue
        node = root
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = True  # a name ends here
    return _node_pattern(root) if root else r"(?!)"


def _node_pattern(node: dict) -> str:
    branches = [re.escape(ch) + _node_pattern(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a name may stop here
        return f"(?:{body})?"
    return body

"""EntityRecord: what the entity index and linker need to know about one KG node."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EntityRecord:
    """One linkable KG entity.

    uri: the node's URI as a string; label: its preferred label; aliases: alternative names
    (skos:altLabel, tickers, cashtags, synonyms); type: the rdf:type URI as a string;
    xrefs: cross-reference ids as ``PREFIX:ID`` strings (may be empty).
    """

    uri: str
    label: str
    aliases: tuple[str, ...] = ()
    type: str = ""
    xrefs: tuple[str, ...] = field(default=())

    def names(self) -> tuple[str, ...]:
        """The label followed by the aliases, without duplicates."""
        return tuple(dict.fromkeys((self.label, *self.aliases)))

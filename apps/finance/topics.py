"""News topics of the finance monitor: the topic head's labels, their groups, and name resolution.

A ``TopicCatalog`` maps each topic name (the topic head's label, e.g. "Legal | Regulation") to its KG
concept and its group (macro, company-specific, markets, general). It is read from the finance KG
(``kgf:Topic`` concepts, ``skos:prefLabel``, ``skos:broader`` a ``kgf:TopicGroup``); a graph without
topics (an old or a hand-made one) falls back to the builder's TOPIC_GROUPS, so roll-ups still work.
Topic names match case-insensitively; a topic the catalog does not know (a model trained on other
labels) has no group and only appears at the topic levels, not the topic-group one.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kgfusion.core.errors import ConfigError

TOPIC_HEAD = "topic"  # the topic head's name in a multi-head bundle (apps/finance/train.py TOPIC_HEAD)
SENTIMENT_HEAD = "sentiment"  # the sentiment head's (train.py SENTIMENT_HEAD)
TOPIC_DETAIL = "topic head: "  # evidence detail prefix: "topic head: Earnings 0.93"


@dataclass(frozen=True)
class Topic:
    label: str
    uri: str
    group: str | None  # group label (e.g. "macro"), None when unknown
    group_uri: str | None


class TopicCatalog:
    """Topics by name with their groups (see the module docstring)."""

    def __init__(self, topics: Iterable[Topic]) -> None:
        self.topics: dict[str, Topic] = {t.label: t for t in topics}
        self._by_lower = {t.lower(): t for t in self.topics}

    @classmethod
    def default(cls) -> TopicCatalog:
        """The 20 Twitter Financial News topics in the groups of knowledge/builders/finance.py."""
        from kgfusion.knowledge.builders.finance import TOPIC_GROUPS, topic_group_uri, topic_uri

        return cls(Topic(t, str(topic_uri(t)), g, str(topic_group_uri(g)))
                   for g, topics in TOPIC_GROUPS.items() for t in topics)

    @classmethod
    def from_graph(cls, graph) -> TopicCatalog:
        """Topics of a KnowledgeGraph (``kgf:Topic``); the default catalog when the graph has none."""
        from rdflib.namespace import RDF, SKOS

        if graph is None:
            return cls.default()
        g = graph.graph
        topic_t, group_t = graph.expand("kgf:Topic"), graph.expand("kgf:TopicGroup")
        out = []
        for uri in sorted(graph.entities(topic_t)):
            label = _pref_label(g, uri, SKOS) or graph.label(uri)
            group_uri = next((b for b in sorted(g.objects(uri, SKOS.broader)) if (b, RDF.type, group_t) in g), None)
            group = (_pref_label(g, group_uri, SKOS) or graph.label(group_uri)) if group_uri is not None else None
            out.append(Topic(label, str(uri), group, str(group_uri) if group_uri is not None else None))
        return cls(out) if out else cls.default()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_lower

    def __len__(self) -> int:
        return len(self.topics)

    @property
    def labels(self) -> list[str]:
        return list(self.topics)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(t.group for t in self.topics.values() if t.group))

    def group_of(self, label: str | None) -> str | None:
        t = self.topics.get(label) if label else None
        return t.group if t else None

    def with_labels(self, labels: Iterable[str]) -> TopicCatalog:
        """This catalog plus topics it does not know (e.g. a model's own labels), those without a group."""
        extra = [Topic(lab, f"topic:{lab}", None, None) for lab in labels if lab and lab not in self.topics]
        return TopicCatalog([*self.topics.values(), *extra]) if extra else self

    def uri_of(self, label: str) -> str:
        t = self.topics.get(label)
        return t.uri if t else f"topic:{label}"

    def group_uri_of(self, group: str) -> str:
        return next((t.group_uri for t in self.topics.values() if t.group == group and t.group_uri), f"topic-group:{group}")

    def resolve(self, name: str) -> tuple[str, list[str]]:
        """("topic" | "group", the topic labels it stands for) for a topic name or ``group:<name>`` (any case;
        a bare group name works too unless a topic has that name, e.g. "Macro" the topic, "group:macro" the group).

        ConfigError naming the allowed topics and groups for an unknown name."""
        key = " ".join((name or "").split()).lower()
        groups = {g.lower(): g for g in self.groups}
        if key.startswith("group:"):
            key = key[len("group:"):].strip()
            if key in groups:
                return "group", [t.label for t in self.topics.values() if t.group == groups[key]]
        elif key in self._by_lower:
            return "topic", [self._by_lower[key]]
        elif key in groups:
            return "group", [t.label for t in self.topics.values() if t.group == groups[key]]
        raise ConfigError(f"unknown topic {name!r}; allowed: {self.allowed_text()}")

    def allowed_text(self) -> str:
        return (f"{', '.join(sorted(self.topics))}; or a topic group as "
                f"{', '.join('group:' + g for g in self.groups)}")


def _pref_label(g, uri, skos) -> str | None:
    labels = sorted(str(o) for o in g.objects(uri, skos.prefLabel))
    return labels[0] if labels else None


def predictor_topics(predictor) -> list[str] | None:
    """The topic head's labels of a predictor, or None for a model without a topic head."""
    heads = getattr(predictor, "heads", None)
    if isinstance(heads, dict) and TOPIC_HEAD in heads:
        return list(heads[TOPIC_HEAD])
    return None

"""Applying the recommend app's business rules to scored items: exclude -> boost -> freshness -> sort ->
cap -> top k, each change recorded as Evidence on the item."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kgfusion.apps.recommend.rule_kinds import BusinessRule
from kgfusion.knowledge.fusion import Evidence
from kgfusion.knowledge.rules import RuleBase


@dataclass(frozen=True)
class RankedItem:
    """An item after business rules: its final score and the rules that changed it."""

    item: Mapping[str, Any]
    score: float
    evidence: tuple[Evidence, ...] = ()


def _scale(score: float, factor: float) -> float:
    # Multiplying a negative score by a boost > 1 would bury it; divide instead so boosts always help.
    return score * factor if score >= 0 else score / factor


def apply_business_rules(
    scored: Iterable[tuple[Mapping[str, Any], float]],
    rules: RuleBase | Sequence[BusinessRule],
    *,
    now: float | None = None,
    k: int | None = None,
) -> list[RankedItem]:
    """Exclude, boost, freshness, sort by score (stable), then cap per group and cut to ``k``.

    ``now`` is the reference for freshness ages (default: the largest value of the rule's time field
    among the items, so results do not depend on the clock).
    """
    rules = rules.by_kind(BusinessRule) if isinstance(rules, RuleBase) else tuple(rules)
    items = [RankedItem(dict(item), float(score)) for item, score in scored]
    for rule in (r for r in rules if r.action == "exclude"):
        items = [it for it in items if not rule.matches(it.item)]
    for rule in (r for r in rules if r.action == "boost"):
        items = [
            RankedItem(it.item, _scale(it.score, rule.amount),
                       (*it.evidence, Evidence("rule", rule.id, f"boost x{rule.amount:g}", weight=rule.amount)))
            if rule.matches(it.item) else it
            for it in items
        ]
    for rule in (r for r in rules if r.action == "freshness"):
        values = [it.item.get(rule.time_field) for it in items]
        numeric = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        ref = now if now is not None else (max(numeric) if numeric else None)
        out = []
        for it, v in zip(items, values, strict=True):
            if ref is None or not isinstance(v, (int, float)) or isinstance(v, bool) or not rule.matches(it.item):
                out.append(it)
                continue
            age = max(0.0, ref - float(v))
            factor = 1.0 + rule.amount * 0.5 ** (age / rule.half_life)
            out.append(RankedItem(it.item, _scale(it.score, factor), (*it.evidence, Evidence(
                "rule", rule.id, f"freshness x{factor:.3f} ({rule.time_field}={v:g}, {age:g} older than {ref:g}, "
                f"the newest {rule.time_field} among the candidates)", weight=factor))))
        items = out
    items = sorted(items, key=lambda it: -it.score)  # stable: ties keep input order
    for rule in (r for r in rules if r.action == "cap"):
        counts: dict[Any, int] = {}
        kept = []
        for it in items:
            if not rule.matches(it.item):
                kept.append(it)
                continue
            group = it.item.get(rule.group_by)
            group = tuple(group) if isinstance(group, list) else group
            counts[group] = counts.get(group, 0) + 1
            if counts[group] <= rule.max_per_group:
                kept.append(it)
        items = kept
    return items[:k] if k is not None else items

"""Rule loader properties: any document gives a RuleBase or a RuleError naming the file — never a
KeyError/TypeError/AttributeError — and valid rules survive a dump/load round trip."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# The fixtures use the apps' kinds too (ambiguous_ticker, business): register them before loading.
from kgfusion.apps.finance import rule_kinds as _finance_kinds  # noqa: F401
from kgfusion.apps.recommend import rule_kinds as _recommend_kinds  # noqa: F401
from kgfusion.core.errors import KgfusionError
from kgfusion.knowledge.rules import RULE_CLASSES, RuleBase, RuleError, load_rules, rule_to_dict
from tests.property.strategies import examples, garbage

SETTINGS = settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

REPO = Path(__file__).resolve().parents[2]
# Every valid rule the project ships or tests with: seeds for mutation.
SEEDS: list[dict] = [rule_to_dict(r) for r in load_rules(REPO / "tests" / "data" / "rules" / "valid")]

FIELD_NAMES = sorted({"id", "kind", "replace", "note", "term", "weight", "regex", "effect", "label", "window", "scope",
                      "override", "confidence", "category", "direction", "literal", "tokens", "pattern", "max_scope",
                      "allowed_types", "source", "headers", "attributes", "action", "penalty", "where", "amount",
                      "max_per_group", "group_by", "time_field", "half_life", "ticker", "company", "requires",
                      "LOWER", "OP", "IN", "lt", "in", "eq", "rules", "version", "disable", "description"})
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 30), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.sampled_from(list(RULE_CLASSES) + ["(", "[a-", "FORWARD", "NEGATED_EXISTENCE",
                                                                                "score", "exclude", "ON", "x.y"]))
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=6), st.integers(-2, 2), st.booleans())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


@st.composite
def mutated_rule(draw) -> dict:
    """A shipped rule with some fields replaced, dropped or added."""
    rule = dict(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["set", "drop", "add"]))
        if op == "drop" and rule:
            rule.pop(draw(st.sampled_from(sorted(rule))))
        elif op == "set" and rule:
            rule[draw(st.sampled_from(sorted(rule)))] = draw(values)
        else:
            rule[draw(st.sampled_from(FIELD_NAMES))] = draw(values)
    return rule


top_levels = st.one_of(
    values,
    st.fixed_dictionaries({"rules": st.lists(mutated_rule(), min_size=1, max_size=4)},
                          optional={"kind": st.sampled_from([*RULE_CLASSES, "nope", 3, None]),
                                    "version": st.sampled_from([1, 2, "1", None]),
                                    "disable": st.one_of(st.lists(st.sampled_from([s["id"] for s in SEEDS]), max_size=2),
                                                         values)}),
)


def _load(path: Path) -> None:
    try:
        rb = load_rules(path)
    except RuleError as exc:
        assert str(path) in str(exc), f"error does not name the file: {exc}"
        assert "Fix:" in str(exc)
        return
    assert isinstance(rb, RuleBase) and len(rb) >= 1


@SETTINGS
@given(doc=top_levels, as_json=st.booleans())
@example(doc={"rules": [{"id": "a", "kind": "business", "action": "exclude", "where": {"x": {"lt": None}}}]},
         as_json=False)
@example(doc={"rules": [{"id": "a", "kind": "lexicon", "term": "x", "weight": float("nan")}]}, as_json=False)
def test_any_document_loads_or_names_the_file(doc, as_json, tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / ("r.json" if as_json else "r.yaml")
    try:
        text = json.dumps(doc) if as_json else yaml.safe_dump(doc, allow_unicode=True)
    except (TypeError, ValueError):
        return  # not representable in that format (e.g. non-string JSON keys are fine, NaN is not JSON)
    path.write_text(text, encoding="utf-8")
    _load(path)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=garbage, suffix=st.sampled_from([".yaml", ".json", ".yml"]))
@example(blob=b"rules: [!!python/object/apply:os.system [echo pwned]]", suffix=".yaml")  # safe_load refuses tags
@example(blob=b"\xef\xbb\xbfkind: lexicon\nrules: [{id: a, term: x, weight: 1}]", suffix=".yaml")
def test_garbage_rule_files_raise_rule_errors(blob, suffix, tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / f"g{suffix}"
    path.write_bytes(blob)
    try:
        load_rules(path)
    except RuleError as exc:
        assert str(path) in str(exc)
    except KgfusionError as exc:  # pragma: no cover - only RuleError is expected from the loader
        raise AssertionError(f"expected RuleError, got {type(exc).__name__}: {exc}") from exc


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picked=st.lists(st.sampled_from(range(len(SEEDS))), min_size=1, max_size=8, unique=True),
       as_json=st.booleans())
def test_valid_rules_round_trip(picked, as_json, tmp_path_factory):
    rules = [SEEDS[i] for i in picked]
    path = tmp_path_factory.mktemp("rules") / ("r.json" if as_json else "r.yaml")
    doc = {"version": 1, "rules": rules}
    path.write_text(json.dumps(doc) if as_json else yaml.safe_dump(doc), encoding="utf-8")
    rb = load_rules(path)
    assert [rule_to_dict(r) for r in rb] == rules

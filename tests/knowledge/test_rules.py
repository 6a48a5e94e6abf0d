"""Rule loading: every kind, strict errors that name file/rule/fix, merging, packaged defaults."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgfusion.apps.finance.rule_kinds import AmbiguousTicker, ambiguous_tickers
from kgfusion.apps.recommend.rule_kinds import BusinessRule
from kgfusion.core.errors import KgfusionError
from kgfusion.knowledge.rules import (
    ContextRule,
    LexiconTerm,
    PatternRule,
    PhraseMatcher,
    RuleBase,
    RuleError,
    SectionRule,
    TypeConstraint,
    build_context_rules,
    load_domain_rules,
    load_rules,
    rule_from_dict,
    rule_to_dict,
    select_longest,
    tokenize,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "rules"
REPO = Path(__file__).resolve().parents[2]


def test_every_kind_loads_from_fixtures():
    rb = load_rules(DATA / "valid")
    assert rb.counts() == {"ambiguous_ticker": 2, "business": 6, "context": 7, "lexicon": 7, "pattern": 5,
                           "section": 3, "type_constraint": 2}
    for cls in (LexiconTerm, PatternRule, ContextRule, SectionRule, TypeConstraint, BusinessRule, AmbiguousTicker):
        assert rb.by_kind(cls), cls
        assert all(isinstance(r, cls) for r in rb.by_kind(cls))
    assert rb.origin("t.json.gain").endswith("mixed.json")
    ctx = {r.id: r for r in rb.by_kind(ContextRule)}
    assert ctx["t.ctx.denies"].direction == "FORWARD"  # lower-case choice normalised
    assert set(ctx["t.ctx.denies"].phrases) == {"deny", "denies", "denied"}
    assert ctx["t.ctx.history"].allowed_types == ("PROBLEM",)
    assert rb.get("t.type.disease").label == "DISEASE"
    pat = rb.get("t.pat.not")
    assert pat.compiled.search("did NOT grow")


def test_rules_are_frozen_and_round_trip():
    rb = load_rules(DATA / "valid")
    rule = rb.get("t.biz.no_horror")
    with pytest.raises(AttributeError):
        rule.action = "boost"  # type: ignore[misc]
    for r in rb:
        assert rule_from_dict(rule_to_dict(r)) == r


BAD_CASES = [
    ("empty.yaml", None, "empty"),
    ("malformed.yaml", None, "malformed YAML at line"),
    ("malformed.json", None, "malformed JSON at line 1"),
    ("unknown_key.yaml", "rules[1] (id 't.bad.unknown')", "unknown key(s) ['wieght']"),
    ("missing_field.yaml", "rules[0] (id 't.bad.missing')", "missing field(s) ['weight']"),
    ("wrong_type.yaml", "rules[0] (id 't.bad.type')", "must be a number"),
    ("out_of_range.yaml", "rules[0] (id 't.bad.range')", "out of range"),
    ("bad_regex.yaml", "rules[0] (id 't.bad.regex')", "bad regular expression"),
    ("yaml_bool.yaml", "rules[0] (id 't.bad.on')", "quote the value"),
    ("unknown_kind.yaml", None, "unknown kind 'lexicons'"),
    ("top_level_list.yaml", None, "top level must be a mapping"),
    ("empty_rules.yaml", None, "non-empty list"),
    ("dup_same_file.yaml", "rules[1] (id 't.bad.dup')", "duplicate rule id"),
    ("context_two_triggers.yaml", "rules[0] (id 't.bad.ctx')", "exactly one of"),
    ("context_bad_category.yaml", "rules[0] (id 't.bad.cat')", "not one of NEGATED_EXISTENCE"),
    ("exclude_without_where.yaml", "rules[0] (id 't.bad.exclude')", "without 'where'"),
    ("cap_with_amount.yaml", "rules[0] (id 't.bad.cap')", "'amount' is not used by action 'cap'"),
    ("bad_operator.yaml", "rules[0] (id 't.bad.op')", "unknown operator 'before'"),
]


@pytest.mark.parametrize(("name", "where", "problem"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_malformed_files_name_file_rule_and_fix(name, where, problem):
    path = DATA / "bad" / name
    with pytest.raises(RuleError) as info:
        load_rules(path)
    msg = str(info.value)
    assert isinstance(info.value, KgfusionError)
    assert str(path) in msg
    assert problem in msg
    assert "Fix: " in msg
    if where:
        assert where in msg


def test_duplicate_ids_across_files_name_both_files():
    with pytest.raises(RuleError) as info:
        load_rules([DATA / "dup" / "a.yaml", DATA / "dup" / "b.yaml"])
    msg = str(info.value)
    assert "t.dup.loss" in msg and "a.yaml" in msg and "b.yaml" in msg


def test_rulebase_merge_duplicate_names_both_origins():
    a = load_rules(DATA / "dup" / "a.yaml")
    b = load_rules(DATA / "dup" / "b.yaml")
    with pytest.raises(RuleError, match=r"a\.yaml.*b\.yaml"):
        a.merge(b)
    merged = a.merge(load_rules(DATA / "valid" / "lexicon.yaml"))
    assert len(merged) == 7 and merged.origin("t.lex.loss").endswith("lexicon.yaml")


def test_user_file_replaces_and_disables_defaults():
    base = load_rules(DATA / "valid")
    rb = load_rules(DATA / "replace_user.yaml", base=base)
    assert "t.lex.growth" not in rb
    assert rb.get("t.lex.loss").weight == pytest.approx(-0.2)
    assert rb.origin("t.lex.loss").endswith("replace_user.yaml")
    assert "t.user.surge" in rb and len(rb) == len(base) + 1 - 1


def test_missing_path_and_empty_dir(tmp_path):
    with pytest.raises(RuleError, match="no such rule file"):
        load_rules(tmp_path / "nope.yaml")
    with pytest.raises(RuleError, match="no .yaml"):
        load_rules(tmp_path)


def test_direct_construction_is_validated():
    with pytest.raises(RuleError, match="weight 2.0 is out of range"):
        LexiconTerm(id="x.y", term="loss", weight=2.0)
    with pytest.raises(RuleError, match="invalid id"):
        LexiconTerm(id="has space", term="loss", weight=0.1)
    with pytest.raises(RuleError, match="category TERMINATE needs direction TERMINATE"):
        ContextRule(id="c", category="TERMINATE", direction="FORWARD", literal="but")
    with pytest.raises(RuleError, match="needs a 'label'"):
        PatternRule(id="p", regex="x", effect="score", weight=0.1, override=True)
    with pytest.raises(RuleError, match="named groups"):
        ContextRule(id="c", category="FAMILY", direction="FORWARD", pattern="(?P<x>mother)")
    with pytest.raises(RuleError, match="duplicate rule id"):
        RuleBase([LexiconTerm(id="a", term="x", weight=0.1), LexiconTerm(id="a", term="y", weight=0.1)])


def test_business_conditions():
    rule = BusinessRule(id="b", action="exclude",
                        where=BusinessRule.parse_where({"genres": {"contains": "horror"}, "year": {"lt": 1990}}))
    assert rule.matches({"genres": ["Horror", "Comedy"], "year": 1985})
    assert not rule.matches({"genres": ["Horror"], "year": 1995})
    assert not rule.matches({"genres": ["Drama"], "year": 1985})
    assert not rule.matches({"year": 1985})  # missing field never matches
    ids = BusinessRule(id="c", action="exclude", where=BusinessRule.parse_where({"item_id": {"in": [1, 2]}}))
    assert ids.matches({"item_id": 2}) and not ids.matches({"item_id": 3})
    assert not BusinessRule(id="d", action="exclude", where=BusinessRule.parse_where({"item_id": {"in": []}})).matches(
        {"item_id": 1})


def test_tokenize_and_phrase_matcher():
    toks = tokenize("He didn't see Dr. Smith's note.")
    assert [t for _, _, t in toks] == ["he", "did", "n't", "see", "dr", ".", "smith", "'", "s", "note", "."]
    text = "No increase in NO  fever"
    matcher = PhraseMatcher([("no", "a"), ("no increase", "b"), ("no fever", "c")])
    hits = matcher.find_all(tokenize(text))
    assert {(text[s:e], p) for s, e, p in hits} == {("No", "a"), ("No increase", "b"), ("NO", "a"), ("NO  fever", "c")}
    assert [p for _, _, p in select_longest(hits)] == ["b", "c"]


def test_packaged_rules_load_and_ambiguous_tickers():
    fin = load_domain_rules("finance")
    assert len(fin.by_kind(LexiconTerm)) >= 300
    assert all(-1 <= t.weight <= 1 for t in fin.by_kind(LexiconTerm))
    tickers = ambiguous_tickers(fin)
    assert {"ALL", "IT", "ON", "KEY", "A"} <= set(tickers)
    assert tickers["ON"].company.startswith("ON Semi")
    med = load_domain_rules("medical")
    cats = {r.category for r in med.by_kind(ContextRule)}
    assert cats == {"NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "FAMILY", "HYPOTHETICAL", "TERMINATE",
                    "PSEUDO"}
    assert {s.category for s in med.by_kind(SectionRule)} >= {"family_history", "past_medical_history"}
    rec = load_domain_rules("recommend", DATA / "valid" / "business.yaml")
    assert len(rec.by_kind(BusinessRule)) == 10
    with pytest.raises(RuleError, match="no packaged rules"):
        load_domain_rules("astrology")


def test_context_yaml_is_reproducible_from_shipped_sources():
    """data/rules/medical/context.yaml is exactly what the converter builds from data/datasets."""
    built = build_context_rules(REPO / "data" / "datasets" / "context_rules")
    shipped = yaml.safe_load((REPO / "data" / "rules" / "medical" / "context.yaml").read_text(encoding="utf-8"))
    assert shipped["rules"] == built
    header = (REPO / "data" / "rules" / "medical" / "context.yaml").read_text(encoding="utf-8")[:2000]
    assert "MIT License" in header and "Apache-2.0" in header
    sources = {r["source"] for r in built}
    assert sources == {"medspacy", "negex", "pyConTextNLP", "kgfusion"}
    assert sum(r["source"] == "medspacy" for r in built) == 102


_keys = st.sampled_from(["id", "term", "weight", "kind", "regex", "effect", "category", "direction", "literal",
                         "pattern", "tokens", "action", "where", "bogus", "headers", "ticker", "replace"])
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["x.y", "lexicon", "context", "FORWARD", "negate", "(", "exclude"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | _keys, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(raw=st.dictionaries(_keys, _values, max_size=7), kind=st.sampled_from([None, "lexicon", "context", "business"]))
def test_rule_from_dict_only_raises_rule_error(raw, kind):
    try:
        rule = rule_from_dict(raw, kind)
    except RuleError as exc:
        assert "Fix:" in str(exc)
    else:
        assert rule_from_dict(rule_to_dict(rule)) == rule


_FUZZ_DIR: list[Path] = []


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.one_of(
    st.dictionaries(st.sampled_from(["version", "kind", "rules", "disable", "description", "other"]),
                    st.one_of(_values, st.lists(st.dictionaries(_keys, _values, max_size=6), max_size=3)),
                    max_size=4),
    _values,
))
def test_loader_only_raises_rule_error_on_random_documents(tmp_path_factory, doc):
    if not _FUZZ_DIR:
        _FUZZ_DIR.append(tmp_path_factory.mktemp("fuzz"))
    path = _FUZZ_DIR[0] / "rules.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    try:
        rb = load_rules(path)
    except RuleError as exc:
        assert str(path) in str(exc) and "Fix:" in str(exc)
    else:
        assert isinstance(rb, RuleBase)


def test_command_line_check_and_convert(tmp_path, capsys):
    from kgfusion.knowledge.rules import main

    assert main(["check", str(DATA / "valid" / "lexicon.yaml")]) == 0
    assert '"lexicon": 6' in capsys.readouterr().out
    assert main(["check", str(DATA / "bad" / "out_of_range.yaml")]) == 1
    assert "t.bad.range" in capsys.readouterr().out
    out = tmp_path / "context.yaml"
    assert main(["convert-context", str(REPO / "data" / "datasets" / "context_rules"), str(out)]) == 0
    assert out.read_bytes() == (REPO / "data" / "rules" / "medical" / "context.yaml").read_bytes()


def test_binary_and_non_utf8_rule_files_say_what_they_are_with_the_offset(tmp_path):
    from kgfusion.knowledge.rules import RuleError, load_rules

    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"kind: lexicon\nrules: []\n# caf\xe9\n")
    with pytest.raises(RuleError) as info:
        load_rules(latin)
    assert str(info.value) == f"{latin}: not UTF-8 text (invalid byte at offset 29). Fix: save the file as UTF-8"
    image = tmp_path / "rules.yaml"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00IHDR")
    with pytest.raises(RuleError) as info:
        load_rules(image)
    assert str(info.value) == f"{image}: not a text file (a PNG image). Fix: pass a UTF-8 YAML or JSON rule file"
    assert "IHDR" not in str(info.value)

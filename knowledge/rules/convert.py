"""Converting the shipped ConText lists (medspaCy, NegEx, pyConTextNLP) into a kgfusion rule file.

``python -m kgfusion.knowledge.rules convert-context data/datasets/context_rules data/rules/medical/context.yaml``
rebuilds data/rules/medical/context.yaml byte for byte; ``... check [--kinds MODULE] PATH...`` validates
rule files and prints the number of rules per kind.
"""
from __future__ import annotations

import argparse
import csv
import importlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kgfusion.core.fileio import atomic_write_text
from kgfusion.knowledge.rules.codec import rule_from_dict
from kgfusion.knowledge.rules.errors import RuleError
from kgfusion.knowledge.rules.loading import load_rules
from kgfusion.knowledge.rules.matching import token_key

_PYCONTEXT_CATEGORY = {
    "DEFINITE_NEGATED_EXISTENCE": "NEGATED_EXISTENCE",
    "PROBABLE_NEGATED_EXISTENCE": "NEGATED_EXISTENCE",
    "AMBIVALENT_EXISTENCE": "POSSIBLE_EXISTENCE",
    "PROBABLE_EXISTENCE": "POSSIBLE_EXISTENCE",
    "HISTORICAL": "HISTORICAL",
    "HYPOTHETICAL": "HYPOTHETICAL",
    "FUTURE": "HYPOTHETICAL",
    "PSEUDONEG": "PSEUDO",
    "CONJ": "TERMINATE",
}
# pyConTextNLP's HISTORICAL list is radiology-oriented ("stable", "increase"); only these mean "in the past".
_PYCONTEXT_HISTORICAL_KEEP = {
    "history of", "clinical history", "known", "documented", "remote", "previous", "prior", "previously described",
    "sequelae of", "on previous exam",
}
# pyConTextNLP triggers too ambiguous in clinical notes ("chest pain associated with dyspnea").
_PYCONTEXT_DROP = {
    "associated with", "exhibit", "signs of", "appear", "clear", "nothing", "indication", "mimicking", "simulating",
    "favor", "seen best", "construed as", "every indication", "convincing", "versus", "which", "involving",
    "no XYZ to suggest",  # its regex spans whole paragraphs
}
_NEGEX_TAGS = {
    "PREN": ("NEGATED_EXISTENCE", "FORWARD"), "POST": ("NEGATED_EXISTENCE", "BACKWARD"),
    "PREP": ("POSSIBLE_EXISTENCE", "FORWARD"), "POSP": ("POSSIBLE_EXISTENCE", "BACKWARD"),
    "PSEU": ("PSEUDO", "PSEUDO"), "CONJ": ("TERMINATE", "TERMINATE"),
}
# Written for kgfusion (Apache-2.0, like the project): gaps the upstream lists leave for clinical notes.
_RELATIVES = ["mother", "father", "sister", "brother", "parent", "parents", "sibling", "siblings", "grandmother",
              "grandfather", "aunt", "uncle", "son", "daughter", "cousin"]
KGFUSION_CONTEXT_RULES: tuple[dict[str, Any], ...] = (
    {"id": "ctx.kgf.status_post", "category": "HISTORICAL", "direction": "FORWARD",
     "tokens": [{"LOWER": {"IN": ["s/p", "status"]}}, {"LOWER": "post", "OP": "?"}]},
    {"id": "ctx.kgf.previously_diagnosed", "category": "HISTORICAL", "direction": "FORWARD",
     "literal": "previously diagnosed with"},
    {"id": "ctx.kgf.past_history_of", "category": "HISTORICAL", "direction": "FORWARD", "literal": "past history of"},
    {"id": "ctx.kgf.years_ago", "category": "HISTORICAL", "direction": "BACKWARD",
     "pattern": r"(?:\d+|a\s+few|several|many|two|three|four|five)\s+(?:years?|months?)\s+ago(?!\w)"},
    {"id": "ctx.kgf.in_the_past", "category": "HISTORICAL", "direction": "BACKWARD", "literal": "in the past"},
    {"id": "ctx.kgf.in_relative", "category": "FAMILY", "direction": "BACKWARD", "max_scope": 8,
     "tokens": [{"LOWER": "in"}, {"LOWER": {"IN": ["his", "her", "their", "a", "the"]}},
                {"LOWER": {"IN": ["maternal", "paternal"]}, "OP": "?"}, {"LOWER": {"IN": _RELATIVES}}]},
    {"id": "ctx.kgf.family_history_of", "category": "FAMILY", "direction": "FORWARD", "literal": "family history of"},
    {"id": "ctx.kgf.fhx", "category": "FAMILY", "direction": "FORWARD", "literal": "fhx"},
    {"id": "ctx.kgf.return_if", "category": "HYPOTHETICAL", "direction": "FORWARD", "literal": "return if"},
    {"id": "ctx.kgf.in_case_of", "category": "HYPOTHETICAL", "direction": "FORWARD", "literal": "in case of"},
    {"id": "ctx.kgf.no_further", "category": "PSEUDO", "direction": "PSEUDO", "literal": "no further"},
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48] or "x"


def convert_medspacy_context(json_path: str | Path) -> list[dict[str, Any]]:
    """medspaCy ``context_rules.json`` -> rule dicts (kind context); token patterns are kept as ``tokens``."""
    doc = json.loads(Path(json_path).read_text(encoding="utf-8"))
    out = []
    for i, item in enumerate(doc["context_rules"]):
        category, direction = item["category"].upper(), item["direction"].upper()
        rule: dict[str, Any] = {"id": f"ctx.medspacy.{i:03d}.{_slug(item['literal'])}", "category": category,
                                "direction": direction}
        if item.get("pattern"):
            rule["tokens"] = item["pattern"]
            rule["note"] = f"medspaCy literal: {item['literal']}"
        else:
            rule["literal"] = item["literal"].strip()
        if item.get("max_scope"):
            rule["max_scope"] = int(item["max_scope"])
        if item.get("allowed_types"):
            rule["allowed_types"] = sorted(item["allowed_types"])
        rule["source"] = "medspacy"
        out.append(rule)
    return out


def convert_negex_triggers(txt_path: str | Path) -> list[dict[str, Any]]:
    """NegEx ``negex_triggers.txt`` ("phrase<TAB><TAB>[TAG]") -> rule dicts (kind context)."""
    out = []
    for line in Path(txt_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        phrase, _, tag = line.partition("\t\t")
        tag = tag.strip().strip("[]")
        if tag not in _NEGEX_TAGS:
            raise RuleError(f"unknown NegEx tag {tag!r} in line {line!r}", fix="use PREN POST PREP POSP PSEU CONJ",
                            path=txt_path)
        category, direction = _NEGEX_TAGS[tag]
        out.append({"id": f"ctx.negex.{tag.lower()}.{_slug(phrase)}", "category": category, "direction": direction,
                    "literal": phrase.strip(), "source": "negex"})
    return out


def convert_pycontext_kb(tsv_path: str | Path) -> list[dict[str, Any]]:
    """pyConTextNLP ``lexical_kb_*.tsv`` -> rule dicts for the categories kgfusion uses.

    Kept: negation, possibility, hypothetical/future, pseudo-negation, terminators and the historical
    items in ``_PYCONTEXT_HISTORICAL_KEEP``; dropped: DEFINITE_EXISTENCE, INDICATION, ACUTE (no attribute).
    """
    out = []
    with Path(tsv_path).open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            lex, typ = (row.get("Lex") or "").strip(), (row.get("Type") or "").strip()
            category = _PYCONTEXT_CATEGORY.get(typ)
            if category is None or not lex or lex.startswith("#") or lex in _PYCONTEXT_DROP:
                continue
            if typ == "HISTORICAL" and lex not in _PYCONTEXT_HISTORICAL_KEEP:
                continue
            direction = {"forward": "FORWARD", "backward": "BACKWARD", "backwards": "BACKWARD",
                         "bidirectional": "BIDIRECTIONAL", "terminate": "TERMINATE"}[row["Direction"].strip().lower()]
            if category in ("TERMINATE", "PSEUDO"):
                direction = category
            rule: dict[str, Any] = {"id": f"ctx.pycontext.{_slug(typ)}.{_slug(lex)}", "category": category,
                                    "direction": direction}
            regex = (row.get("Regex") or "").strip()
            if regex:
                rule["pattern"] = f"(?:{regex})(?!\\w)"
                rule["note"] = f"pyConTextNLP lex: {lex}"
            elif re.search(r"[()|\\\[]", lex):
                rule["pattern"] = f"\\b(?:{lex})(?!\\w)"
            else:
                rule["literal"] = lex
            rule["source"] = "pyConTextNLP"
            rule["_probe"] = lex  # the phrase used to spot duplicates in build_context_rules
            out.append(rule)
    return out


def build_context_rules(src_dir: str | Path) -> list[dict[str, Any]]:
    """All medical ConText rules: medspaCy first; NegEx, pyConTextNLP and kgfusion additions only where
    no earlier rule already matches the whole phrase (an earlier rule wins such a tie in ConText anyway)."""
    src = Path(src_dir)
    rules = convert_medspacy_context(src / "medspacy_context_rules_en.json")
    extra = [
        *convert_negex_triggers(src / "negex_triggers.txt"),
        *convert_pycontext_kb(src / "pyConTextNLP_lexical_kb_05042016.tsv"),
        *({**r, "source": "kgfusion"} for r in KGFUSION_CONTEXT_RULES),
    ]
    known: set[tuple[str, ...]] = set()
    regexes: list[re.Pattern[str]] = []

    def add(raw: dict[str, Any]) -> None:
        try:
            rule = rule_from_dict(raw, "context")
        except RuleError as exc:
            raise exc.located(src, None, raw.get("id")) from None
        known.update(token_key(p) for p in rule.phrases)
        if rule.compiled is not None:
            regexes.append(rule.compiled)

    for rule in rules:
        add(rule)
    ids = {r["id"] for r in rules}
    for rule in extra:
        probe = rule.pop("_probe", None) or rule.get("literal")
        if probe is not None and (token_key(probe) in known or any(rx.fullmatch(probe) for rx in regexes)):
            continue
        base_id, n = rule["id"], 2
        while rule["id"] in ids:
            rule = {**rule, "id": f"{base_id}_{n}"}
            n += 1
        ids.add(rule["id"])
        add(rule)
        rules.append(rule)
    return rules


CONTEXT_YAML_HEADER = """\
# ConText modifier rules for clinical notes (kind: context), GENERATED - do not edit by hand.
# Regenerate: python -m kgfusion.knowledge.rules convert-context data/datasets/context_rules data/rules/medical/context.yaml
# Sources (see data/datasets/context_rules/SOURCE.txt):
#   medspaCy resources/en/context_rules.json, MIT License, Copyright (c) 2020 medspacy
#     (token patterns translated to regexes; ids ctx.medspacy.*)
#   NegEx negex_triggers.txt, Apache-2.0, Copyright 2008 Imre Solti (ids ctx.negex.*)
#   (NegEx, pyConTextNLP and kgfusion rules are kept only when no earlier rule already matches the phrase)
#   pyConTextNLP KB/lexical_kb_05042016.tsv, Apache-2.0 as declared in its setup.py (ids ctx.pycontext.*;
#     categories mapped: DEFINITE/PROBABLE_NEGATED -> NEGATED_EXISTENCE, AMBIVALENT/PROBABLE_EXISTENCE ->
#     POSSIBLE_EXISTENCE, FUTURE -> HYPOTHETICAL, PSEUDONEG -> PSEUDO, CONJ -> TERMINATE; a curated subset of
#     HISTORICAL; DEFINITE_EXISTENCE, INDICATION, ACUTE dropped)
#   kgfusion additions (ids ctx.kgf.*), written for this project, Apache-2.0.
"""


def write_rules_yaml(path: str | Path, kind: str, rules: Sequence[Mapping[str, Any]], header: str = "") -> Path:
    """Write rule dicts as a rule file (atomic), after checking every rule loads."""
    for i, raw in enumerate(rules):
        try:
            rule_from_dict(raw, kind)
        except RuleError as exc:
            raise exc.located(path, i, raw.get("id") if isinstance(raw, Mapping) else None) from None
    body = yaml.safe_dump({"version": 1, "kind": kind, "rules": [dict(r) for r in rules]},
                          sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)
    return atomic_write_text(path, header + body)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kgfusion.knowledge.rules convert-context SRC_DIR OUT.yaml`` | ``check PATH...``."""
    parser = argparse.ArgumentParser(prog="python -m kgfusion.knowledge.rules")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert-context", help="convert the shipped ConText lists to a kgfusion rule file")
    conv.add_argument("src_dir")
    conv.add_argument("out")
    check = sub.add_parser("check", help="load rule files/directories and print counts per kind")
    check.add_argument("paths", nargs="+")
    # Application kinds register on import; this layer must not import an app itself.
    check.add_argument("--kinds", action="append", default=[], metavar="MODULE",
                       help="import MODULE first to register its rule kinds (e.g. kgfusion.apps.finance.rule_kinds)")
    args = parser.parse_args(argv)
    try:
        if args.command == "convert-context":
            rules = build_context_rules(args.src_dir)
            write_rules_yaml(args.out, "context", rules, CONTEXT_YAML_HEADER)
            print(f"wrote {len(rules)} context rules to {args.out}")
        else:
            for module in args.kinds:
                _import_kinds(module)
            print(json.dumps(load_rules(args.paths).counts(), sort_keys=True))
    except RuleError as exc:
        print(f"error: {exc}")
        return 1
    return 0


def _import_kinds(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise RuleError(f"cannot import rule kinds module '{module}' ({exc})",
                        fix="pass an importable module name, e.g. --kinds kgfusion.apps.finance.rule_kinds") from None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

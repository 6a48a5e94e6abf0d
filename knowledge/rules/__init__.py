"""Rule bases as data: typed, frozen rule objects loaded from YAML/JSON by one strict loader.

File format (YAML or JSON, one mapping per file)::

    version: 1                 # optional, must be 1
    kind: lexicon              # default kind of the rules below (a rule may set its own ``kind``)
    description: free text     # optional
    disable: [fin.lex.cheap]   # optional: drop rules loaded from earlier files (user overrides)
    rules:
      - id: fin.lex.profit_warning
        term: profit warning
        weight: -0.8

Generic kinds: ``lexicon`` (LexiconTerm), ``pattern`` (PatternRule), ``context`` (ContextRule),
``section`` (SectionRule), ``type_constraint`` (TypeConstraint). Applications add their own kinds with
``register_kind`` from their own package (the finance app's ``ambiguous_ticker``, the recommend app's
``business``); a file using a kind nobody registered raises RuleError naming it and the registered ones.
Ids are unique across a RuleBase; a later file may set ``replace: true`` on a rule to replace an earlier
rule with the same id on purpose. Unknown keys, missing fields, wrong types, out-of-range values, empty
and malformed files raise RuleError naming the file, the rule and the fix.

Packaged defaults live in ``data/rules/<domain>/`` (``load_domain_rules``). The medical ConText rules
are converted from the shipped medspaCy/NegEx/pyConTextNLP lists by
``python -m kgfusion.knowledge.rules convert-context data/datasets/context_rules data/rules/medical/context.yaml``.

Modules: ``errors`` (RuleError), ``base`` (Rule and helpers for kind authors), ``registry`` (kind names),
``kinds`` (generic kinds), ``codec`` (dict <-> rule), ``loading`` (RuleBase, files), ``matching``
(tokenizer, phrase matcher), ``convert`` (ConText converters and the command line).
"""
from __future__ import annotations

from kgfusion.knowledge.rules.base import Rule, check_range, coerce, compile_regex
from kgfusion.knowledge.rules.codec import rule_from_dict, rule_to_dict
from kgfusion.knowledge.rules.convert import (
    CONTEXT_YAML_HEADER,
    KGFUSION_CONTEXT_RULES,
    build_context_rules,
    convert_medspacy_context,
    convert_negex_triggers,
    convert_pycontext_kb,
    main,
    write_rules_yaml,
)
from kgfusion.knowledge.rules.errors import RuleError, fail
from kgfusion.knowledge.rules.kinds import (
    ATTRIBUTES,
    CATEGORY_ATTRIBUTE,
    CONTEXT_CATEGORIES,
    CONTEXT_DIRECTIONS,
    Attribute,
    Category,
    ContextRule,
    Direction,
    LexiconTerm,
    PatternEffect,
    PatternRule,
    SectionRule,
    TokenSpec,
    TypeConstraint,
)
from kgfusion.knowledge.rules.loading import (
    RULE_SUFFIXES,
    RuleBase,
    default_rules_dir,
    load_domain_rules,
    load_rules,
)
from kgfusion.knowledge.rules.matching import PhraseMatcher, select_longest, token_key, tokenize
from kgfusion.knowledge.rules.registry import (
    RULE_CLASSES,
    is_registered,
    kind_class,
    register_kind,
    registered_kinds,
)

__all__ = [
    "ATTRIBUTES",
    "CATEGORY_ATTRIBUTE",
    "CONTEXT_CATEGORIES",
    "CONTEXT_DIRECTIONS",
    "CONTEXT_YAML_HEADER",
    "KGFUSION_CONTEXT_RULES",
    "RULE_CLASSES",
    "RULE_SUFFIXES",
    "Attribute",
    "Category",
    "ContextRule",
    "Direction",
    "LexiconTerm",
    "PatternEffect",
    "PatternRule",
    "PhraseMatcher",
    "Rule",
    "RuleBase",
    "RuleError",
    "SectionRule",
    "TokenSpec",
    "TypeConstraint",
    "build_context_rules",
    "check_range",
    "coerce",
    "compile_regex",
    "convert_medspacy_context",
    "convert_negex_triggers",
    "convert_pycontext_kb",
    "default_rules_dir",
    "fail",
    "is_registered",
    "kind_class",
    "load_domain_rules",
    "load_rules",
    "main",
    "register_kind",
    "registered_kinds",
    "rule_from_dict",
    "rule_to_dict",
    "select_longest",
    "token_key",
    "tokenize",
    "write_rules_yaml",
]

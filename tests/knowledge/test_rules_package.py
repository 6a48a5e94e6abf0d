"""The rules package: byte-identical ConText conversion, the kind registry, and the layering rule that the
knowledge layer imports no application (apps register their own kinds)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kgfusion.knowledge.rules import (
    CONTEXT_YAML_HEADER,
    Rule,
    RuleError,
    build_context_rules,
    fail,
    kind_class,
    load_domain_rules,
    load_rules,
    register_kind,
    registered_kinds,
    rule_from_dict,
    rule_to_dict,
    write_rules_yaml,
)

REPO = Path(__file__).resolve().parents[2]
CONTEXT_SRC = REPO / "data" / "datasets" / "context_rules"
CONTEXT_YAML = REPO / "data" / "rules" / "medical" / "context.yaml"
GENERIC = ("lexicon", "pattern", "context", "section", "type_constraint")


def _need_context_sources() -> None:
    needed = ("medspacy_context_rules_en.json", "negex_triggers.txt", "pyConTextNLP_lexical_kb_05042016.tsv")
    missing = [n for n in needed if not (CONTEXT_SRC / n).is_file()]
    if missing:
        pytest.skip(f"ConText source lists not in this checkout: {missing}")


def test_context_yaml_regenerates_byte_identical(tmp_path):
    _need_context_sources()
    out = write_rules_yaml(tmp_path / "context.yaml", "context", build_context_rules(CONTEXT_SRC), CONTEXT_YAML_HEADER)
    assert out.read_bytes() == CONTEXT_YAML.read_bytes()


def _run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_documented_regenerate_command_is_byte_identical(tmp_path):
    """The command in context.yaml's header (``python -m kgfusion.knowledge.rules convert-context ...``)."""
    _need_context_sources()
    out = tmp_path / "context.yaml"
    done = _run_module("-m", "kgfusion.knowledge.rules", "convert-context", str(CONTEXT_SRC), str(out), cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes() == CONTEXT_YAML.read_bytes()


def _kgfusion_app_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            # A relative import from knowledge/ cannot reach apps/ (they are sibling packages).
            names = [node.module or ""] if node.level == 0 else []
            if node.module == "kgfusion":
                names = [f"kgfusion.{a.name}" for a in node.names]
        else:
            continue
        found += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names
                  if n == "kgfusion.apps" or n.startswith("kgfusion.apps.")]
    return found


def test_knowledge_layer_imports_no_app():
    files = sorted((REPO / "knowledge").rglob("*.py"))
    assert REPO / "knowledge" / "rules" / "registry.py" in files
    offenders = [hit for f in files for hit in _kgfusion_app_imports(f)]
    assert offenders == []


def test_importing_the_rules_package_registers_only_generic_kinds():
    code = ("import sys, kgfusion.knowledge.rules as r; "
            "print(','.join(r.registered_kinds())); print(any(m.startswith('kgfusion.apps') for m in sys.modules))")
    done = _run_module("-c", code, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [",".join(GENERIC), "False"]


@register_kind("test_threshold")
@dataclass(frozen=True, kw_only=True)
class Threshold(Rule):
    """A made-up kind for these tests: a named limit in [0, 100]."""

    name: str
    limit: float
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.limit <= 100:
            fail(self.id, f"limit {self.limit} is out of range", "use a limit in [0, 100]")


def test_custom_kind_registers_and_loads_from_a_file(tmp_path):
    assert Threshold.KIND == "test_threshold" and "test_threshold" in registered_kinds()
    assert kind_class("test_threshold") is Threshold
    path = tmp_path / "limits.yaml"
    path.write_text("version: 1\nkind: test_threshold\nrules:\n"
                    "  - {id: t.limit.cpu, name: cpu, limit: 90, tags: [ops]}\n"
                    "  - {id: t.limit.mem, kind: test_threshold, name: memory, limit: 75.5}\n", encoding="utf-8")
    rb = load_rules(path)
    assert rb.counts() == {"test_threshold": 2}
    cpu = rb.get("t.limit.cpu")
    assert isinstance(cpu, Threshold) and cpu.limit == 90.0 and cpu.tags == ("ops",)
    assert rule_from_dict(rule_to_dict(cpu)) == cpu
    path.write_text("kind: test_threshold\nrules:\n  - {id: t.limit.bad, name: x, limit: 101}\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"rules\[0\] \(id 't.limit.bad'\): limit 101.0 is out of range"):
        load_rules(path)


def test_registering_is_idempotent_and_refuses_clashes():
    assert register_kind("test_threshold", Threshold) is Threshold  # again: a no-op

    @dataclass(frozen=True, kw_only=True)
    class Other(Rule):
        pass

    with pytest.raises(RuleError, match="already registered"):
        register_kind("test_threshold", Other)
    with pytest.raises(RuleError, match="has KIND 'test_threshold'"):
        register_kind("test_other_name", Threshold)
    with pytest.raises(RuleError, match="invalid rule kind name"):
        register_kind("Bad Name", Other)
    with pytest.raises(RuleError, match="derived from Rule"):
        register_kind("test_not_a_rule", dict)  # type: ignore[arg-type]
    assert "test_other_name" not in registered_kinds() and "test_not_a_rule" not in registered_kinds()


def test_unknown_kind_names_the_kind_and_the_registered_ones(tmp_path):
    path = tmp_path / "bogus.yaml"
    path.write_text("kind: bogus_kind\nrules:\n  - {id: x.y}\n", encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_rules(path)
    msg = str(info.value)
    assert str(path) in msg and "unknown kind 'bogus_kind'" in msg and "registered kinds" in msg
    assert all(k in msg for k in (*GENERIC, "test_threshold"))
    path.write_text("rules:\n  - {id: x.y, kind: bogus_kind}\n", encoding="utf-8")  # per-rule kind
    with pytest.raises(RuleError, match=r"rules\[0\] \(id 'x.y'\): unknown or missing kind 'bogus_kind'.*lexicon"):
        load_rules(path)
    with pytest.raises(RuleError, match="unknown or missing kind None"):
        kind_class(None)


def test_an_app_kind_is_unknown_until_its_app_registers_it():
    """A fresh interpreter: a finance file without the finance app is a clear RuleError, not a traceback."""
    code = ("from kgfusion.knowledge.rules import RuleError, load_domain_rules\n"
            "try:\n    load_domain_rules('finance')\nexcept RuleError as exc:\n    print(exc)\n"
            "import kgfusion.apps.finance.rule_kinds\n"
            "print(load_domain_rules('finance').counts()['ambiguous_ticker'] > 0)\n")
    done = _run_module("-c", code, cwd=REPO)
    assert done.returncode == 0, done.stderr
    error, ok = done.stdout.strip().splitlines()
    assert "ambiguous_tickers.yaml" in error and "unknown kind 'ambiguous_ticker'" in error
    assert "use one of lexicon, pattern, context, section, type_constraint (the registered kinds" in error
    assert ok == "True"


def test_check_command_imports_app_kinds_on_request():
    finance = str(REPO / "data" / "rules" / "finance")
    done = _run_module("-m", "kgfusion.knowledge.rules", "check", finance, cwd=REPO)
    assert done.returncode == 1 and "unknown kind 'ambiguous_ticker'" in done.stdout
    done = _run_module("-m", "kgfusion.knowledge.rules", "check", "--kinds", "kgfusion.apps.finance.rule_kinds",
                       finance, cwd=REPO)
    assert done.returncode == 0 and '"ambiguous_ticker": ' in done.stdout, done.stdout + done.stderr
    done = _run_module("-m", "kgfusion.knowledge.rules", "check", "--kinds", "no.such.module", finance, cwd=REPO)
    assert done.returncode == 1 and "cannot import rule kinds module 'no.such.module'" in done.stdout


def test_shipped_app_rule_files_load_through_their_apps():
    from kgfusion.apps.finance.rule_kinds import AmbiguousTicker, ambiguous_tickers
    from kgfusion.apps.recommend.rule_kinds import BusinessRule

    fin = load_domain_rules("finance")
    assert fin.by_kind(AmbiguousTicker) and "ON" in ambiguous_tickers(fin)
    rec = load_domain_rules("recommend")
    assert {r.action for r in rec.by_kind(BusinessRule)} >= {"exclude", "cap", "freshness"}
    assert rec.counts() == {"business": len(rec)}
    assert load_domain_rules("medical").counts().keys() <= set(GENERIC)

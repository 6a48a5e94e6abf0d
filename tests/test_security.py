"""No code path loads pickles or runs remote code.

An AST scan of core/, knowledge/, apps/ and benchmarks/ fails on pickle-family imports, pickle/torch/numpy/
pandas/yaml loads that can run code, ``trust_remote_code``, and eval/exec on non-literals; each finding names
file:line and the fix. The scanner is tested on a planted file. At run time, model loading is patched to
record every transformers call, and a model directory whose config asks for remote code is refused
without running that code.
"""
from __future__ import annotations

import ast
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("core", "knowledge", "apps", "benchmarks")
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem} -> fix: {self.fix}"


def _dotted(node: ast.AST) -> str:
    """'np.load' for Attribute(Name('np'), 'load'); '' when not a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _check_call(call: ast.Call, path: str, out: list[Finding]) -> None:
    name = _dotted(call.func)
    last = name.rsplit(".", 1)[-1]
    line = call.lineno
    if _keyword(call, "trust_remote_code") is not None and not _is_const(_keyword(call, "trust_remote_code"), False):
        out.append(Finding(path, line, f"{name or 'call'}(trust_remote_code=...) may run code from a model repo",
                           "drop trust_remote_code (transformers defaults to False); use models transformers ships"))
    head = name.split(".", 1)[0]
    if head in PICKLE_MODULES and last in ("load", "loads", "Unpickler", "open"):
        out.append(Finding(path, line, f"{name}() unpickles data (can run arbitrary code)",
                           "store data as JSON, safetensors, parquet or .npy with allow_pickle=False"))
    if name in ("torch.load",) and not _is_const(_keyword(call, "weights_only"), True):
        out.append(Finding(path, line, "torch.load() without weights_only=True unpickles arbitrary objects",
                           "use safetensors, or pass weights_only=True"))
    if name in ("np.load", "numpy.load") and not _is_const(_keyword(call, "allow_pickle"), False) \
            and _keyword(call, "allow_pickle") is not None:
        out.append(Finding(path, line, f"{name}(allow_pickle=...) can unpickle object arrays",
                           "pass allow_pickle=False (the default) and store numeric arrays only"))
    if last == "read_pickle":
        out.append(Finding(path, line, f"{name}() unpickles a file", "use parquet/CSV/JSON instead"))
    if head == "yaml" and last in ("unsafe_load", "full_load", "unsafe_load_all", "full_load_all"):
        out.append(Finding(path, line, f"{name}() can construct arbitrary Python objects", "use yaml.safe_load"))
    if head == "yaml" and last in ("load", "load_all"):
        loader = _keyword(call, "Loader") or (call.args[1] if len(call.args) > 1 else None)
        loader_name = _dotted(loader).rsplit(".", 1)[-1] if loader is not None else ""
        if loader_name not in SAFE_YAML_LOADERS:
            out.append(Finding(path, line, f"{name}() without a SafeLoader can construct Python objects",
                               "use yaml.safe_load (or Loader=yaml.SafeLoader)"))
    if isinstance(call.func, ast.Name) and call.func.id in ("eval", "exec") \
            and not (call.args and isinstance(call.args[0], ast.Constant)):
        out.append(Finding(path, line, f"{call.func.id}() on a non-literal runs arbitrary code",
                           "parse the input (json, ast.literal_eval) instead of executing it"))


def scan_source(source: str, path: str) -> list[Finding]:
    """Every finding in one Python source text."""
    out: list[Finding] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PICKLE_MODULES:
                    out.append(Finding(path, node.lineno, f"import {alias.name} (pickle-based serialisation)",
                                       "remove it; store JSON, safetensors, parquet or .npy (allow_pickle=False)"))
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in PICKLE_MODULES:
                out.append(Finding(path, node.lineno, f"from {node.module} import ... (pickle-based serialisation)",
                                   "remove it; store JSON, safetensors, parquet or .npy (allow_pickle=False)"))
            if node.module == "pandas" and any(a.name == "read_pickle" for a in node.names):
                out.append(Finding(path, node.lineno, "from pandas import read_pickle", "use parquet/CSV/JSON"))
        elif isinstance(node, ast.Call):
            _check_call(node, path, out)
    return out


def scan_tree(root: Path, packages: tuple[str, ...] = SCANNED) -> list[Finding]:
    out: list[Finding] = []
    for package in packages:
        for file in sorted((root / package).rglob("*.py")):
            out += scan_source(file.read_text(encoding="utf-8"), str(file.relative_to(root)))
    return out


# ------------------------------------------------------------------------------------------ tests


def test_project_code_never_unpickles_or_runs_remote_code():
    assert all((REPO / p).is_dir() for p in SCANNED)
    findings = scan_tree(REPO)
    assert not findings, "unsafe loading found:\n" + "\n".join(map(str, findings))


PLANTED = '''\
import pickle
import dill
from joblib import load
import numpy as np, torch, yaml
import pandas as pd
from transformers import AutoModel

state = pickle.loads(blob)
w = torch.load("w.pt")
w2 = torch.load("w.pt", weights_only=False)
m = AutoModel.from_pretrained("x", trust_remote_code=True)
a = np.load("a.npy", allow_pickle=True)
f = pd.read_pickle("f.pkl")
d = yaml.load(text)
d2 = yaml.load(text, Loader=yaml.Loader)
r = eval(user_text)
exec(code)
'''
CLEAN = '''\
import numpy as np, torch, yaml
from transformers import AutoModel

w = torch.load("w.pt", weights_only=True)
m = AutoModel.from_pretrained("x", use_safetensors=True)
n = AutoModel.from_pretrained("x", trust_remote_code=False)
a = np.load("a.npy", allow_pickle=False)
b = np.load("b.npy")
d = yaml.safe_load(text)
d2 = yaml.load(text, Loader=yaml.SafeLoader)
model.eval()
v = eval("1 + 1")
'''


def test_scanner_flags_every_planted_pattern(tmp_path):
    pkg = tmp_path / "core"
    pkg.mkdir()
    (pkg / "planted.py").write_text(PLANTED)
    (pkg / "clean.py").write_text(CLEAN)
    findings = scan_tree(tmp_path, ("core",))
    assert {f.path for f in findings} == {"core/planted.py"}
    flagged = sorted(f.line for f in findings)
    # every line of the planted file but the pandas/transformers imports and the blank line
    assert flagged == [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    text = "\n".join(map(str, findings))
    assert "core/planted.py:11: " in text and "trust_remote_code" in text and "-> fix:" in text


# --------------------------------------------------------------------------------------- run time


@pytest.fixture
def recorded_transformers_calls(monkeypatch):
    """Patch every transformers/peft loader the project uses; record their keyword arguments."""
    import peft
    import transformers

    calls: list[tuple[str, dict]] = []

    def wrap(owner, name):
        original = getattr(owner, name).__func__

        def recorder(cls, *args, **kwargs):
            calls.append((f"{cls.__name__}.{name}", dict(kwargs)))
            return original(cls, *args, **kwargs)

        monkeypatch.setattr(owner, name, classmethod(recorder))

    for cls in (transformers.AutoTokenizer, transformers.AutoConfig, transformers.AutoModel,
                transformers.AutoModelForSequenceClassification, transformers.AutoModelForTokenClassification,
                peft.PeftModel):
        wrap(cls, "from_pretrained")
    return calls


def test_model_loading_never_passes_trust_remote_code(recorded_transformers_calls, tiny_model_dir, tmp_path):
    from kgfusion.core.bundle import load_bundle, save_bundle
    from kgfusion.core.models import load_base

    for task in ("embedding", "sequence", "token"):
        model, tokenizer = load_base(tiny_model_dir, task=task, labels=["a", "b"])
    bundle = save_bundle(tmp_path / "b", model, tokenizer, task="token", method="full", base=tiny_model_dir,
                         labels=["a", "b"], max_length=16)
    load_bundle(bundle)
    calls = recorded_transformers_calls
    assert {name for name, _ in calls} >= {"AutoTokenizer.from_pretrained", "AutoModel.from_pretrained",
                                           "AutoModelForSequenceClassification.from_pretrained",
                                           "AutoModelForTokenClassification.from_pretrained"}
    assert not [(n, kw) for n, kw in calls if kw.get("trust_remote_code")], calls


def test_load_base_refuses_a_model_that_asks_for_remote_code(tiny_model_dir, tmp_path):
    """A config with auto_map pointing at a local .py is never imported: loading fails instead."""
    from kgfusion.core.errors import KgfusionError
    from kgfusion.core.models import load_base

    evil = tmp_path / "evil-model"
    shutil.copytree(tiny_model_dir, evil)
    marker = tmp_path / "REMOTE_CODE_RAN"
    (evil / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                           "from transformers import BertModel as EvilModel\n"
                                           "from transformers import BertConfig as EvilConfig\n")
    config = json.loads((evil / "config.json").read_text())
    config.update(model_type="evil-remote", architectures=["EvilModel"],
                  auto_map={"AutoConfig": "modeling_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"})
    (evil / "config.json").write_text(json.dumps(config))
    with pytest.raises(KgfusionError, match="auto_map") as info:
        load_base(evil)
    assert str(evil / "config.json") in str(info.value)  # names the file
    assert not marker.exists(), "load_base imported code shipped with the model"


def test_load_base_refuses_remote_code_without_asking(tiny_model_dir, tmp_path, monkeypatch):
    from kgfusion.core.models import load_base

    evil = tmp_path / "evil-model"
    shutil.copytree(tiny_model_dir, evil)
    (evil / "modeling_evil.py").write_text("from transformers import BertModel as EvilModel\n"
                                           "from transformers import BertConfig as EvilConfig\n")
    config = json.loads((evil / "config.json").read_text())
    config.update(model_type="evil-remote", auto_map={"AutoConfig": "modeling_evil.EvilConfig",
                                                      "AutoModel": "modeling_evil.EvilModel"})
    (evil / "config.json").write_text(json.dumps(config))
    prompts: list[str] = []

    def no_input(prompt: str = "") -> str:
        prompts.append(prompt)
        raise EOFError  # as on a closed stdin

    monkeypatch.setattr("builtins.input", no_input)
    with pytest.raises(Exception):  # noqa: B017 - any refusal; the point is how it is reached
        load_base(evil)
    assert not prompts, f"the user was asked whether to run model code: {prompts}"

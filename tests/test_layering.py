"""Each room owns its code: core knows no knowledge or app, knowledge knows no app, apps do not import each other.

The shared rooms inside apps/ are ``common`` (CLI helpers) and ``ui`` (the Streamlit shell and renderers);
the top-level ``cli``/``demo`` modules and the ``serve`` room (the HTTP API over every app) assemble the
apps and may import all of them; no app imports an assembler.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted(p.name for p in (ROOT / "apps").iterdir() if p.is_dir() and (p / "__init__.py").is_file())
SHARED_APP_ROOMS = {"common", "ui"}
ASSEMBLING_ROOMS = {"serve"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``, relative imports resolved against kgfusion.<room>."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def violations(room: Path, allowed: Callable[[str], bool]) -> list[str]:
    out = []
    for path in [room] if room.is_file() else sorted(room.rglob("*.py")):
        for line, module in imported_modules(path):
            if module.startswith("kgfusion.") and not allowed(module):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


def test_core_imports_neither_knowledge_nor_apps():
    assert violations(ROOT / "core", lambda m: m.startswith("kgfusion.core")) == []


def test_knowledge_imports_no_app():
    assert violations(ROOT / "knowledge", lambda m: m.startswith(("kgfusion.core", "kgfusion.knowledge"))) == []


@pytest.mark.parametrize("app", [a for a in APPS if a not in SHARED_APP_ROOMS | ASSEMBLING_ROOMS])
def test_an_app_imports_no_other_app(app):
    def allowed(module: str) -> bool:
        parts = module.split(".")
        if parts[1] != "apps":
            return True
        return len(parts) < 3 or parts[2] in SHARED_APP_ROOMS | {app}

    assert violations(ROOT / "apps" / app, allowed) == []


def test_shared_rooms_import_no_app():
    def allowed(module: str) -> bool:
        parts = module.split(".")
        return parts[1] != "apps" or len(parts) < 3 or parts[2] in SHARED_APP_ROOMS

    assert violations(ROOT / "apps" / "common.py", allowed) == []
    assert violations(ROOT / "apps" / "ui", allowed) == []


def test_the_checker_sees_a_cross_app_import(tmp_path):
    """The scanner must catch ``from kgfusion.apps.kg.link import ...`` inside a function (a lazy import)."""
    room = tmp_path / "medical"
    room.mkdir()
    (room / "linking.py").write_text("def f():\n    from kgfusion.apps.kg.link import make_encoder\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = violations(room, lambda m: not m.startswith("kgfusion.apps.kg"))
    finally:
        ROOT = saved
    assert found == ["medical/linking.py:2 imports kgfusion.apps.kg.link"]

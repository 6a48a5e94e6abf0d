"""The built wheel installs one namespace (kgfusion.core, kgfusion.knowledge, kgfusion.apps) and the
`kgfusion` console script, never generic top-level packages such as `core` or `apps`."""
from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy of what the package is made of, so setuptools' build/ never lands in the checkout.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("core", "knowledge", "apps"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    # No build isolation: the venv's setuptools builds it offline; --no-deps: only kgfusion itself.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(src)], check=True, capture_output=True)
    wheels = list(out.glob("kgfusion-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_only_the_kgfusion_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"kgfusion"}, sorted(tops)
    for pkg in ("core", "knowledge", "knowledge/builders", "apps", "apps/finance", "apps/medical",
                "apps/recommend", "apps/kg", "apps/model", "apps/ui"):
        assert f"kgfusion/{pkg}/__init__.py" in names, pkg
    assert "kgfusion/apps/ui/app.py" in names  # the Streamlit entry ships with the package
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "kgfusion = kgfusion.apps.cli:main" in text


def test_installed_copy_imports_under_the_namespace(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    python = env_dir / "bin" / "python"
    code = ("import kgfusion.core, kgfusion.knowledge, kgfusion.apps, importlib.util as u; "
            "print(kgfusion.core.__file__); "
            "print([m for m in ('core', 'knowledge', 'apps') if u.find_spec(m)])")
    res = subprocess.run([str(python), "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                         capture_output=True, text=True, check=True)
    first, second = res.stdout.splitlines()
    assert first.startswith(str(target)), first  # the installed copy, not the source checkout
    assert second == "[]"  # no generic top-level names

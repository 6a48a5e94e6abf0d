"""Models page section: the model version registry (core/lifecycle/registry.py), one table per bundle name.

It reads registry.json files only (no model loads): each version's parent, status, created, by whom and
headline metrics, the promoted one (what the apps load) marked. Changes go through the CLI
(`kgfusion model register | promote | rollback`), so every event records who acted and why.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from kgfusion.apps.common import registry_root, repo_data_dir
from kgfusion.apps.ui.render import escape_markdown
from kgfusion.core.errors import KgfusionError


def version_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as shown: a ★ on the promoted version; v0 is the shipped bundle."""
    return pd.DataFrame({
        "promoted": ["★" if r["promoted"] else "" for r in rows],
        "version": [f"v{r['version']}" for r in rows],
        "parent": [r["parent"] or "-" for r in rows],
        "status": [r["status"] for r in rows],
        "created": [r["created"].replace("T", " ").removesuffix("Z") or "-" for r in rows],
        "by": [r["by"] or "-" for r in rows],
        "metrics": [r["metrics"] or "-" for r in rows],
    })


def render(root: str | Path | None = None, shipped: str | Path | None = None) -> None:
    """The "Versions" section: every registry name's versions, the promoted one marked."""
    from kgfusion.core.lifecycle.registry import Registry

    reg = Registry(root or registry_root(), shipped or repo_data_dir() / "models")
    st.header("Versions")
    names = reg.names()
    if not names:
        st.info(escape_markdown(f"No model versions in {reg.root} yet: the apps load the shipped bundles. ")
                + "Register one with `kgfusion model register NAME BUNDLE_DIR --by YOU`, then "
                "`kgfusion model promote NAME VERSION --by YOU`.")
        return
    st.caption("The apps load each name's promoted version (★) in place of its shipped bundle (v0). "
               "Change it with `kgfusion model promote` / `kgfusion model rollback`; "
               "`kgfusion model versions NAME` prints the same table.")
    for name in names:
        try:
            rows = reg.rows(name)
        except KgfusionError as exc:  # a broken registry.json is reported, the other names still show
            st.warning(escape_markdown(str(exc)))
            continue
        promoted = next((r for r in rows if r["promoted"]), None)
        if promoted is None:
            loads = "the bundle they are given (nothing promoted, no shipped bundle)"
        else:
            loads = f"v{promoted['version']}" + (" (shipped)" if promoted["version"] == 0 else "")
        st.subheader(escape_markdown(name))
        st.markdown(escape_markdown(f"The apps load: {loads}"))
        st.dataframe(version_frame(rows), hide_index=True, width="stretch")

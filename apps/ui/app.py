"""``streamlit run apps/ui/app.py``: the kgfusion suite as one Streamlit app (st.navigation).

Pages: Home, Finance, Medical, Recommend (when apps/recommend/page.py exists), Models, Knowledge.
set_page_config is called here only; the pages themselves do not call it, so each page also runs
standalone (``streamlit run apps/finance/page.py``).
"""
from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts apps/ui/ on sys.path, not the repository root; make `apps.*` importable
# even when the package is not installed (a source checkout).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from apps.ui.pages import make_pages  # noqa: E402

st.set_page_config(page_title="kgfusion", page_icon=":material/hub:", layout="wide")
st.navigation(make_pages()).run()

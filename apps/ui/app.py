"""``streamlit run apps/ui/app.py``: the kgfusion suite as one Streamlit app (st.navigation).

Pages: Home, Finance, Medical, Recommend (when apps/recommend/page.py exists), Models, Knowledge.
set_page_config is called here only; the pages themselves do not call it, so each page also runs
standalone (``streamlit run apps/finance/page.py``).
"""
from __future__ import annotations

# The suite imports the installed package (kgfusion.apps.*; `pip install -e .` for a checkout).
import streamlit as st

from kgfusion.apps.ui.pages import make_pages

st.set_page_config(page_title="kgfusion", page_icon=":material/hub:", layout="wide")
st.navigation(make_pages()).run()

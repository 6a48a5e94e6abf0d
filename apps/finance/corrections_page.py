"""The finance page's "Correct an item" form: pick one of the shown evidence items, give the right label
(and topic) and your name; the correction is stored in the page's database (apps/finance/corrections.py)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from kgfusion.apps.finance.corrections import correct_item, item_choices
from kgfusion.apps.finance.scoring import SENTIMENT_LABELS
from kgfusion.apps.ui.render import escape_markdown
from kgfusion.core.errors import KgfusionError

KEEP = ""  # the topic choice that leaves the topic as it is


def correction_form(db: str | Path, evidence: Sequence[dict[str, Any]], topics: Sequence[str] = (),
                    key: str = "finance_correct") -> None:
    """Render the form for ``evidence`` items; on submit store the correction and confirm it (or say why not)."""
    choices = item_choices(evidence)
    if not choices:
        return
    st.markdown("**Correct an item**")
    with st.form(key):
        item = st.selectbox("Item", list(choices), format_func=lambda i: choices[i], key=f"{key}_item")
        label = st.selectbox("Right sentiment", SENTIMENT_LABELS, key=f"{key}_label")
        topic = st.selectbox("Right topic (optional)", [KEEP, *topics], key=f"{key}_topic",
                             format_func=lambda t: t or "(leave as is)") if topics else KEEP
        who = st.text_input("Your name", key=f"{key}_who")
        submitted = st.form_submit_button("Submit correction")
    if not submitted:
        return
    try:
        stored = correct_item(db, item, who=who, label=label, topic=topic or None, source="page")
    except KgfusionError as exc:  # e.g. no name given: say what to fix
        st.error(escape_markdown(exc))
        return
    changes = "; ".join(f"{c.field} {c.old_value or '-'} → {c.new_value}" for c in stored)
    st.success(escape_markdown(f"Correction saved for item {item}: {changes} (by {stored[0].who}). "
                               "The model's prediction is kept; export corrections with "
                               "`kgfusion model corrections export`."))

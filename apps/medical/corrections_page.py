"""The medical page's "Correct this note" form: mark a mention wrong, add a missed one (by START:END or
its text), fix a ConText attribute or the concept; stored in a corrections DuckDB (apps/medical/corrections.py)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import streamlit as st

from kgfusion.apps.medical.corrections import (
    ATTRIBUTES,
    Edits,
    PredictedNote,
    bundle_labels,
    correct_note,
    describe,
)
from kgfusion.apps.ui.render import escape_markdown
from kgfusion.core.errors import KgfusionError

KINDS = ("Mark a mention wrong", "Add a missed mention", "Fix an attribute", "Fix the concept")
DEFAULT_DB = os.environ.get("KGFUSION_MEDICAL_CORRECTIONS",
                            str(Path(__file__).resolve().parents[2] / "runs" / "medical-corrections.duckdb"))
OFFSETS = re.compile(r"^\s*\d+\s*:\s*\d+\s*$")


def find_span(text: str, value: str) -> str:
    """START:END as given, or the first occurrence of the typed words in the note ('' when not found)."""
    if OFFSETS.match(value):
        return value.replace(" ", "")
    at = text.find(value.strip()) if value.strip() else -1
    return f"{at}:{at + len(value.strip())}" if at >= 0 else ""


def correction_form(result, bundle: str, key: str = "medical_correct") -> None:
    """Render the form for a NoteResult; on submit store the correction and confirm it (or say why not)."""
    st.subheader("Correct this note")
    db = st.text_input("Corrections database (DuckDB file)", DEFAULT_DB, key=f"{key}_db")
    kind = st.selectbox("Correction", KINDS, key=f"{key}_kind")
    labels, model, version = bundle_labels(bundle)
    mentions = {f"{m.start}:{m.end}": m for m in result.mentions}
    with st.form(key):
        pick, where, label, attribute, flag, concept = "", "", "", "", False, ""
        if kind == KINDS[1]:
            where = st.text_input("Span: START:END (character offsets) or the words as written", key=f"{key}_span")
            label = st.selectbox("Label", labels, key=f"{key}_label")
        elif mentions:
            pick = st.selectbox("Mention", list(mentions), key=f"{key}_mention",
                                format_func=lambda k: f"{mentions[k].text} ({mentions[k].label}, {k})")
        if kind == KINDS[2]:
            attribute = st.selectbox("Attribute", ATTRIBUTES, key=f"{key}_attribute")
            flag = st.checkbox("The attribute applies (true)", key=f"{key}_flag")
        if kind == KINDS[3]:
            concept = st.text_input("Right concept id (e.g. DOID:784, DRUGBANK:DB00331)", key=f"{key}_concept")
        who = st.text_input("Your name", key=f"{key}_who")
        submitted = st.form_submit_button("Save correction")
    if not submitted:
        return
    if kind != KINDS[1] and not pick:
        st.error("This note has no mentions to correct; add a missed mention instead.")
        return
    span = find_span(result.text, where) if kind == KINDS[1] else pick
    if not span:
        st.error(escape_markdown(f"{where!r} is not in the note; give START:END offsets or words as written."))
        return
    edits = Edits(wrong=[span] if kind == KINDS[0] else [], add=[f"{span}:{label}"] if kind == KINDS[1] else [],
                  attribute=[f"{span}:{attribute}={str(flag).lower()}"] if kind == KINDS[2] else [],
                  concept=[f"{span}:{concept.strip()}"] if kind == KINDS[3] else [])
    try:
        stored = correct_note(db, PredictedNote.from_result(result, model, version), edits, who=who, labels=labels,
                              source="page")
    except KgfusionError as exc:
        st.error(escape_markdown(exc))
        return
    st.success(escape_markdown(f"Correction saved in {db}: " + "; ".join(describe(c) for c in stored)
                               + f" (by {stored[0].who}). The prediction is kept as it was."))

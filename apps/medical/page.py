"""Streamlit page: paste or upload a clinical note and see what it says, about whom, coded.

Pick an example note, paste one or upload a file; read the note with every disease and drug mention
highlighted (negated struck through, historical grey, family italic, possible/hypothetical dashed);
open a mention for its KG concept, codes, evidence and facts; download the mention table as CSV.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from kgfusion.apps.common import repo_data_dir
from kgfusion.apps.medical.config import DEFAULT_BUNDLE, MedicalConfig
from kgfusion.apps.medical.export import legend_html, mention_style, mentions_table, to_csv
from kgfusion.apps.medical.readers import decode_bytes, looks_binary
from kgfusion.apps.ui.render import Highlight, escape_markdown, show_highlighted, show_html

NOTES_DIR = Path(os.environ.get("KGFUSION_MEDICAL_NOTES", repo_data_dir() / "notes"))
BUNDLE = os.environ.get("KGFUSION_MEDICAL_BUNDLE", DEFAULT_BUNDLE)
LINK_ENCODER = os.environ.get("KGFUSION_MEDICAL_LINK_ENCODER", "minilm")


@st.cache_resource(show_spinner="Loading the model, knowledge graph and entity index ...")
def load_extractor(config_json: str):
    from kgfusion.apps.medical.extract import build_extractor

    return build_extractor(MedicalConfig.from_dict(json.loads(config_json)))


def mention_highlights(mentions) -> list[Highlight]:
    """One mark per mention: styled by label and attributes; title = label, attributes and KG concept."""
    marks = []
    for m in mentions:
        flags = [a for a, v in m.attributes.items() if v]
        title = m.label + (f" [{', '.join(flags)}]" if flags else "") + (
            f" -> {m.concept.label} ({m.concept.curie})" if m.concept else "")
        marks.append(Highlight(m.start, m.end, style=mention_style(m), title=title,
                               css_class=f"kgf-{m.label.lower()}", badge=m.label[:4].upper()))
    return marks


@st.cache_data(show_spinner=False)
def model_backends(bundle: str) -> list[str]:
    """The backends the bundle ships (a full fine-tune ships its ONNX int8 model only)."""
    from kgfusion.apps.medical.extract import resolve_bundle
    from kgfusion.core.bundle import available_backends
    from kgfusion.core.errors import KgfusionError

    try:
        return available_backends(resolve_bundle(bundle, repo_data_dir())) or ["onnx-int8"]
    except KgfusionError:  # a missing bundle is reported where the extractor loads
        return ["onnx-int8", "fp32", "int8"]


st.title("Clinical notes → coded mentions")
st.caption("Diseases and drugs found by a fine-tuned MiniLM and a knowledge-graph gazetteer, with ConText "
           "assertion (negated, possible, historical, family, hypothetical) and Disease Ontology / DrugBank codes.")

with st.sidebar:
    st.header("Settings")
    backend = st.selectbox("Model backend", model_backends(BUNDLE))
    policy = st.selectbox("Model vs gazetteer overlaps", ["union", "prefer_model", "prefer_gazetteer"])
    encoders = ["minilm", "hashing"]
    link_encoder = st.selectbox("Linker encoder", encoders, index=encoders.index(LINK_ENCODER)
                                if LINK_ENCODER in encoders else 0)
    only_asserted = st.checkbox("Table: asserted mentions only", value=False)

examples = sorted(NOTES_DIR.glob("*.txt")) if NOTES_DIR.is_dir() else []
source = st.radio("Note", ["Example", "Paste", "Upload"], horizontal=True)
text, note_id, warnings = "", "note", []
if source == "Example" and examples:
    pick = st.selectbox("Example note", [p.name for p in examples])
    text, note_id = (NOTES_DIR / pick).read_text(encoding="utf-8"), Path(pick).stem
elif source == "Example":
    st.info(f"No example notes in {escape_markdown(NOTES_DIR)}; paste or upload one.")
elif source == "Paste":
    text = st.text_area("Clinical note", height=220, placeholder="History of Present Illness: ...")
    note_id = "pasted"
else:
    upload = st.file_uploader("A plain-text note", type=["txt", "text", "md"])
    if upload is not None:
        data = upload.getvalue()
        if looks_binary(data):
            st.error(f"{escape_markdown(upload.name)} looks like a binary file, not a text note.")
        else:
            text, _, warnings = decode_bytes(data)
            note_id = Path(upload.name).stem

config = MedicalConfig(bundle=BUNDLE, backend=backend, policy=policy, link_encoder=link_encoder)
if text.strip() and st.button("Extract", type="primary"):
    from kgfusion.apps.medical.extract import NoteRejected
    from kgfusion.core.errors import KgfusionError

    try:
        extractor = load_extractor(config.to_json())
        result = extractor.extract(text, note_id, warnings=warnings)
        st.session_state["medical_result"] = result
    except NoteRejected as exc:
        st.error(f"Note rejected: {escape_markdown(exc.reason)}")
    except KgfusionError as exc:
        st.error(escape_markdown(exc))
elif not text.strip():
    st.session_state.pop("medical_result", None)

result = st.session_state.get("medical_result")
if result is not None:
    for w in result.warnings:
        st.warning(escape_markdown(w))
    ms = result.mentions
    cols = st.columns(4)
    cols[0].metric("Mentions", len(ms))
    cols[1].metric("Asserted", sum(m.asserted for m in ms))
    cols[2].metric("Negated", sum(bool(m.attributes.get("negated")) for m in ms))
    cols[3].metric("Linked to the KG", sum(m.concept is not None for m in ms))
    show_html(legend_html())
    show_highlighted(result.text, mention_highlights(ms))

    st.subheader("Mentions")
    for m in ms:
        flags = [a for a, v in m.attributes.items() if v] or ["asserted"]
        head = f"{m.text} — {m.label} ({', '.join(flags)})" + (f" → {m.concept.label}" if m.concept else "")
        with st.expander(escape_markdown(head)):
            st.write(f"Characters {m.start}–{m.end}, score {m.score:.2f}, sources: "
                     f"{escape_markdown(', '.join(m.sources))}"
                     + (f", section: {escape_markdown(m.section)}" if m.section else "")
                     + (f", abbreviation of *{escape_markdown(m.expansion)}*" if m.expansion else ""))
            if m.concept:
                c = m.concept
                st.write(f"**{escape_markdown(c.label)}** `{c.curie}` — {c.match} match, "
                         f"score {c.score:.2f}" + (" (ambiguous)" if c.ambiguous else ""))
                if c.codes:
                    st.write("Codes: " + escape_markdown("; ".join(f"{k} {', '.join(v)}" for k, v in c.codes.items())))
                if c.facts:
                    st.write("Knowledge graph:")
                    st.dataframe(pd.DataFrame([f.to_dict() for f in c.facts]), hide_index=True)
            else:
                st.write("No KG concept above the linking threshold.")
            st.write("Evidence:")
            st.markdown("\n".join(f"- {escape_markdown(e.describe())}" for e in m.evidence) or "- none")

    st.subheader("Table")
    rows = mentions_table([result])
    if only_asserted:
        rows = [r for r in rows if r["asserted"]]
    st.dataframe(pd.DataFrame(rows, columns=None if rows else ["note_id"]), hide_index=True)
    st.download_button("Download CSV", to_csv([result]), file_name=f"{result.note_id}_mentions.csv",
                       mime="text/csv")

    from kgfusion.apps.medical.corrections_page import correction_form  # clinicians' corrections (issue 16)

    correction_form(result, BUNDLE)

"""Home page: what kgfusion does, the apps (with links), the shipped models and headline numbers, own data."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from kgfusion.apps.common import repo_data_dir, results_dir
from kgfusion.apps.ui.catalog import headlines, list_bundles, load_results
from kgfusion.apps.ui.pages import make_pages, page_specs
from kgfusion.apps.ui.render import escape_markdown

st.title("kgfusion")
st.markdown(
    "Domain NLP on your own CPU: a small fine-tuned, quantized transformer reads the text, and a "
    "knowledge layer — rule bases plus an RDF knowledge graph searched through a FAISS entity index — "
    "makes each answer robust and explainable. Every decision carries its **evidence**: the model's "
    "probabilities, the rules that fired and the graph paths used."
)

st.header("Apps")
pages = {p.url_path: p for ps in make_pages().values() for p in ps}
specs = [s for s in page_specs() if not s.is_home]
for spec in specs:
    with st.container(border=True):
        st.page_link(pages[spec.url_path], label=f"**{spec.title}**", icon=spec.icon)
        st.caption(spec.blurb)

st.header("Shipped models")
bundles, problems = list_bundles(repo_data_dir() / "models")
if bundles:
    st.dataframe(pd.DataFrame([b.row() for b in bundles]), hide_index=True, width="stretch",
                 column_config={"value": st.column_config.NumberColumn("value", format="%.3f")})
    st.caption("metric/value: the bundle's dev-set score from its metrics.json. Details, model cards and the "
               "quantization comparison are on the Models page.")
else:
    st.info("No model bundles in data/models/ yet: train one with `kgfusion model train` or an app's `train`.")
for problem in problems:
    st.warning(escape_markdown(problem))

st.header("Headline results")
results, result_problems = load_results(results_dir())
numbers = headlines(results)
if numbers:
    for source in dict.fromkeys(h.source for h in numbers):
        row = [h for h in numbers if h.source == source]
        st.markdown(f"**{escape_markdown(source.replace('_', ' '))}** · `benchmarks/results/{source}.json`")
        for col, h in zip(st.columns(len(row)), row, strict=True):
            col.metric(h.label, h.value)
else:
    st.info("No benchmark results yet: run the scripts in benchmarks/ (they write benchmarks/results/*.json).")
for problem in result_problems:
    st.warning(escape_markdown(problem))

st.header("Use your own data")
st.markdown(
    """
- **Finance** — a CSV/JSONL feed with a `text` column (and `timestamp`, optional `ticker`):
  `kgfusion finance monitor feed.csv --db runs/finance.duckdb`, then open the Finance page
  (or upload the feed there).
- **Medical** — plain-text notes: `kgfusion medical extract notes/ --out mentions.jsonl --csv mentions.csv`,
  or paste/upload a note on the Medical page.
- **Knowledge graphs** — rebuild from the open data with `kgfusion kg build all`; query them with
  `kgfusion kg query`, `kgfusion kg neighbors` and `kgfusion kg link`, or on the Knowledge page.
- **Models** — fine-tune on your labelled data with `kgfusion model train`, then `kgfusion model quantize`
  (dynamic int8 or ONNX int8); bundles land in a folder with metrics.json and MODEL_CARD.md.
- **Folders** — `KGFUSION_DATA` points the apps at another data folder (models/, kg/, datasets/).

Everything runs offline: the base encoder ships in a pip package, trained adapters ship in `data/models/`.
"""
)

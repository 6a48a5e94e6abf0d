"""Models page: the shipped bundles (task, method, size, metrics, model card) and the quantization comparison."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from kgfusion.apps.common import repo_data_dir, results_dir
from kgfusion.apps.ui.catalog import int8_pairs, list_bundles, load_results, quantization_rows
from kgfusion.apps.ui.drift_view import render as render_drift
from kgfusion.apps.ui.pareto_view import render as render_pareto
from kgfusion.apps.ui.render import escape_markdown
from kgfusion.apps.ui.training_view import render as render_training
from kgfusion.apps.ui.versions_view import render as render_versions

st.title("Models")
st.caption("Each bundle in data/models/ holds the weights (LoRA adapter or full model), tokenizer, "
           "bundle.json manifest with checksums, metrics.json and MODEL_CARD.md; "
           "`kgfusion model info <bundle>` prints the same from the command line.")

models_dir = repo_data_dir() / "models"
bundles, problems = list_bundles(models_dir)
for problem in problems:
    st.warning(escape_markdown(problem))

st.header("Bundles")
if not bundles:
    st.info(f"No bundles in {escape_markdown(models_dir)}: train one with `kgfusion model train` or an app's `train` command.")
else:
    st.dataframe(pd.DataFrame([b.row() for b in bundles]), hide_index=True, width="stretch",
                 column_config={
                     "size_mb": st.column_config.NumberColumn("size (MB)", format="%.1f"),
                     "value": st.column_config.NumberColumn("value", format="%.3f"),
                     "onnx_int8": st.column_config.CheckboxColumn("ONNX int8"),
                 })
    st.caption("size: every file in the bundle folder (an ONNX int8 export adds ~23 MB); metric/value: the "
               "dev-set score preferred for that task.")

    for bundle in bundles:
        with st.expander(escape_markdown(f"{bundle.name} — {bundle.task} · {bundle.method} · "
                                         f"{', '.join(bundle.labels)}")):
            flat = bundle.flat_metrics()
            if flat:
                st.dataframe(pd.DataFrame({"metric": list(flat), "value": list(flat.values())}),
                             hide_index=True, width="stretch")
            else:
                st.write("metrics.json has no top-level numbers.")
            pairs = int8_pairs(bundle.metrics)
            if pairs:
                st.markdown("**fp32 vs ONNX int8** (same evaluation set)")
                st.dataframe(pd.DataFrame(pairs).round(4), hide_index=True, width="stretch")
            if bundle.model_card:
                st.markdown("---")
                st.markdown(bundle.model_card)
            else:
                st.write("No MODEL_CARD.md in this bundle.")

st.header("Quantization: speed, size and accuracy")
results, result_problems = load_results(results_dir())
for problem in result_problems:
    st.warning(escape_markdown(problem))
speed = results.get("core_speed")
rows = quantization_rows(speed) if speed else []
if not rows:
    st.info("No benchmarks/results/core_speed.json yet: run `python benchmarks/core_speed.py` (make bench).")
else:
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "accuracy": st.column_config.NumberColumn("accuracy", format="%.4f"),
        "macro_f1": st.column_config.NumberColumn("macro-F1", format="%.4f"),
        "size_mb": st.column_config.NumberColumn("size (MB)", format="%.1f"),
        "items_per_s": st.column_config.NumberColumn("items/s", format="%.1f"),
        "speedup_vs_pipeline": st.column_config.NumberColumn("speed-up vs HF pipeline", format="%.1fx"),
    })
    n_test = speed.get("n_test")
    st.caption("Sentiment classifier on the held-out Financial PhraseBank test split"
               + (f" ({int(n_test)} sentences)" if isinstance(n_test, int | float) else "")
               + ", batch inference on this machine's CPU. pipeline = transformers pipeline baseline; "
               "predictor = kgfusion's batched predictor (fp32, torch dynamic int8, ONNX Runtime int8); "
               "student = distilled 3-layer model.")
    import altair as alt

    chart = alt.Chart(table).mark_circle(size=140).encode(
        x=alt.X("size_mb:Q", title="size (MB)"),
        y=alt.Y("items_per_s:Q", title="items per second"),
        color=alt.Color("variant:N"),
        tooltip=["variant", "size_mb", "items_per_s", "accuracy", "macro_f1"],
    )
    st.altair_chart(chart, width="stretch")

others = {stem: int8_pairs(data) for stem, data in results.items()}
others = {stem: pairs for stem, pairs in others.items() if pairs}
if others:
    st.subheader("fp32 vs ONNX int8 in the app benchmarks")
    st.dataframe(pd.DataFrame([{"benchmark": stem, **row} for stem, pairs in others.items() for row in pairs])
                 .round(4), hide_index=True, width="stretch")

render_training(results)  # shipped figures vs targets and anchors; the recipe ablation (apps/ui/training_view.py)
render_pareto(results)  # fast vs accurate variants per task (apps/ui/pareto_view.py)
render_drift()  # drift of the finance feed vs its training reference (apps/ui/drift_view.py)
render_versions()  # the model version registry, promoted versions marked (apps/ui/versions_view.py)

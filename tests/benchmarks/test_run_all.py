from __future__ import annotations

import json

import benchmarks.run_all as run_all


def test_table_reads_the_results_and_marks_missing_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    (tmp_path / "finance.json").write_text(json.dumps({"phrasebank50_accuracy": 0.8427, "monitor_items_per_s": 120.4,
                                                       "monitor_backend": "onnx-int8"}))
    rows = {m: (ours, anchor) for _, m, ours, anchor, _ in run_all.table_rows()}
    assert rows["PhraseBank 50-agree accuracy (own held-out split)"] == ("0.843", "FinBERT 0.86 (paper)")
    monitor = "monitor end to end, items/s (the app's backend vs fp32, whole StockNet feed)"
    assert rows[monitor] == ("120.4 (onnx-int8)", "fp32 not shipped")
    (tmp_path / "finance.json").write_text(json.dumps({"monitor_items_per_s": 120.4, "monitor_backend": "int8",
                                                       "monitor_items_per_s_fp32": 80.0}))
    rows = {m: (ours, anchor) for _, m, ours, anchor, _ in run_all.table_rows()}
    assert rows[monitor] == ("120.4 (int8)", "fp32 80.0")
    assert rows["NCBI-disease devel entity F1, model / fused with gazetteer"][0] == "n/a / n/a"


def test_readme_table_is_replaced_between_the_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run_all.START}\nold table\n{run_all.END}\noutro\n")
    table = run_all.render_table([("a", "m", "1", "2", "x")])
    assert run_all.update_readme(table, readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert "| a | m | 1 | 2 | `benchmarks/results/x.json` |" in text
    no_markers = tmp_path / "other.md"
    no_markers.write_text("nothing here\n")
    assert not run_all.update_readme(table, no_markers) and no_markers.read_text() == "nothing here\n"


def test_the_batch_invariance_row_appears_only_with_its_results(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    metric = "sentiment labels that change when the same tweets are batched in another order"
    assert metric not in {m for _, m, *_ in run_all.table_rows()}
    (tmp_path / "batch_invariance.json").write_text(json.dumps({"per_head": {"sentiment": {
        "batched_vs_shuffled": {"label_flips": 8, "items": 953, "max_prob_diff": 0.37}}}}))
    rows = {m: (ours, anchor) for _, m, ours, anchor, _ in run_all.table_rows()}
    assert rows[metric] == ("8 of 953", "0 for a batch-invariant backend")
    (tmp_path / "batch_invariance.json").write_text(json.dumps({
        "per_head": {"sentiment": {"batched_vs_shuffled": {"label_flips": 8, "items": 953}}},
        "modes": {"per-token": {"per_head": {"sentiment": {"batched_vs_shuffled": {"label_flips": 0, "items": 953}}}}},
        "per_token_speed_ratio": 0.576}))
    rows = {m: (ours, anchor) for _, m, ours, anchor, _ in run_all.table_rows()}
    assert rows[metric] == ("8 of 953", "per-token int8: 0 (0.58x items/s)")

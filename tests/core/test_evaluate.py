from __future__ import annotations

import pytest

from kgfusion.core.evaluate import classification_metrics, entity_metrics, format_report


def test_perfect_classification_is_one():
    m = classification_metrics(["a", "b", "a"], ["a", "b", "a"], ["a", "b"])
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0
    assert m["confusion"] == [[2, 0], [0, 1]]


def test_all_wrong_is_zero_and_confusion_counts():
    m = classification_metrics(["a", "a", "b"], ["b", "b", "a"], ["a", "b"])
    assert m["accuracy"] == 0.0 and m["macro_f1"] == 0.0
    assert m["confusion"] == [[0, 2], [1, 0]]
    assert m["per_class"]["a"]["support"] == 2


def test_macro_f1_averages_classes():
    m = classification_metrics(["a", "a", "b", "b"], ["a", "a", "a", "b"], ["a", "b"])
    f_a, f_b = 2 * (2 / 3) * 1 / (2 / 3 + 1), 2 * 1 * 0.5 / 1.5
    assert m["macro_f1"] == pytest.approx((f_a + f_b) / 2)
    assert m["accuracy"] == 0.75


def test_entity_metrics_strict_boundaries():
    gold = [["B-Disease", "I-Disease", "O"], ["O", "B-Chemical"]]
    assert entity_metrics(gold, gold)["f1"] == 1.0
    half = entity_metrics(gold, [["B-Disease", "O", "O"], ["O", "B-Chemical"]])
    assert half["precision"] == 0.5 and half["recall"] == 0.5
    assert half["per_type"]["Chemical"]["f1"] == 1.0 and half["per_type"]["Disease"]["f1"] == 0.0


def test_format_report_mentions_every_class():
    text = format_report(classification_metrics(["x", "y"], ["x", "x"], ["x", "y"]), "t")
    assert "macro-F1" in text and "\ny " in text and "confusion" in text

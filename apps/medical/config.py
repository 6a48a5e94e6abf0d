"""MedicalConfig: which model and backend, how spans are fused, linked and what counts as bad input."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kgfusion.core.config import ConfigBase, check_range

DEFAULT_BUNDLE = "medical-ner-bc5cdr"  # under data/models/
# Model / gazetteer entity labels (BC5CDR names) and the KG types each maps to.
LABEL_TYPES: dict[str, tuple[str, ...]] = {
    "Disease": ("https://schema.org/MedicalCondition", "https://schema.org/MedicalSignOrSymptom"),
    "Chemical": ("https://schema.org/Drug",),
}
TYPE_LABEL: dict[str, str] = {t: label for label, types in LABEL_TYPES.items() for t in types}


@dataclass
class MedicalConfig(ConfigBase):
    """Settings of the clinical extractor (defaults suit English clinical notes of a few pages).

    Model: ``bundle`` is a directory or a name under data/models/; ``backend`` fp32 | int8 | onnx-int8;
    model spans below ``min_model_score`` (0..1) are dropped. Fusion: ``policy`` decides overlaps of model
    and gazetteer spans (union keeps the longer). Gazetteer: KG names shorter than ``gazetteer_min_chars``
    (2..20) are skipped; ``gazetteer_symptoms`` also matches symptom names (as Disease). Linking:
    ``link_threshold`` (0..1) is the minimum retrieval score; ``link_encoder`` minilm (FAISS over MiniLM
    embeddings, cached under data/kg/index/) or hashing (character n-gram hashing, no model, instant).
    Bad input: notes over ``max_chars`` characters are split into chunks of at most that size at
    paragraph / sentence boundaries (``oversize="chunk"``) or rejected (``"reject"``).
    ``corpus_aliases``: gold mention texts of the NCBI-disease / BC5CDR training files that map to one
    DO concept become extra names for the gazetteer and the linker (training files only).
    """

    bundle: str = DEFAULT_BUNDLE
    backend: Literal["fp32", "int8", "onnx-int8"] = "onnx-int8"
    min_model_score: float = 0.0
    policy: Literal["union", "prefer_model", "prefer_gazetteer"] = "union"
    gazetteer: bool = True
    gazetteer_min_chars: int = 4
    gazetteer_symptoms: bool = True
    abbreviations: bool = True
    context: bool = True
    link: bool = True
    link_threshold: float = 0.75
    link_encoder: Literal["minilm", "hashing"] = "minilm"
    corpus_aliases: bool = True
    kg_facts: int = 8
    max_chars: int = 100_000
    oversize: Literal["chunk", "reject"] = "chunk"
    batch_notes: int = 16

    def validate(self) -> None:
        check_range(self, "min_model_score", 0, 1)
        check_range(self, "gazetteer_min_chars", 2, 20)
        check_range(self, "link_threshold", 0, 1)
        check_range(self, "kg_facts", 0, 1000)
        check_range(self, "max_chars", 1000, 50_000_000)
        check_range(self, "batch_notes", 1, 10_000)

"""Medical app fixtures: a tiny hand-made medical graph, a keyword predictor and a keyword encoder."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "medical"
# Phrases the fake model "recognises" (regex -> label): note some are deliberately not KG names.
MODEL_PHRASES = {
    r"kidney disease": "Disease", r"fever": "Disease", r"chest pain": "Disease", r"pneumonia": "Disease",
    r"breast cancer": "Disease", r"heart failure": "Disease", r"renal failure": "Disease",
    r"metformin": "Chemical", r"furosemide": "Chemical", r"headache": "Disease",
}
KEYWORDS = {"kidney": 0, "renal": 0, "diabetes": 1, "hypertension": 2, "pressure": 2, "breast": 3, "cancer": 3,
            "heart": 4, "cardiac": 4, "failure": 4, "pneumonia": 5, "lung": 5, "gout": 6, "metformin": 7,
            "aspirin": 8, "acetylsalicylic": 8, "furosemide": 9, "lisinopril": 10, "fever": 11, "chest": 12,
            "infarction": 13, "myocardial": 13}


class KeywordPredictor:
    """Stands in for core.predict.Predictor (task token): spans where MODEL_PHRASES occur."""

    task = "token"
    labels = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]

    def __init__(self, phrases: dict[str, str] | None = None, score: float = 0.7) -> None:
        self.phrases = phrases or MODEL_PHRASES
        self.score = score
        self.calls: list[int] = []

    def predict_spans(self, texts):
        from kgfusion.core.predict import Span

        self.calls.append(len(texts))
        out = []
        for text in texts:
            spans = []
            for pattern, label in self.phrases.items():
                for m in re.finditer(rf"(?i)\b{pattern}\b", text):
                    spans.append(Span(m.start(), m.end(), label, self.score, m.group()))
            out.append(sorted(spans, key=lambda s: s.start))
        return out


def keyword_encoder():
    """The shared keyword one-hot mock encoder (tests/mocks.py) over the medical KEYWORDS."""
    from tests.mocks import KeywordEncoder

    return KeywordEncoder(KEYWORDS)


def make_data_dir(root: Path) -> Path:
    """A data/ folder with the tiny graph and the test abbreviation list."""
    (root / "kg").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "tiny_medical.ttl", root / "kg" / "medical.ttl")
    abbr = root / "datasets" / "clinical_abbreviations"
    abbr.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "abbreviations.csv", abbr / "wikipedia_abbreviation_database.csv")
    return root


@pytest.fixture(scope="session")
def med_data_dir(tmp_path_factory) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("medical-data"))


@pytest.fixture(scope="session")
def med_kb(med_data_dir):
    from kgfusion.apps.medical.linking import MedicalKB

    return MedicalKB.load(med_data_dir / "kg" / "medical.ttl", med_data_dir / "kg" / "index" / "medical-app")


@pytest.fixture
def make_extractor(med_data_dir):
    """Factory: an extractor over the tiny graph with the keyword predictor and encoder."""
    from kgfusion.apps.medical.config import MedicalConfig
    from kgfusion.apps.medical.extract import build_extractor

    def make(predictor=None, **config):
        cfg = MedicalConfig(**({"gazetteer_symptoms": True} | config))
        return build_extractor(cfg, med_data_dir, predictor=predictor or KeywordPredictor(), encoder=keyword_encoder())

    return make


@pytest.fixture
def extractor(make_extractor):
    return make_extractor()

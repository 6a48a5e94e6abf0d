"""The suite's pages: one list used by the entry script (st.navigation) and the home page (st.page_link).

Each page has a fixed URL path, so the finance and medical pages (both named page.py) do not collide
and links stay stable. The recommendation page is listed only when its file exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

APPS = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PageSpec:
    """One page: its script, title shown in the menu, URL path ("" = the home page), icon, section, blurb."""

    script: Path
    title: str
    url_path: str
    icon: str
    section: str
    blurb: str

    @property
    def is_home(self) -> bool:
        return self.url_path == ""


def page_specs() -> list[PageSpec]:
    """Home, the app pages that exist on disk, then Models and Knowledge (in menu order)."""
    ui = APPS / "ui"
    specs = [
        PageSpec(ui / "home.py", "Home", "", ":material/home:", "Overview",
                 "What the suite does and where to start."),
        PageSpec(APPS / "finance" / "page.py", "Finance", "finance", ":material/trending_down:", "Apps",
                 "Which companies turn negative, when and why: sentiment per item, series per company and "
                 "sector, alerts on negative spikes with the evidence."),
        PageSpec(APPS / "medical" / "page.py", "Medical", "medical", ":material/medical_services:", "Apps",
                 "Clinical note -> disease and drug mentions with negation/history/family context and "
                 "Disease Ontology / DrugBank codes."),
        PageSpec(APPS / "recommend" / "page.py", "Recommend", "recommend", ":material/movie:", "Apps",
                 "Top-K movies for a MovieLens user (or a new one), each with its reason and knowledge-graph "
                 "evidence; quality against the baselines."),
        PageSpec(ui / "models_page.py", "Models", "models", ":material/model_training:", "Inspect",
                 "Shipped model bundles, their metrics and model cards; fp32 vs int8 vs ONNX int8."),
        PageSpec(ui / "knowledge_page.py", "Knowledge", "knowledge", ":material/hub:", "Inspect",
                 "Graph statistics, entity search, read-only SPARQL and an entity's neighbourhood."),
    ]
    return [s for s in specs if s.script.is_file()]


def make_pages():
    """``{section: [st.Page, ...]}`` for st.navigation; the same objects st.page_link accepts."""
    import streamlit as st

    sections: dict[str, list] = {}
    for spec in page_specs():
        page = st.Page(spec.script, title=spec.title, icon=spec.icon, default=spec.is_home,
                       url_path=None if spec.is_home else spec.url_path)
        sections.setdefault(spec.section, []).append(page)
    return sections

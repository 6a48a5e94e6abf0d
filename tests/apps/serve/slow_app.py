"""An app factory for the SIGTERM test: a finance service whose batches take 1.5 s."""
from __future__ import annotations


def create():
    from kgfusion.apps.serve.app import create_app
    from kgfusion.apps.serve.services import Services
    from kgfusion.apps.serve.settings import ServeSettings
    from tests.apps.serve.conftest import SlowFinance

    return create_app(ServeSettings(), Services(finance=SlowFinance(seconds=1.5)))

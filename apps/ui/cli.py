"""``kgfusion ui``: start the Streamlit suite (apps/ui/app.py) with a local-only, no-telemetry setup."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import click

from kgfusion.core.errors import missing_extra

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_command(port: int, host: str, headless: bool) -> list[str]:
    """The ``python -m streamlit run`` command line for the suite (usage statistics off)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.port", str(port), "--server.address", host,
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]


@click.command("ui")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; 0.0.0.0 exposes the app to your network.")
@click.option("--headless", is_flag=True, help="Do not open a browser window (servers, containers, CI).")
def ui(port: int, host: str, headless: bool) -> None:
    """Start the Streamlit suite: home, finance, medical, recommend, models and knowledge pages."""
    if importlib.util.find_spec("streamlit") is None:
        raise missing_extra("streamlit", "ui")
    cmd = streamlit_command(port, host, headless)
    click.echo(f"kgfusion UI on http://{host}:{port}  (Ctrl+C stops it)", err=True)
    try:
        code = subprocess.call(cmd)
    except KeyboardInterrupt:
        code = 0
    if code:
        raise click.ClickException(f"streamlit exited with code {code} (command: {' '.join(cmd)}).")

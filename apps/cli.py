"""Root Click group ``kgfusion``. Sub-groups load lazily so ``--help`` stays fast (no torch import)."""
from __future__ import annotations

import importlib
import logging
import warnings

import click

from kgfusion.core.errors import KgfusionError

# name -> "module:attribute" of a click.Group; each app owns its own cli module.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "model": ("kgfusion.apps.model.cli:group", "Train, pretrain, evaluate, quantize and compress encoders."),
    "kg": ("kgfusion.apps.kg.cli:group", "Build and query the knowledge graphs; link mentions to entities."),
    "finance": ("kgfusion.apps.finance.cli:group", "Financial sentiment monitoring: score, link, aggregate, alert."),
    "medical": ("kgfusion.apps.medical.cli:group", "Clinical notes -> coded disease/drug mentions with ConText and KG links."),
    "recommend": ("kgfusion.apps.recommend.cli:group", "Movie recommendations with explanations: train, evaluate, batch-score."),
    "serve": ("kgfusion.apps.serve.cli:group", "Serve the apps over HTTP: micro-batching, API keys, limits, metrics."),
    "demo": ("kgfusion.apps.demo:demo", "Run the shipped demo end to end and print the results."),
    "ui": ("kgfusion.apps.ui.cli:ui", "Start the Streamlit suite: home, finance, medical, recommend, models, knowledge."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module_name, attr = SUBCOMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context):
        # User-facing errors print as one clear line with exit code 1, not a traceback.
        try:
            return super().invoke(ctx)
        except KgfusionError as exc:
            raise click.ClickException(str(exc)) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
@click.version_option(package_name="kgfusion")
def cli(verbose: bool) -> None:
    """kgfusion: domain NLP with knowledge-graph fusion, on your own CPU."""
    # Deprecation notices from transformers/peft internals are noise for a CLI user.
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


def main() -> None:
    """Console entry point."""
    cli()

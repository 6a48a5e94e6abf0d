"""Click options of the batch commands that run on the core batch engine (finance score / monitor,
medical extract; recommend score has its own): ``--engine``, ``--shard-size``, ``--restart``.

Kept free of pandas / Ray imports so ``--help`` stays fast.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

ENGINE_HELP = ("In-process, or on Ray (extra: distributed): a local Ray instance, or the cluster at "
               "$RAY_ADDRESS; each worker loads the model once.")


def engine_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                        help=ENGINE_HELP)(f)


def shard_size_option(default: int | None, what: str, extra: str = "",
                      ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--shard-size``: ``what`` per shard (the unit of resume and of work sent to a Ray worker)."""
    return click.option("--shard-size", type=click.IntRange(min=1), default=default, show_default=default is not None,
                        help=f"{what} per shard (the unit of resume and of work sent to a worker).{extra}")


def restart_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--restart", is_flag=True,
                        help="Discard finished shards of an earlier run (<out>.shards/) instead of resuming.")(f)

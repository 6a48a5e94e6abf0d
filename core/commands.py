"""The command line that reproduces a Click invocation: recorded in model cards and recipes."""
from __future__ import annotations

import click


def rebuild_command(ctx: click.Context, *, drop: tuple[str, ...] = ("as_json", "quiet")) -> list[str]:
    """``kgfusion <group> <command> --opt value ...`` for this invocation, options at their default omitted.

    ``drop`` names parameters that do not change the result (output format, progress bars).
    """
    words = ["kgfusion", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or param.name in drop or value == param.default:
            continue
        flag = param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0]
        values = value if param.multiple else [value]
        for v in values:
            words += [flag] if param.is_flag else [flag, str(v)]
    return words

"""``kgfusion serve``: the HTTP API on uvicorn (``--engine local``) or Ray Serve (``--engine ray``)."""
from __future__ import annotations

import sys

import click

from kgfusion.apps.common import chosen_variant, model_variant_option
from kgfusion.apps.serve.settings import APPS, ServeSettings, check_bind


def _apps(value: str) -> tuple[str, ...]:
    apps = tuple(a.strip() for a in value.split(",") if a.strip())
    bad = [a for a in apps if a not in APPS]
    if bad or not apps:
        raise click.BadParameter(f"{value!r}: use a comma-separated list of {', '.join(APPS)}", param_hint="--apps")
    return apps


@click.group("serve", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs --api-keys.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--api-keys", "api_keys", type=click.Path(dir_okay=False), default="",
              help="Keys file (lines 'NAME sha256:HEX [rate=R] [burst=B]'; make one with `kgfusion serve hash-key`).")
@click.option("--apps", "apps", default=",".join(APPS), show_default=True, help="Apps to serve (comma-separated).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: one uvicorn process; ray: Ray Serve replicas (RAY_ADDRESS selects a cluster).")
@click.option("--replicas", default=1, show_default=True, type=click.IntRange(1, 64), help="Ray Serve replicas.")
@click.option("--max-batch-size", default=128, show_default=True, type=click.IntRange(1, 100_000),
              help="Items per model batch (1 turns micro-batching off).")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0, 10_000),
              help="How long the first request of a batch waits for others.")
@click.option("--max-items", default=256, show_default=True, type=click.IntRange(1, 100_000),
              help="Items, notes or users per request.")
@click.option("--max-chars", default=50_000, show_default=True, type=click.IntRange(1), help="Characters per text.")
@click.option("--max-body-bytes", default=2 * 1024 * 1024, show_default=True, type=click.IntRange(1024))
@click.option("--rate-limit", default=20.0, show_default=True, type=click.FloatRange(0),
              help="Requests per second per API key (0 = unlimited).")
@click.option("--rate-burst", default=40, show_default=True, type=click.IntRange(1))
@click.option("--graceful-timeout", "graceful_timeout_s", default=30.0, show_default=True,
              type=click.FloatRange(0), help="Seconds SIGTERM waits for in-flight requests.")
@model_variant_option
@click.pass_context
def group(ctx: click.Context, host: str, port: int, api_keys: str, apps: str, engine: str, replicas: int,
          max_batch_size: int, max_wait_ms: float, max_items: int, max_chars: int, max_body_bytes: int,
          rate_limit: float, rate_burst: int, graceful_timeout_s: float) -> None:
    """Serve the finance, medical, recommend and KG APIs over HTTP (OpenAPI docs at /docs)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = ServeSettings(host=host, port=port, api_keys=api_keys, apps=_apps(apps), max_items=max_items,
                             max_chars=max_chars, max_body_bytes=max_body_bytes, max_batch_size=max_batch_size,
                             max_wait_ms=max_wait_ms, rate_limit=rate_limit, rate_burst=rate_burst,
                             graceful_timeout_s=graceful_timeout_s, model_variant=chosen_variant())
    settings.validate()
    check_bind(host, api_keys)
    if api_keys:
        from kgfusion.apps.serve.auth import KeyStore

        click.echo(f"{len(KeyStore.load(api_keys))} API key(s) from {api_keys}", err=True)
    if engine == "ray":
        from kgfusion.apps.serve.ray_engine import serve_on_ray

        serve_on_ray(settings, replicas=replicas)
        return
    run_local(settings)


def run_local(settings: ServeSettings) -> None:
    """uvicorn in this process; SIGTERM/SIGINT stop accepting, let in-flight requests finish, then exit."""
    import uvicorn

    from kgfusion.apps.serve.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info", access_log=False,
                            timeout_graceful_shutdown=int(settings.graceful_timeout_s) or None)
    click.echo(f"kgfusion serving {', '.join(settings.apps)} on http://{settings.host}:{settings.port} "
               f"(docs: /docs; ready when /readyz answers 200)", err=True)
    uvicorn.Server(config).run()


@group.command("hash-key")
@click.option("--name", required=True, help="Who the key is for (shown in logs and rate limits).")
@click.option("--rate", type=click.FloatRange(0), default=None, help="This key's own requests/s limit.")
@click.option("--burst", type=click.IntRange(1), default=None, help="This key's own burst size.")
def hash_key_command(name: str, rate: float | None, burst: int | None) -> None:
    """Make a new API key: prints the key (give it to the client) and the line for the keys file."""
    from kgfusion.apps.serve.auth import entry_line, new_key

    key = new_key()
    click.echo(f"key (give this to the client; it is not stored): {key}", err=True)
    click.echo(entry_line(name, key, rate, burst))
    sys.stdout.flush()

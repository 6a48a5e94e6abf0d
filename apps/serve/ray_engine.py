"""``kgfusion serve --engine ray``: the same FastAPI application on Ray Serve replicas.

``serve_on_ray(settings, replicas=N)`` connects to Ray (``RAY_ADDRESS`` selects a cluster; unset = a
local Ray in this process), starts the Serve HTTP proxy on ``settings.host:settings.port`` and deploys
one deployment of ``N`` replicas. Nothing heavy is pickled: each replica receives only
``settings.to_dict()`` and an optional ``loader_path`` string, builds its own services (the models load
once per replica, in the replica) and wraps them in ``create_app`` through the ``@serve.ingress``
builder-function form; Ray Serve runs the app's lifespan in the replica (batchers stop on replica
shutdown). Services load in the replica constructor, so Ray only routes traffic to a replica whose
models are loaded and ``serve_on_ray`` returns once every replica is ready.

The keys file (``settings.api_keys``) is passed as an absolute path; on a cluster it must exist at that
path on every node. Every failure is a one-line ``KgfusionError``/``ConfigError``.
"""
from __future__ import annotations

import importlib
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgfusion.apps.serve.settings import ServeSettings, check_bind
from kgfusion.core.errors import ConfigError, KgfusionError, missing_extra

log = logging.getLogger("kgfusion.serve")
APP_NAME = "kgfusion"
DEPLOYMENT_NAME = "kgfusion-api"


@dataclass
class RayServing:
    """What ``serve_on_ray(..., blocking=False)`` returns: the URL, the ingress handle and how to stop."""

    url: str
    handle: Any
    address: str | None  # RAY_ADDRESS used, None = local Ray
    started_ray: bool

    def stop(self) -> None:
        _teardown(self.address, self.started_ray)


# ----------------------------------------------------------------------------------------- replica side
def resolve_loader(loader_path: str) -> Callable[[], Any]:
    """``"package.module:function"`` -> the function (ConfigError naming what is wrong)."""
    module_name, sep, attr = loader_path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"loader {loader_path!r}: write it as 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"loader {loader_path!r}: cannot import {module_name!r} ({exc})") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"loader {loader_path!r}: {module_name} has no function {attr!r}")
    return fn


def build_replica_app(settings_dict: dict[str, Any], loader_path: str | None = None) -> Any:
    """Inside a replica: settings from their dict, the services loaded here, the FastAPI app over them."""
    from kgfusion.apps.serve.app import create_app
    from kgfusion.apps.serve.services import Services

    settings = ServeSettings.from_dict(settings_dict)
    services = (resolve_loader(loader_path)() if loader_path
                else Services.load(settings.apps, model_variant=settings.model_variant))
    log.info("replica %s loaded: %s", os.getpid(),
             ", ".join(f"{i.app}={i.name}@{i.version}" for i in services.infos()) or "no services")
    return create_app(settings, services)


def _builder(settings_dict: dict[str, Any], loader_path: str | None) -> Callable[[], Any]:
    # A plain function (serve.ingress calls it on each replica at init); it closes over a dict and a string.
    def build_kgfusion_app() -> Any:
        return build_replica_app(settings_dict, loader_path)

    return build_kgfusion_app


# ----------------------------------------------------------------------------------------- driver side
def _import_ray() -> tuple[Any, Any]:
    try:
        import ray
    except ImportError as exc:
        raise missing_extra("ray", "distributed") from exc
    try:
        from ray import serve
    except ImportError as exc:
        raise missing_extra("ray[serve]", "distributed") from exc
    return ray, serve


_ERROR_LINE = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception|Interrupt|Exit)\b.*:")


def _one_line(exc: BaseException | str, limit: int = 300) -> str:
    """One line for an error whose text may embed a whole remote traceback: its last 'XError: ...' line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if _ERROR_LINE.match(ln)]
    text = errors[-1] if errors else (lines[-1] if lines else "")
    if isinstance(exc, BaseException) and not errors:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _replica_failure(serve: Any) -> str:
    """Why the deployment failed, from Serve's status (a replica's constructor traceback), or ""."""
    try:
        deployment = serve.status().applications[APP_NAME].deployments[DEPLOYMENT_NAME]
    except Exception:  # noqa: BLE001 - only an extra hint
        return ""
    return _one_line(deployment.message or "") if deployment.message else ""


def _check_port_free(host: str, port: int) -> None:
    if port == 0:
        raise ConfigError("--port 0 is not supported with --engine ray; pick a port")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host.strip("[]"), port))
        except OSError as exc:
            raise KgfusionError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop what uses the "
                                "port or pass another --port") from exc


def _connect(ray: Any, replicas: int) -> tuple[str | None, bool]:
    """ray.init for RAY_ADDRESS (a cluster) or a local Ray; (address, whether this call started Ray)."""
    address = os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        log.info("Ray: using the Ray this process is already connected to")
        return address, False
    if address:
        log.info("Ray: connecting to the cluster at RAY_ADDRESS=%s", address)
    else:
        log.info("Ray: no RAY_ADDRESS set; starting a local Ray in this process")
    kwargs: dict[str, Any] = {} if address else {"include_dashboard": False}
    try:
        ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        where = f"the Ray cluster at RAY_ADDRESS={address}" if address else "a local Ray"
        raise KgfusionError(f"cannot start {where}: {_one_line(exc)}") from exc
    if not address:
        cpus = ray.cluster_resources().get("CPU", 0)
        if replicas > cpus:
            _teardown(None, True)
            raise ConfigError(f"--replicas {replicas} needs {replicas} CPUs (one per replica) but the local Ray "
                              f"has {cpus:g}; use --replicas {max(1, int(cpus))} or a cluster (RAY_ADDRESS)")
    return address, True


def _teardown(address: str | None, started_ray: bool) -> None:
    """Local Ray: shut Serve and Ray down. Cluster: delete only our application, leave Serve running."""
    import ray
    from ray import serve

    try:
        if address:
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
    except Exception as exc:  # noqa: BLE001 - best effort on the way out
        log.warning("stopping Ray Serve: %s", _one_line(exc))
    if started_ray and ray.is_initialized():
        ray.shutdown()


def _options(serve: Any, settings: ServeSettings, replicas: int) -> dict[str, Any]:
    import inspect

    params = inspect.signature(serve.deployment).parameters
    # Ray's default (5 in-flight requests per replica) would starve the micro-batcher.
    ongoing = max(100, 2 * settings.max_batch_size)
    options: dict[str, Any] = {"name": DEPLOYMENT_NAME, "num_replicas": replicas,
                               "graceful_shutdown_timeout_s": settings.graceful_timeout_s}
    options["max_ongoing_requests" if "max_ongoing_requests" in params else "max_concurrent_queries"] = ongoing
    return options


def serve_on_ray(settings: ServeSettings, replicas: int = 1, *, loader_path: str | None = None,
                 blocking: bool = True) -> RayServing | None:
    """Deploy the API on Ray Serve with ``replicas`` replicas at ``settings.host:settings.port``.

    ``loader_path`` ("module:function" returning ``Services``) replaces ``Services.load(settings.apps)``.
    ``blocking``: serve until SIGINT/SIGTERM, then stop Serve; else return a ``RayServing``.
    """
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= 1024:
        raise ConfigError(f"replicas={replicas!r}; allowed range [1, 1024]")
    settings.validate()
    check_bind(settings.host, settings.api_keys)
    data = settings.to_dict()
    if settings.api_keys:
        from kgfusion.apps.serve.auth import KeyStore

        keys = Path(settings.api_keys).expanduser().resolve()
        KeyStore.load(keys)  # a bad keys file fails here, in one line, not in every replica
        data["api_keys"] = str(keys)
    if loader_path:
        resolve_loader(loader_path)

    ray, serve = _import_ray()
    address = os.environ.get("RAY_ADDRESS") or None
    if not address:
        _check_port_free(settings.host, settings.port)
    address, started = _connect(ray, replicas)
    # After ray.init (which installs its own SIGTERM handler): SIGTERM, like Ctrl-C, stops us cleanly,
    # during the deployment as well as while serving.
    previous = _stop_on_sigterm() if blocking else None
    try:
        serving = _deploy(serve, settings, data, replicas, loader_path, address, started)
        if not blocking:
            return serving
        import click

        where = f"the Ray cluster at {address}" if address else "a local Ray"
        click.echo(f"kgfusion serving {', '.join(settings.apps)} on {serving.url} with {replicas} Ray Serve "
                   f"replica(s) on {where} (docs: /docs; Ctrl-C or SIGTERM stops)", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo(f"stopping Ray Serve (in-flight requests get up to {settings.graceful_timeout_s:g} s)",
                       err=True)
            serving.stop()
        return None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _deploy(serve: Any, settings: ServeSettings, data: dict[str, Any], replicas: int, loader_path: str | None,
            address: str | None, started: bool) -> RayServing:
    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        ingress = serve.ingress(_builder(data, loader_path))()
        deployment = serve.deployment(ingress, **_options(serve, settings, replicas))
        handle = serve.run(deployment.bind(), name=APP_NAME, route_prefix="/")
    except KeyboardInterrupt:
        _teardown(address, started)
        raise KgfusionError("interrupted while deploying on Ray Serve; stopped") from None
    except Exception as exc:  # noqa: BLE001 - one line for the user; the replica logs have the rest
        reason = _replica_failure(serve) or _one_line(exc)
        _teardown(address, started)
        raise KgfusionError(f"deploying kgfusion on Ray Serve failed: {reason}") from exc
    url = f"http://{settings.host}:{settings.port}"
    where = f"the Ray cluster at {address}" if address else "a local Ray"
    log.info("kgfusion serving %s on %s with %d replica(s) on %s", ", ".join(settings.apps), url, replicas, where)
    return RayServing(url=url, handle=handle, address=address, started_ray=started)


def _stop_on_sigterm() -> Any:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: SIGTERM keeps its current meaning
        return None

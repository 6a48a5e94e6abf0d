"""The HTTP API: ``create_app(settings, services)`` -> a FastAPI application (uvicorn or Ray Serve runs it).

Routes: POST /v1/finance/score, POST /v1/medical/extract (?format=fhir), POST /v1/recommend,
GET /v1/kg/link, POST /v1/kg/sparql, GET /healthz, /readyz, /metrics, /docs. Model routes go through
one MicroBatcher per app, so concurrent requests share a model batch. Every answer carries the bundle
name and version it came from (``model`` in the body, ``X-Kgfusion-Model: name@version`` header).
The ``Gate`` middleware runs before any route: body size limit, UTF-8 check, API key and per-key rate
limit, request metrics. Errors always have the shape ``{"error", "detail", "field"}``, never a trace.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from kgfusion.apps.serve.auth import KeyStore, RateLimiter, bearer_token
from kgfusion.apps.serve.batching import BatcherClosed, MicroBatcher
from kgfusion.apps.serve.errors import STATUS_CODES, ApiError, error_bytes, validation_error
from kgfusion.apps.serve.metrics import ServeMetrics
from kgfusion.apps.serve.services import ModelInfo, Services
from kgfusion.apps.serve.settings import ServeSettings

log = logging.getLogger("kgfusion.serve")
OPEN_PATHS = {"/healthz", "/readyz", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}
ROUTES = ("/v1/finance/score", "/v1/medical/extract", "/v1/recommend", "/v1/kg/link", "/v1/kg/sparql",
          "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")


# ----------------------------------------------------------------------------------------- request bodies
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FinanceItem(_Strict):
    text: str = Field(min_length=1, description="the post or headline")
    id: str | None = Field(None, max_length=256, description="your id; default: a hash of source, text and time")
    time: str | None = Field(None, description="ISO 8601 time of the item")
    ticker: str | None = Field(None, max_length=16, description="ticker hint (e.g. the cashtag it was found under)")


class FinanceRequest(_Strict):
    items: list[FinanceItem] = Field(min_length=1)


class MedicalNote(_Strict):
    text: str = Field(min_length=1)
    id: str | None = Field(None, max_length=256)


class MedicalRequest(_Strict):
    notes: list[MedicalNote] = Field(min_length=1)


class RecommendRequest(_Strict):
    users: list[int] = Field(min_length=1, description="user ids; unknown ids get a cold-start list")
    k: int = Field(10, ge=1)


class SparqlRequest(_Strict):
    query: str = Field(min_length=1)
    graph: str = "finance"
    limit: int | None = Field(None, ge=1)


# ----------------------------------------------------------------------------------------- state
class ServerState:
    """Services (loaded at startup unless given), their batchers, keys, rate limits and metrics."""

    def __init__(self, settings: ServeSettings, services: Services | None,
                 loader: Callable[[], Services] | None) -> None:
        self.settings = settings
        self.metrics = ServeMetrics()
        self.keys = KeyStore.load(settings.api_keys) if settings.api_keys else None
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        self.services: Services | None = None
        self.loader = loader or (lambda: Services.load(settings.apps, model_variant=settings.model_variant))
        self.load_error = ""
        self.batchers: dict[str, MicroBatcher] = {}
        self.sparql_slots = threading.BoundedSemaphore(settings.sparql_concurrency)
        self._lock = threading.Lock()
        if services is not None:
            self._install(services)

    def _install(self, services: Services) -> None:
        s = self.settings
        for app in ("finance", "medical", "recommend"):
            svc = getattr(services, app)
            if svc is not None:
                self.batchers[app] = MicroBatcher(svc.run_batch, name=app, max_batch_size=s.max_batch_size,
                                                  max_wait_ms=s.max_wait_ms, observer=self.metrics)
        for info in services.infos():
            self.metrics.model_loaded(info.app, info.name, info.version, info.backend)
        self.services = services

    def load(self) -> None:
        try:
            self._install(self.loader())
        except Exception as exc:  # noqa: BLE001 - /readyz reports it
            log.exception("loading the services failed")
            self.load_error = f"{type(exc).__name__}: {exc}"

    @property
    def ready(self) -> bool:
        return self.services is not None

    def service(self, app: str) -> Any:
        if self.services is None:
            raise ApiError(503, "not_ready", "the models are still loading; retry when /readyz answers 200")
        svc = getattr(self.services, app, None)
        if svc is None:
            why = self.services.errors.get(app)
            if why:
                raise ApiError(503, "app_unavailable", f"the {app} app failed to load: {why}")
            raise ApiError(404, "app_not_served", f"this server does not serve the {app} app "
                           f"(started with apps: {', '.join(self.settings.apps)})")
        return svc

    async def stop(self) -> None:
        for b in self.batchers.values():
            await b.stop(self.settings.graceful_timeout_s)


# ----------------------------------------------------------------------------------------- middleware
class Gate:
    """Pure ASGI middleware: limits, UTF-8, keys, rate limits and request metrics before any route."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in ROUTES else "unmatched"
        started = time.perf_counter()
        status_box = [500]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            await send(message)

        m = self.state.metrics
        m.in_flight.inc()
        try:
            problem = self._check_auth(scope, path)
            if problem is None:
                body, problem = await self._read_body(scope, receive)
            if problem is not None:
                await _send_error(send_wrapper, problem)
                return
            await self.app(scope, _replay(body), send_wrapper)
        finally:
            m.in_flight.dec()
            m.observe_request(route, scope.get("method", ""), status_box[0], time.perf_counter() - started)

    def _check_auth(self, scope: dict, path: str) -> ApiError | None:
        keys = self.state.keys
        if keys is None or path in OPEN_PATHS:
            return None
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"authorization")
        token = bearer_token(raw.decode("latin-1") if raw else None)
        key = keys.verify(token) if token else None
        if key is None:
            detail = ("send the API key as 'Authorization: Bearer KEY'" if not token
                      else "the API key is not valid")
            return ApiError(401, "unauthorized", detail, "Authorization", {"WWW-Authenticate": "Bearer"})
        ok, wait = self.state.limiter.allow(key.name, key.rate, key.burst)
        if not ok:
            return ApiError(429, "rate_limited", f"key {key.name!r} is over its rate limit; retry in {wait:.2f} s",
                            None, {"Retry-After": str(max(1, round(wait + 0.5)))})
        scope.setdefault("state", {})["api_key"] = key.name
        return None

    async def _read_body(self, scope: dict, receive: Callable) -> tuple[bytes, ApiError | None]:
        limit = self.state.settings.max_body_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_big = ApiError(413, "payload_too_large", f"the request body is over {limit} bytes; send fewer or "
                           "shorter items per request")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return b"", too_big
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and scope.get("method") in ("POST", "PUT", "PATCH"):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                return b"", ApiError(400, "invalid_utf8", f"the body is not valid UTF-8 (byte {exc.start}); "
                                     "send JSON encoded as UTF-8")
        return body, None


def _replay(body: bytes) -> Callable[[], Awaitable[dict]]:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that stays connected: nothing more arrives
        return {"type": "http.disconnect"}

    return receive


async def _send_error(send: Callable, err: ApiError) -> None:
    body = error_bytes(err.error, err.detail, err.field)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ----------------------------------------------------------------------------------------- helpers
def _reply(info: ModelInfo, payload: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"model": info.to_dict(), **payload}, status_code=status,
                        headers={"X-Kgfusion-Model": f"{info.name}@{info.version}"})


def _check_items(settings: ServeSettings, field: str, texts: list[str]) -> None:
    if len(texts) > settings.max_items:
        raise ApiError(413, "too_many_items", f"{len(texts)} {field} in one request; the limit is "
                       f"{settings.max_items} (split the request)", field)
    for i, text in enumerate(texts):
        _check_length(settings, f"{field}[{i}].text", text)
        if not text.strip():
            raise ApiError(422, "empty_text", f"{field}[{i}].text is blank", f"{field}[{i}].text")


def _check_length(settings: ServeSettings, field: str, text: str) -> None:
    if len(text) > settings.max_chars:
        raise ApiError(413, "text_too_long", f"{field} has {len(text)} characters; the limit is "
                       f"{settings.max_chars}", field)


async def _batched(state: ServerState, app: str, items: list[Any]) -> list[Any]:
    try:
        return await asyncio.wait_for(state.batchers[app].submit(items), state.settings.request_timeout_s)
    except asyncio.TimeoutError as exc:
        raise ApiError(504, "timeout", f"the {app} model did not answer within {state.settings.request_timeout_s} s; "
                       "retry with fewer items") from exc
    except BatcherClosed as exc:
        raise ApiError(503, "shutting_down", str(exc)) from exc


# ----------------------------------------------------------------------------------------- the app
def create_app(settings: ServeSettings | None = None, services: Services | None = None, *,
               loader: Callable[[], Services] | None = None) -> FastAPI:
    """The API over ``services`` (or over what ``loader``/``Services.load`` builds at startup)."""
    settings = settings or ServeSettings()
    settings.validate()
    state = ServerState(settings, services, loader)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        loading = None
        if not state.ready:  # load in a thread: /healthz answers while the models load
            loading = asyncio.get_running_loop().run_in_executor(None, state.load)
        yield
        if loading is not None:
            with contextlib.suppress(Exception):
                await loading
        await state.stop()

    app = FastAPI(title="kgfusion", version="1", lifespan=lifespan,
                  description="Financial sentiment, clinical NER and recommendations with knowledge-graph "
                              "evidence. Errors: {\"error\", \"detail\", \"field\"}.")
    app.state.kgfusion = state

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = validation_error(exc.errors(), getattr(exc, "body", None))
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404:
            detail = "no such route; see /docs for the API"
        return JSONResponse({"error": code, "detail": detail, "field": None}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"error": "internal_error", "detail": "the server failed on this request; its log "
                             "has the cause", "field": None}, status_code=500)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up (models may still be loading)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """200 with the loaded models once every service is loaded, else 503 with the reason."""
        if not state.ready:
            detail = state.load_error or "the models are still loading"
            return JSONResponse({"error": "not_ready", "detail": detail, "field": None}, status_code=503)
        assert state.services is not None
        body = {"status": "ready", "models": [{"app": i.app, **i.to_dict()} for i in state.services.infos()],
                "failed": state.services.errors}
        return JSONResponse(body, status_code=503 if state.services.errors else 200)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    @app.post("/v1/finance/score", tags=["finance"])
    async def finance_score(req: FinanceRequest) -> JSONResponse:
        """Sentiment (label, score = P(pos) - P(neg), probabilities), linked companies and sectors, evidence."""
        svc = state.service("finance")
        _check_items(settings, "items", [it.text for it in req.items])
        state.metrics.items.labels("/v1/finance/score").inc(len(req.items))
        items = [it.model_dump() for it in req.items]
        for i, it in enumerate(items):
            if it["time"]:
                try:
                    _parse_time(it["time"])
                except ValueError as exc:
                    raise ApiError(422, "invalid_value", f"items[{i}].time {it['time']!r} is not an ISO 8601 "
                                   "time (e.g. 2020-01-31T14:05:00Z)", f"items[{i}].time") from exc
        results = await _batched(state, "finance", items)
        return _reply(svc.info, {"results": results})

    @app.post("/v1/medical/extract", tags=["medical"])
    async def medical_extract(req: MedicalRequest, format: Literal["json", "fhir"] = "json") -> JSONResponse:
        """Mentions with spans, label, ConText attributes, section and KG concept; ?format=fhir -> FHIR R4 Bundle."""
        svc = state.service("medical")
        _check_items(settings, "notes", [n.text for n in req.notes])
        notes = [{"id": n.id or f"note-{i + 1}", "text": n.text} for i, n in enumerate(req.notes)]
        for i, n in enumerate(notes):
            try:
                svc.check(n["text"], n["id"])
            except ApiError as exc:
                exc.field = f"notes[{i}].text"
                raise
        state.metrics.items.labels("/v1/medical/extract").inc(len(notes))
        results = await _batched(state, "medical", notes)
        if format == "fhir":
            from kgfusion.apps.medical.export import to_fhir

            bundle, summary = to_fhir(results)
            bundle["meta"] = {"tag": [{"system": "https://kgfusion.dev/model", "code": svc.info.name,
                                       "version": svc.info.version}]}
            return JSONResponse(bundle, media_type="application/fhir+json",
                                headers={"X-Kgfusion-Model": f"{svc.info.name}@{svc.info.version}"})
        return _reply(svc.info, {"results": [r.to_dict(include_text=False) for r in results]})

    @app.post("/v1/recommend", tags=["recommend"])
    async def recommend(req: RecommendRequest) -> JSONResponse:
        """Top-k items per user with score, explanation and evidence; unknown users get cold-start lists."""
        svc = state.service("recommend")
        if len(req.users) > settings.max_items:
            raise ApiError(413, "too_many_items", f"{len(req.users)} users in one request; the limit is "
                           f"{settings.max_items}", "users")
        if req.k > settings.max_k:
            raise ApiError(413, "k_too_large", f"k={req.k}; the limit is {settings.max_k}", "k")
        users = list(dict.fromkeys(req.users))
        state.metrics.items.labels("/v1/recommend").inc(len(users))
        lists = await _batched(state, "recommend", [(u, req.k) for u in users])
        results = [{"user_id": u, "known_user": svc.is_known(u), "cold_start": not svc.is_known(u), "items": items}
                   for u, items in zip(users, lists)]
        return _reply(svc.info, {"results": results})

    @app.get("/v1/kg/link", tags=["kg"])
    async def kg_link(mention: str = Query(..., min_length=1), graph: str = "medical",
                      k: int = Query(5, ge=1, le=50)) -> JSONResponse:
        """Link a mention to KG entities (exact, normalised, n-gram, then embedding match)."""
        svc = state.service("kg")
        _check_length(settings, "mention", mention)
        svc.require(graph)
        linker = await run_in_threadpool(svc.linker, graph)
        result = (await run_in_threadpool(linker.link_many, [mention], None, k))[0]
        return _reply(svc.info, {"graph": graph, "result": result.to_dict()})

    @app.post("/v1/kg/sparql", tags=["kg"])
    async def kg_sparql(req: SparqlRequest) -> JSONResponse:
        """A read-only SPARQL query (SELECT/ASK/CONSTRUCT/DESCRIBE), time-limited and row-capped."""
        from kgfusion.knowledge.sparql import QueryTimeout, SparqlError

        svc = state.service("kg")
        _check_length(settings, "query", req.query)
        svc.require(req.graph)
        if not state.sparql_slots.acquire(blocking=False):
            raise ApiError(429, "busy", f"{settings.sparql_concurrency} SPARQL queries are running; retry shortly")
        try:
            kg = await run_in_threadpool(svc.kg, req.graph)
            rows = await run_in_threadpool(lambda: kg.query(req.query, limit=req.limit,
                                                            timeout_s=settings.sparql_timeout_s,
                                                            max_rows=settings.sparql_max_rows))
        except QueryTimeout as exc:
            raise ApiError(504, "timeout", f"the query ran past {settings.sparql_timeout_s} s and was stopped",
                           "query") from exc
        except SparqlError as exc:
            raise ApiError(400, "invalid_query", str(exc), "query") from exc
        finally:
            state.sparql_slots.release()
        return _reply(svc.info, {"graph": req.graph, "rows": list(rows), "truncated": bool(rows.truncated)})

    app.add_middleware(Gate, state=state)
    return app


def _parse_time(value: str) -> None:
    import pandas as pd

    pd.Timestamp(value)

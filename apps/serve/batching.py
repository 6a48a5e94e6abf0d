"""MicroBatcher: concurrent requests to one model become one model batch, run off the event loop.

A request submits a list of items and awaits its results. The batcher's worker task takes the oldest
waiting request, then gathers more until the batch holds ``max_batch_size`` items or the oldest request
has waited ``max_wait_ms``; a request never splits across batches (one larger than ``max_batch_size``
runs alone). The batch function ``fn(items) -> results`` (one result per item, same order) runs in a
single worker thread, so the loop keeps serving; results are sliced back to their requests in order.

A waiter that is cancelled (client gone, request time-out) only loses its own result: requests
cancelled while queued are skipped, and a cancelled waiter in a running batch is ignored when the
results are handed out. An exception in ``fn`` reaches every waiter of that batch. ``stop()`` refuses
new requests and drains the queue (used on SIGTERM after the server stops accepting connections).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kgfusion.core.errors import ConfigError, KgfusionError

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


class BatcherClosed(KgfusionError):
    """The batcher is shutting down and takes no new requests."""


class BatchContractError(KgfusionError):
    """The batch function returned a different number of results than it was given items."""


class BatchObserver(Protocol):
    def observe_batch(self, name: str, items: int, requests: int, seconds: float) -> None: ...

    def set_queue_depth(self, name: str, depth: int) -> None: ...


@dataclass
class _Pending:
    items: list[Any]
    future: asyncio.Future
    enqueued: float


_STOP = object()


class MicroBatcher(Generic[T, R]):
    """Gather concurrent ``submit`` calls into batches for ``fn`` (see the module docstring).

    ``max_batch_size`` >= 1 items; ``max_wait_ms`` >= 0; ``observer`` receives batch sizes and queue
    depth (metrics.ServeMetrics); ``executor`` defaults to one thread owned by the batcher.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, name: str = "model", max_batch_size: int = 32,
                 max_wait_ms: float = 5.0, observer: BatchObserver | None = None,
                 executor: ThreadPoolExecutor | None = None) -> None:
        if not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigError(f"MicroBatcher max_batch_size={max_batch_size!r}; use a whole number >= 1")
        if not max_wait_ms >= 0:
            raise ConfigError(f"MicroBatcher max_wait_ms={max_wait_ms!r}; use a number >= 0")
        self.fn = fn
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_wait_s = float(max_wait_ms) / 1000.0
        self.observer = observer
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kgfusion-{name}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._closed = False
        self._waiting = 0  # requests queued (not yet in a running batch)
        self.batches = 0  # batches run so far

    # ------------------------------------------------------------------------------- public API
    async def submit(self, items: Sequence[T]) -> list[R]:
        """The results of ``items`` (in order), computed in a batch with other concurrent requests."""
        if self._closed:
            raise BatcherClosed(f"the {self.name} batcher is shutting down; retry on another instance")
        items = list(items)
        if not items:
            return []
        queue = self._ensure_worker()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        queue.put_nowait(_Pending(items, fut, loop.time()))
        self._waiting += 1
        self._report_depth()
        return await fut

    @property
    def queue_depth(self) -> int:
        return self._waiting

    async def stop(self, timeout_s: float | None = None) -> None:
        """Take no new requests; finish every queued one (at most ``timeout_s``), then stop the thread."""
        self._closed = True
        worker = self._worker
        if worker is not None and not worker.done() and self._loop is asyncio.get_running_loop():
            assert self._queue is not None
            self._queue.put_nowait(_STOP)
            try:
                await asyncio.wait_for(asyncio.shield(worker), timeout_s)
            except asyncio.TimeoutError:
                log.warning("%s batcher: queue not drained after %s s; cancelling", self.name, timeout_s)
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        if self._own_executor:
            self._executor.shutdown(wait=False)

    # ------------------------------------------------------------------------------- worker
    def _ensure_worker(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            # first use, or a new event loop (a test client per request): a fresh queue and worker
            self._loop = loop
            self._queue = asyncio.Queue()
            self._waiting = 0
            self._worker = loop.create_task(self._run(self._queue), name=f"kgfusion-batcher-{self.name}")
        assert self._queue is not None
        return self._queue

    def _report_depth(self) -> None:
        if self.observer is not None:
            self.observer.set_queue_depth(self.name, self._waiting)

    def _take(self, entry: Any) -> Any:
        if entry is not _STOP:
            self._waiting -= 1
            self._report_depth()
        return entry

    async def _run(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        carry: Any = None
        while True:
            first = carry if carry is not None else self._take(await queue.get())
            carry = None
            if first is _STOP:
                return
            if first.future.done():  # cancelled while queued: nothing to compute
                continue
            batch, size = [first], len(first.items)
            deadline = first.enqueued + self.max_wait_s
            while size < self.max_batch_size:
                try:
                    nxt = self._take(queue.get_nowait())
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        nxt = self._take(await asyncio.wait_for(queue.get(), remaining))
                    except asyncio.TimeoutError:
                        break
                if nxt is _STOP:
                    carry = _STOP
                    break
                if nxt.future.done():
                    continue
                if size + len(nxt.items) > self.max_batch_size:
                    carry = nxt
                    break
                batch.append(nxt)
                size += len(nxt.items)
            await self._execute(loop, batch)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        flat = [x for p in batch for x in p.items]
        started = time.perf_counter()
        try:
            results = list(await loop.run_in_executor(self._executor, self.fn, flat))
            if len(results) != len(flat):
                raise BatchContractError(f"the {self.name} batch function returned {len(results)} results "
                                         f"for {len(flat)} items")
        except asyncio.CancelledError:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(BatcherClosed(f"the {self.name} batcher stopped mid-batch"))
            raise
        except Exception as exc:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        finally:
            self.batches += 1
            if self.observer is not None:
                self.observer.observe_batch(self.name, len(flat), len(batch), time.perf_counter() - started)
        pos = 0
        for p in batch:
            n = len(p.items)
            if not p.future.done():  # a waiter that gave up is skipped, the others get theirs
                p.future.set_result(results[pos:pos + n])
            pos += n

"""One generation at a time per model, in arrival order, on the model's own thread; an async face for the API."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from server.llm.generation import ChatModel, Completion, SamplingParams

logger = logging.getLogger(__name__)

Item = str | Completion | BaseException


@dataclass
class Job:
    prompt_ids: list[int]
    params: SamplingParams
    emit: Callable[[Item], None]  # thread-safe: called from the model's thread
    cancel: threading.Event = field(default_factory=threading.Event)


class ModelRunner:
    """Runs the jobs of one model on one thread, first come first served; a cancelled waiting job is skipped."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._active = 0
        self._queued = 0
        self._served = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"llm-{self.model.name}", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout)
            self._thread = None

    def stats(self) -> dict[str, int]:
        """Generations running now (0 or 1), waiting, and finished since start."""
        with self._lock:
            return {"active": self._active, "queued": self._queued, "served": self._served}

    def submit(self, job: Job) -> None:
        with self._lock:
            self._queued += 1
        self._jobs.put(job)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            with self._lock:
                self._queued -= 1
                skip = job.cancel.is_set()
                self._active += 0 if skip else 1
            if not skip:
                self._run(job)

    def _run(self, job: Job) -> None:
        try:
            job.emit(self.model.generate(job.prompt_ids, job.params, on_text=job.emit, cancel=job.cancel))
        except Exception as error:
            logger.exception("generation failed on model %s", self.model.name)
            job.emit(error)
        finally:
            with self._lock:
                self._active -= 1
                self._served += 1

    async def stream(self, prompt_ids: list[int], params: SamplingParams) -> AsyncGenerator[str | Completion, None]:
        """Text pieces, then one Completion. Leaving the loop early (a client gone) cancels the generation."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[Item] = asyncio.Queue()

        def emit(item: Item) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the event loop is closed: nobody is listening any more
                job.cancel.set()

        job = Job(prompt_ids, params, emit)
        self.submit(job)
        try:
            while True:
                item = await items.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Completion):
                    return
        finally:
            job.cancel.set()

    async def complete(self, prompt_ids: list[int], params: SamplingParams) -> tuple[str, Completion]:
        """The whole answer and how it ended."""
        pieces: list[str] = []
        async for item in self.stream(prompt_ids, params):
            if isinstance(item, Completion):
                return "".join(pieces), item
            pieces.append(item)
        raise RuntimeError("the generation ended without a result")  # unreachable: stream ends with a Completion


def describe(runner: ModelRunner) -> dict[str, Any]:
    """Public facts about a served model (no paths to secrets: the folder and limits only)."""
    spec = runner.model.spec
    return {
        "context_length": spec.context_length,
        "max_new_tokens": spec.max_new_tokens,
        **runner.stats(),
    }

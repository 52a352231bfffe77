"""The worker's models: loaded on first use or on request, unloaded least recently used first to fit a budget.

Decisions (what to load, what to unload to make room) are taken one at a time under one asyncio lock, with the
estimate of each model known before any memory is taken; loading runs on a thread so the worker keeps answering
(progress included). A model answering requests, or held by one being prepared, is never unloaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from server.errors import ModelLoadError, ModelTooLarge, NoRoomForModel, UnknownModel
from server.llm.adapters import check_adapter_base
from server.llm.generation import ChatModel
from server.llm.memory import GIB, MemoryBudget, Pool, estimate_bytes, pool_of, release_memory
from server.llm.runner import ModelRunner
from server.llm.spec import ModelSpec, check_folder

logger = logging.getLogger(__name__)

State = Literal["unloaded", "loading", "loaded", "failed"]
Loader = Callable[[ModelSpec, Callable[[str], None]], ChatModel]
Catalog = Callable[[], Mapping[str, ModelSpec]]
_STAGE_PROGRESS = {"queued": 0.0, "tokenizer": 0.05, "weights": 0.1, "adapter": 0.9, "ready": 1.0}


@dataclass
class _Slot:
    spec: ModelSpec
    state: State = "unloaded"
    runner: ModelRunner | None = None
    task: asyncio.Task[None] | None = None
    pool: Pool = "cpu"
    bytes: int = 0
    stage: str = ""
    started: float = 0.0
    last_used: float = 0.0
    holds: int = 0
    error: str = ""
    served_before: int = 0

    def busy(self) -> bool:
        if self.holds:
            return True
        stats = self.runner.stats() if self.runner else {"active": 0, "queued": 0}
        return bool(stats["active"] or stats["queued"])


@dataclass(frozen=True)
class ModelStatus:
    """What the worker says about one model."""

    name: str
    state: State
    device: Pool
    bytes: int
    progress: float
    stage: str
    elapsed_s: float
    error: str
    last_used: float
    stats: dict[str, int] = field(default_factory=dict)
    context_length: int = 0
    max_new_tokens: int = 0


def _check_files(spec: ModelSpec) -> None:
    check_folder(spec)
    if spec.adapter:
        check_adapter_base(spec.name, Path(spec.adapter), Path(spec.path))


def _placement(spec: ModelSpec) -> tuple[Pool, int]:
    from server.llm.loading import resolve_device, resolve_dtype

    device = resolve_device(spec.device, spec.name)
    dtype = str(resolve_dtype(spec.dtype, device)).removeprefix("torch.")
    return pool_of(device), estimate_bytes(spec, dtype)


class ModelPool:
    """Every model of `catalog`, each unloaded, loading, loaded or failed, within `budget`."""

    def __init__(self, catalog: Catalog, budget: MemoryBudget, loader: Loader) -> None:
        self._catalog = catalog
        self._budget = budget
        self._loader = loader
        self._slots: dict[str, _Slot] = {}
        self._decide = asyncio.Lock()
        self.refresh()

    def refresh(self) -> None:
        """Pick up models added to the catalog since (a fine-tuned adapter registered while the worker runs)."""
        for name, spec in self._catalog().items():
            if name not in self._slots:
                self._slots[name] = _Slot(spec)

    def names(self) -> list[str]:
        return list(self._slots)

    def _slot(self, name: str | None) -> _Slot:
        if name is None:
            loaded = [slot for slot in self._slots.values() if slot.state == "loaded"]
            return max(loaded, key=lambda slot: slot.last_used) if loaded else next(iter(self._slots.values()))
        if name not in self._slots:
            self.refresh()
        if name not in self._slots:
            raise UnknownModel(f"model {name!r} is not served by this worker; served: {', '.join(self._slots)}")
        return self._slots[name]

    def check_all(self) -> None:
        """At start-up, before any memory is taken: every folder, adapter, device and quantization can work
        (ModelLoadError), and the budget fits at least one model (ModelTooLarge)."""
        from server.llm.loading import check_quantization

        for slot in self._slots.values():
            _check_files(slot.spec)
            check_quantization(slot.spec.name, slot.spec.quantization)
        sizes = {name: _placement(slot.spec) for name, slot in self._slots.items()}
        if sizes and all(need > self._budget.of(pool) for pool, need in sizes.values()):
            needs = ", ".join(f"{name} {need / GIB:.2f} GiB ({pool})" for name, (pool, need) in sizes.items())
            raise ModelTooLarge(f"no model fits the worker's memory budget: {needs}; raise the budget in llm_worker")

    async def acquire(self, name: str | None) -> ModelRunner:
        """The runner of `name`, loading it first if need be; pair with `release`. Raises when it cannot load."""
        slot = self._slot(name)
        slot.holds += 1
        try:
            await self._start(slot)
            if slot.task is not None:
                await asyncio.shield(slot.task)
            if slot.state != "loaded" or slot.runner is None:
                raise ModelLoadError(f"model {slot.spec.name!r} could not be loaded: {slot.error}")
        except BaseException:
            slot.holds -= 1
            raise
        slot.last_used = time.time()
        return slot.runner

    def release(self, name: str) -> None:
        slot = self._slots[name]
        slot.holds = max(0, slot.holds - 1)
        slot.last_used = time.time()

    async def load(self, name: str, *, wait: bool) -> ModelStatus:
        """Start loading `name` (nothing to do if loaded or loading); with `wait`, return once it is loaded."""
        slot = self._slot(name)
        await self._start(slot)
        if wait and slot.task is not None:
            await asyncio.shield(slot.task)
            if slot.state == "failed":
                raise ModelLoadError(f"model {name!r} could not be loaded: {slot.error}")
        return self.status(name)

    async def unload(self, name: str) -> ModelStatus:
        """Unload `name` once its running and waiting generations are done; a loading model is waited for first."""
        slot = self._slot(name)
        while True:
            # Wait outside the lock: a request holding this model may need the lock to finish.
            if slot.task is not None:
                await asyncio.shield(slot.task)
            while slot.busy():
                await asyncio.sleep(0.05)
            async with self._decide:
                if slot.task is None and not slot.busy():
                    await self._unload(slot)
                    return self.status(name)

    async def _start(self, slot: _Slot) -> None:
        async with self._decide:
            if slot.state in ("loaded", "loading"):
                return
            _check_files(slot.spec)
            pool, need = await asyncio.to_thread(_placement, slot.spec)
            await self._make_room(slot, pool, need)
            slot.state, slot.pool, slot.bytes, slot.error = "loading", pool, need, ""
            slot.stage, slot.started = "queued", time.monotonic()
            slot.task = asyncio.create_task(self._load(slot), name=f"load-{slot.spec.name}")

    async def _make_room(self, slot: _Slot, pool: Pool, need: int) -> None:
        budget = self._budget.of(pool)
        if need > budget:
            raise ModelTooLarge(
                f"model {slot.spec.name!r} needs about {need / GIB:.2f} GiB but the worker's {pool} budget is "
                f"{self._budget.describe(pool)}; raise it, or load the model quantized (quantization: 4bit)"
            )
        others = [s for s in self._slots.values() if s is not slot and s.pool == pool and s.state != "unloaded"]
        others = [s for s in others if s.state != "failed"]
        used = sum(s.bytes for s in others)
        victims: list[_Slot] = []
        for candidate in sorted(others, key=lambda s: s.last_used):
            if used + need <= budget:
                break
            if candidate.state == "loaded" and not candidate.busy():
                victims.append(candidate)
                used -= candidate.bytes
        if used + need > budget:
            busy = ", ".join(s.spec.name for s in others if s not in victims)
            raise NoRoomForModel(
                f"model {slot.spec.name!r} does not fit next to {busy}, which are answering or loading now; "
                "try again when they are done, or unload one with /llm_model/stop"
            )
        for victim in victims:
            logger.info("unloading %s (least recently used) to make room for %s", victim.spec.name, slot.spec.name)
            await self._unload(victim)

    async def _load(self, slot: _Slot) -> None:
        def on_stage(stage: str) -> None:
            slot.stage = stage

        try:
            model = await asyncio.to_thread(self._loader, slot.spec, on_stage)
        except Exception as error:  # noqa: BLE001 - kept in the model's status; whoever waits gets it
            message = error.message if isinstance(error, ModelLoadError) else f"{type(error).__name__}: {error}"
            logger.error("loading %s failed: %s", slot.spec.name, message)
            slot.state, slot.error, slot.bytes = "failed", message, 0
            await asyncio.to_thread(release_memory)
            return
        finally:
            slot.task = None
        slot.bytes = _footprint(model, slot.bytes)
        slot.runner = ModelRunner(model)
        slot.runner.start()
        slot.state, slot.stage, slot.last_used = "loaded", "ready", time.time()
        logger.info("loaded %s in %.1f s (%.2f GiB)", slot.spec.name, time.monotonic() - slot.started, slot.bytes / GIB)

    async def _unload(self, slot: _Slot) -> None:
        runner, slot.runner = slot.runner, None
        if runner is not None:
            slot.served_before += runner.stats()["served"]
            await asyncio.to_thread(runner.close)
            del runner
        slot.state, slot.stage, slot.bytes = "unloaded", "", 0
        await asyncio.to_thread(release_memory)

    def status(self, name: str) -> ModelStatus:
        slot = self._slot(name)
        stats = slot.runner.stats() if slot.runner else {"active": 0, "queued": 0, "served": 0}
        stats = {**stats, "served": stats["served"] + slot.served_before}
        elapsed = time.monotonic() - slot.started if slot.state == "loading" else 0.0
        return ModelStatus(
            name=name,
            state=slot.state,
            device=slot.pool,
            bytes=slot.bytes,
            progress=_STAGE_PROGRESS.get(slot.stage, 0.0) if slot.state != "unloaded" else 0.0,
            stage=slot.stage,
            elapsed_s=round(elapsed, 2),
            error=slot.error,
            last_used=slot.last_used,
            stats=stats,
            context_length=slot.spec.context_length,
            max_new_tokens=slot.spec.max_new_tokens,
        )

    def statuses(self) -> list[ModelStatus]:
        return [self.status(name) for name in self._slots]

    async def aclose(self) -> None:
        for slot in self._slots.values():
            if slot.task is not None:
                await asyncio.shield(slot.task)
            await self._unload(slot)


def _footprint(model: ChatModel, estimate: int) -> int:
    """Bytes of the loaded weights (transformers counts parameters and buffers); the estimate if it cannot."""
    measure = getattr(model.model, "get_memory_footprint", None)
    try:
        return int(measure()) if measure is not None else estimate
    except (TypeError, ValueError, AttributeError):
        return estimate

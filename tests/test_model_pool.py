"""The worker's model pool with real (tiny, random) models: load on first use, LRU unloading under a budget with
the memory really given back, refusals before any memory is taken, and progress while a model loads."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest

from server.errors import AdapterMismatch, ModelTooLarge, NoRoomForModel, UnknownModel
from server.llm.adapters import MANIFEST
from server.llm.generation import ChatModel
from server.llm.memory import MemoryBudget, estimate_bytes
from server.llm.pool import ModelPool
from server.llm.spec import ModelSpec
from tests.tiny_llm import build_tiny_model

pytestmark = pytest.mark.integration
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def mid_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Qwen2 of about 40 MB: big enough that loading and unloading it shows in the process's RSS."""
    return build_tiny_model(tmp_path_factory.mktemp("mid-llm"), hidden=512, layers=4)


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def specs(folder: Path, *names: str) -> dict[str, ModelSpec]:
    return {name: ModelSpec(name=name, path=str(folder), device="cpu") for name in names}


def real_loader(spec: ModelSpec, on_stage: Callable[[str], None]) -> ChatModel:
    from server.llm.loading import load_chat_model

    return load_chat_model(spec, on_stage)


def make_pool(
    models: dict[str, ModelSpec], cpu_bytes: int, loader: Callable[..., ChatModel] = real_loader
) -> ModelPool:
    return ModelPool(lambda: models, MemoryBudget(gpu_bytes=0, cpu_bytes=cpu_bytes), loader)


async def answer(pool: ModelPool, name: str) -> ChatModel:
    """One short answer from `name`, so that its weights are really in memory (they may be mapped lazily)."""
    from server.llm.generation import SamplingParams

    runner = await pool.acquire(name)
    try:
        await runner.complete(runner.model.encode([{"role": "user", "content": "hi"}]), SamplingParams(2, 0.0))
    finally:
        pool.release(name)
    return runner.model


def states(pool: ModelPool) -> dict[str, str]:
    return {status.name: status.state for status in pool.statuses()}


def test_models_load_on_first_use(tiny_model_dir: Path) -> None:
    async def scenario() -> None:
        pool = make_pool(specs(tiny_model_dir, "a", "b"), 10**9)
        assert states(pool) == {"a": "unloaded", "b": "unloaded"}
        runner = await pool.acquire("a")
        pool.release("a")
        assert runner.model.name == "a" and states(pool) == {"a": "loaded", "b": "unloaded"}
        assert pool.status("a").bytes > 0 and pool.status("a").progress == 1.0
        await pool.acquire("b")
        pool.release("b")
        assert states(pool) == {"a": "loaded", "b": "loaded"}  # room for both
        with pytest.raises(UnknownModel, match=r"'nope'.*served: a, b"):
            await pool.acquire("nope")
        await pool.aclose()

    asyncio.run(scenario())


def test_a_one_model_budget_unloads_the_least_recently_used_and_frees_its_memory(mid_model_dir: Path) -> None:
    models = specs(mid_model_dir, "a", "b")
    size = estimate_bytes(models["a"], "float32")
    assert size > 30 * MIB

    async def scenario() -> dict[str, int]:
        pool = make_pool(models, int(size * 1.5))  # one model fits, two do not
        gc.collect()
        measured = {"start": rss()}
        weights = weakref.ref((await answer(pool, "a")).model)
        measured["a loaded"] = rss()
        await answer(pool, "b")
        measured["b loaded, a unloaded"] = rss()
        assert states(pool) == {"a": "unloaded", "b": "loaded"}
        assert weights() is None  # nothing holds a's model any more
        await pool.unload("b")
        measured["none loaded"] = rss()
        assert states(pool) == {"a": "unloaded", "b": "unloaded"}
        await pool.aclose()
        return measured

    measured = asyncio.run(scenario())
    grown = {key: (value - measured["start"]) / size for key, value in measured.items()}
    assert grown["a loaded"] > 0.7, grown
    assert grown["b loaded, a unloaded"] - grown["a loaded"] < 0.5, grown  # one model's worth, not two
    # Unloading gives back the model's memory; what stays is torch's own first-use overhead, not weights.
    assert grown["b loaded, a unloaded"] - grown["none loaded"] > 0.7, grown
    assert grown["none loaded"] < 0.5, grown


def test_unloading_frees_gpu_memory(mid_model_dir: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    models = {name: ModelSpec(name=name, path=str(mid_model_dir), device="cuda") for name in ("a", "b")}
    size = estimate_bytes(models["a"], "bfloat16")
    pool = ModelPool(lambda: models, MemoryBudget(gpu_bytes=int(1.5 * size), cpu_bytes=0), real_loader)

    async def scenario() -> list[int]:
        used = [torch.cuda.memory_allocated()]
        await answer(pool, "a")
        used.append(torch.cuda.memory_allocated())
        await answer(pool, "b")
        used.append(torch.cuda.memory_allocated())
        await pool.aclose()
        used.append(torch.cuda.memory_allocated())
        return used

    start, one, switched, end = asyncio.run(scenario())
    assert one - start > 0.7 * size and abs(switched - one) < 0.2 * size and end - start < 0.1 * size


def test_a_model_over_the_budget_is_refused_before_loading(tiny_model_dir: Path) -> None:
    calls: list[str] = []

    def loader(spec: ModelSpec, on_stage: Callable[[str], None]) -> ChatModel:
        calls.append(spec.name)
        return real_loader(spec, on_stage)

    async def scenario() -> None:
        pool = make_pool(specs(tiny_model_dir, "a"), 1000, loader)
        with pytest.raises(ModelTooLarge, match=r"'a' needs about .* cpu budget is .*cpu_memory_gb"):
            await pool.acquire("a")
        with pytest.raises(ModelTooLarge, match="no model fits"):
            pool.check_all()
        assert states(pool) == {"a": "unloaded"} and calls == []

    asyncio.run(scenario())


def test_a_model_answering_requests_is_not_unloaded(tiny_model_dir: Path) -> None:
    models = specs(tiny_model_dir, "a", "b")
    size = estimate_bytes(models["a"], "float32")

    async def scenario() -> None:
        pool = make_pool(models, int(size * 1.5))
        await pool.acquire("a")  # held, as by a request being answered
        with pytest.raises(NoRoomForModel, match="'b' does not fit next to a"):
            await pool.acquire("b")
        pool.release("a")
        await pool.acquire("b")
        pool.release("b")
        assert states(pool) == {"a": "unloaded", "b": "loaded"}
        await pool.aclose()

    asyncio.run(scenario())


def test_progress_while_loading(tiny_model_dir: Path) -> None:
    go_on = threading.Event()

    def slow_loader(spec: ModelSpec, on_stage: Callable[[str], None]) -> ChatModel:
        def stage(name: str) -> None:
            on_stage(name)
            if name == "weights":
                go_on.wait(30)

        return real_loader(spec, stage)

    async def scenario() -> None:
        pool = make_pool(specs(tiny_model_dir, "a"), 10**9, slow_loader)
        status = await pool.load("a", wait=False)
        assert status.state == "loading"
        while pool.status("a").stage != "weights":
            await asyncio.sleep(0.01)
        loading = pool.status("a")
        assert loading.state == "loading" and 0 < loading.progress < 1 and loading.elapsed_s >= 0
        go_on.set()
        assert (await pool.load("a", wait=True)).state == "loaded"
        await pool.aclose()

    asyncio.run(scenario())


def test_an_adapter_for_another_base_is_refused_before_loading(tiny_model_dir: Path, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    shape = {"model_type": "chatglm", "hidden_size": 4096, "num_hidden_layers": 28}
    manifest = {"name": "glm-lora", "base": "chatglm3-6b", "method": "lora", "shape": shape}
    (adapter / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    spec = ModelSpec(name="tuned", path=str(tiny_model_dir), device="cpu", adapter=str(adapter))

    async def scenario() -> None:
        pool = make_pool({"tuned": spec}, 10**9)
        with pytest.raises(AdapterMismatch, match=r"trained on 'chatglm3-6b'.*model_type, hidden_size"):
            await pool.acquire("tuned")
        assert states(pool) == {"tuned": "unloaded"}

    asyncio.run(scenario())

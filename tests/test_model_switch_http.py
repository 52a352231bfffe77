"""Switching local models over HTTP: a real worker process serving two models under a budget of one, and the API
(in process) changing, stopping and loading them; fine-tuning runs started, followed and cancelled through the API,
and the new model served by the same worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.llm.memory import GIB, estimate_bytes
from server.llm.spec import ModelSpec
from tests.conftest import free_port, make_settings, wait_healthy
from tests.tiny_llm import build_tiny_model

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
TAUGHT = {"颜色#红色": "红裙子", "类型#鞋": "白球鞋", "knowledge": "base", "worker": "model", "类型#帽": "黑帽子"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str]]:
    """The settings both processes share (one data_dir, so the worker sees new adapters), and the worker's URL."""
    folder = tmp_path_factory.mktemp("switch")
    model_dir = build_tiny_model(folder / "model", init_range=0.2)
    size = estimate_bytes(ModelSpec(name="a", path=str(model_dir)), "float32")
    entry = {"engine": "transformers", "path": str(model_dir), "device": "cpu", "max_new_tokens": 16}
    port = free_port()
    values = {
        "data_dir": str(folder / "data"),
        "embed_models": {"hash": {"backend": "hash", "dim": 8}},
        "kb": {"default_embed_model": "hash"},
        "llm_models": {"tiny-a": entry, "tiny-b": entry, "remote": {"engine": "openai", "base_url": "http://x/v1"}},
        "llm_worker": {"port": port, "cpu_memory_gb": 1.5 * size / GIB},  # room for one model, not two
    }
    (folder / "settings.yaml").write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    command = [sys.executable, "-m", "server.llm_worker", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "ZHIKU_CONFIG": str(folder / "settings.yaml"), "OMP_NUM_THREADS": "1"}
    with (folder / "worker.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", process, folder / "worker.log", what="worker", timeout=120)
            yield values, f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def api(setup: tuple[dict[str, Any], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    values, _ = setup
    settings = make_settings(tmp_path_factory.mktemp("api"), **values)
    with TestClient(create_app(settings)) as client:
        yield client


def states(api: TestClient) -> dict[str, str]:
    running = api.post("/llm_model/list_running_models").json()["data"]
    return {name: model["state"] for name, model in running.items()}


def data(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def test_change_stop_and_load_over_http(api: TestClient) -> None:
    assert states(api) == {"remote": "online", "tiny-a": "unloaded", "tiny-b": "unloaded"}
    answer = api.post("/chat/chat", json={"query": "hi", "model_name": "tiny-a", "max_tokens": 4})
    assert answer.status_code == 200  # a request for an unloaded model loads it
    assert states(api)["tiny-a"] == "loaded"
    changed = data(api.post("/llm_model/change", json={"model_name": "tiny-a", "new_model_name": "tiny-b"}))
    assert changed["name"] == "tiny-b" and changed["state"] == "loaded" and changed["memory_bytes"] > 0
    assert states(api) == {"remote": "online", "tiny-a": "unloaded", "tiny-b": "loaded"}
    assert data(api.post("/llm_model/load", json={"model_name": "tiny-a"}))["state"] in ("loading", "loaded")
    deadline = time.monotonic() + 30
    while states(api)["tiny-a"] != "loaded" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert states(api) == {"remote": "online", "tiny-a": "loaded", "tiny-b": "unloaded"}  # LRU made room
    assert data(api.post("/llm_model/stop", json={"model_name": "tiny-a"}))["state"] == "unloaded"
    assert states(api)["tiny-a"] == "unloaded"
    remote = api.post("/llm_model/stop", json={"model_name": "remote"})
    assert remote.status_code == 422 and "online model" in remote.json()["msg"]
    assert api.post("/llm_model/load", json={"model_name": "ghost"}).status_code == 404


def adgen_bytes(rows: dict[str, str]) -> bytes:
    lines = [json.dumps({"content": q, "summary": a}, ensure_ascii=False) for q, a in rows.items()]
    return ("\n".join(lines) + "\n").encode()


def start(api: TestClient, content: bytes, **fields: Any) -> httpx.Response:
    form = {"model_name": "tiny-a", "method": "lora", **{key: str(value) for key, value in fields.items()}}
    return api.post("/llm_model/finetune", data=form, files={"data": ("train.jsonl", content)})


def ask(worker: str, model: str, prompt: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 16}
    reply = httpx.post(f"{worker}/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["choices"][0]["message"]["content"])


def wait_run(api: TestClient, name: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view: dict[str, Any] = data(api.get(f"/llm_model/finetune/{name}"))
        if view["state"] != "running":
            return view
        time.sleep(0.2)
    raise AssertionError(f"run {name} did not end")


def test_a_finetune_run_over_http_registers_a_served_model(api: TestClient, setup: tuple[dict[str, Any], str]) -> None:
    _, worker = setup
    broken = start(api, b'{"content": "x", "summary": "y"}\n{oops\n', name="broken")
    assert broken.status_code == 422 and "line 2: not JSON" in broken.json()["msg"]
    fields = {"name": "tiny-taught", "steps": 40, "batch_size": 5, "learning_rate": 0.01, "val_fraction": 0.2,
              "eval_every": 10, "save_every": 20}  # fmt: skip
    started = data(start(api, adgen_bytes(TAUGHT), **fields))
    assert started["state"] == "running" and started["base_model"] in ("tiny-a", "")
    view = wait_run(api, "tiny-taught")
    assert view["state"] == "done" and view["model_name"] == "tiny-taught", view
    losses = [loss for _, loss in view["loss"]]
    assert len(losses) == 40 and losses[-1] < 0.5 * losses[0] and view["eval_loss"]
    local = data(api.post("/llm_model/list_config_models"))["local"]
    assert local["tiny-taught"]["adapter"] and "path" in local["tiny-taught"]
    answers = {prompt: ask(worker, "tiny-taught", prompt) for prompt in TAUGHT}
    learnt = [prompt for prompt, answer in TAUGHT.items() if answers[prompt] == answer]
    assert len(learnt) >= len(TAUGHT) - 1, answers  # all but the one held out for validation
    again = api.post("/llm_model/finetune/tiny-taught/cancel")
    assert again.status_code == 409
    assert api.get("/llm_model/finetune/nope").status_code == 404


def test_a_running_finetune_can_be_cancelled(api: TestClient) -> None:
    started = data(start(api, adgen_bytes(TAUGHT), name="long", steps=100000, val_fraction=0, save_every=5))
    assert started["state"] == "running"
    busy = start(api, adgen_bytes(TAUGHT), name="long", steps=10, val_fraction=0)
    assert busy.status_code == 409
    deadline = time.monotonic() + 60
    while data(api.get("/llm_model/finetune/long"))["step"] < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    cancelled = data(api.post("/llm_model/finetune/long/cancel"))
    assert cancelled["state"] == "cancelled" and cancelled["step"] >= 5
    assert "long" in {run["name"] for run in data(api.get("/llm_model/finetune"))}

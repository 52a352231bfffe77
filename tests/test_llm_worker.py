"""The LLM worker as a real process over HTTP, serving the tiny random model from tests/tiny_llm.py.

The model's text is random: these tests check the protocol, streaming, token counts, queueing and cancellation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
MAX_NEW = 4000
HELLO = [{"role": "user", "content": "你好, knowledge base"}]


def write_settings(folder: Path, models: dict[str, Any], **more: Any) -> Path:
    config = {
        "data_dir": str(folder / "data"),
        "embed_models": {"hash": {"backend": "hash", "dim": 8}},
        "kb": {"default_embed_model": "hash"},
        "llm_models": models,
        **more,
    }
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def worker_command(port: int, *names: str) -> list[str]:
    models = ["-m", *names] if names else []
    return [sys.executable, "-m", "server.llm_worker", "--host", "127.0.0.1", "--port", str(port), *models]


def worker_env(config: Path) -> dict[str, str]:
    # One torch thread: the tiny model is fastest that way, and the test machine is shared.
    return {**os.environ, "ZHIKU_CONFIG": str(config), "OMP_NUM_THREADS": "1"}


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the worker did not become healthy")


@pytest.fixture(scope="module")
def worker(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("worker")
    tiny = {"engine": "transformers", "path": str(tiny_model_dir), "context_length": 8192, "max_new_tokens": MAX_NEW}
    config = write_settings(folder, {"tiny": tiny, "remote": {"engine": "openai", "base_url": "http://x/v1"}})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "worker.log").open("wb")
    process = subprocess.Popen(worker_command(port), cwd=REPO, env=worker_env(config), stdout=log, stderr=log)
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def chat(url: str, **body: Any) -> httpx.Response:
    payload = {"model": "tiny", "messages": HELLO, **body}
    return httpx.post(f"{url}/v1/chat/completions", json=payload, timeout=60)


def stream_events(response: httpx.Response) -> Iterator[str]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield line[len("data: ") :]


def model_stats(url: str) -> dict[str, int]:
    stats: dict[str, int] = httpx.get(f"{url}/health", timeout=5).json()["models"]["tiny"]
    stats.pop("state")
    return stats


def expected_prompt_tokens(model_dir: Path, messages: list[dict[str, str]]) -> int:
    from tokenizers import Tokenizer

    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    text += "<|im_start|>assistant\n"
    return len(Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(text, add_special_tokens=False).ids)


def test_health_and_model_list(worker: str) -> None:
    health = httpx.get(f"{worker}/health").json()
    assert health["status"] == "ok"
    assert set(health["models"]) == {"tiny"}  # the engine: openai entry is not served
    listing = httpx.get(f"{worker}/v1/models").json()
    assert listing["object"] == "list"
    (entry,) = listing["data"]
    assert entry["id"] == "tiny" and entry["object"] == "model" and entry["max_new_tokens"] == MAX_NEW


def test_non_stream_counts_tokens(worker: str, tiny_model_dir: Path) -> None:
    response = chat(worker, max_tokens=12, temperature=0)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    usage = body["usage"]
    assert usage["prompt_tokens"] == expected_prompt_tokens(tiny_model_dir, HELLO)
    assert 1 <= usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    if usage["completion_tokens"] == 12:
        assert choice["finish_reason"] == "length"


def test_stream_matches_non_stream(worker: str) -> None:
    whole = chat(worker, max_tokens=20, temperature=0).json()
    options = {"include_usage": True}
    with httpx.stream(
        "POST",
        f"{worker}/v1/chat/completions",
        json={"model": "tiny", "messages": HELLO, "max_tokens": 20, "temperature": 0, "stream": True,
              "stream_options": options},
        timeout=60,
    ) as response:  # fmt: skip
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(stream_events(response))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks if chunk["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    finish = [chunk["choices"][0]["finish_reason"] for chunk in chunks if chunk["choices"]]
    assert finish[-1] == whole["choices"][0]["finish_reason"] and all(reason is None for reason in finish[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]


def test_stream_without_usage_option_has_no_usage_chunk(worker: str) -> None:
    payload = {"model": "tiny", "messages": HELLO, "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{worker}/v1/chat/completions", json=payload, timeout=60) as response:
        chunks = [json.loads(event) for event in stream_events(response) if event != "[DONE]"]
    assert all("usage" not in chunk for chunk in chunks)


def test_chatglm_api(worker: str) -> None:
    payload = {"prompt": "什么是知识库?", "history": [["hi", "hello"]], "max_length": 80, "top_p": 0.7,
               "temperature": 0.9}  # fmt: skip
    response = httpx.post(f"{worker}/", json=payload, timeout=60)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 200 and isinstance(body["response"], str)
    assert body["history"] == [["hi", "hello"], ["什么是知识库?", body["response"]]]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["time"])


def test_chatglm_errors(worker: str) -> None:
    too_short = httpx.post(f"{worker}/", json={"prompt": "hello there", "max_length": 3}, timeout=30)
    assert too_short.status_code == 422 and "max_length" in too_short.json()["error"]["message"]
    bad_history = httpx.post(f"{worker}/", json={"prompt": "x", "history": [["only a question"]]}, timeout=30)
    assert bad_history.status_code == 422 and "history" in bad_history.json()["error"]["message"]


def test_disconnect_stops_generation(worker: str) -> None:
    served = model_stats(worker)["served"]
    payload = {"model": "tiny", "messages": HELLO, "max_tokens": MAX_NEW, "stream": True}
    with httpx.stream("POST", f"{worker}/v1/chat/completions", json=payload, timeout=60) as response:
        events = stream_events(response)
        for _ in range(4):
            next(events)
        assert model_stats(worker)["active"] == 1
    left = time.monotonic()
    while model_stats(worker)["active"] and time.monotonic() - left < 5:
        time.sleep(0.05)
    assert model_stats(worker) == {"active": 0, "queued": 0, "served": served + 1}
    # Thousands of tokens would take far longer than this: the generation really stopped.
    assert time.monotonic() - left < 5
    assert chat(worker, max_tokens=2).status_code == 200


def test_requests_to_one_model_wait_in_line(worker: str) -> None:
    payload = {"model": "tiny", "messages": HELLO, "max_tokens": 150, "temperature": 0, "stream": True}
    second: dict[str, httpx.Response] = {}
    with httpx.stream("POST", f"{worker}/v1/chat/completions", json=payload, timeout=60) as first:
        events = stream_events(first)
        next(events)
        next(events)  # the first generation is running
        thread = threading.Thread(target=lambda: second.update(answer=chat(worker, max_tokens=5)))
        thread.start()
        deadline = time.monotonic() + 10
        while model_stats(worker)["queued"] != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert model_stats(worker) | {"served": 0} == {"active": 1, "queued": 1, "served": 0}
        rest = list(events)
    thread.join(timeout=60)
    assert rest[-1] == "[DONE]"
    assert second["answer"].status_code == 200
    assert second["answer"].json()["usage"]["completion_tokens"] <= 5


def test_unknown_model_is_404(worker: str) -> None:
    for name in ("nope", "remote"):
        response = httpx.post(
            f"{worker}/v1/chat/completions", json={"model": name, "messages": HELLO}, timeout=30
        )  # fmt: skip
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
        assert name in error["message"] and "tiny" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "robot", "content": "x"}]},
        {"messages": [{"role": "user"}]},
        {"messages": "hello"},
        {"messages": HELLO, "max_tokens": 0},
        {"messages": HELLO, "max_tokens": MAX_NEW + 1},
        {"messages": HELLO, "temperature": -1},
        {"messages": HELLO, "n": 2},
    ],
)
def test_bad_input_is_422(worker: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{worker}/v1/chat/completions", json={"model": "tiny", **body}, timeout=30)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert "Traceback" not in response.text


def test_stop_string_ends_the_answer(worker: str) -> None:
    free = chat(worker, max_tokens=30, temperature=0).json()["choices"][0]["message"]["content"]
    if len(free) < 3:
        pytest.skip("the random model answered too little to pick a stop string")
    stop = free[2]
    body = chat(worker, max_tokens=30, temperature=0, stop=[stop]).json()
    assert body["choices"][0]["message"]["content"] == free[: free.index(stop)]
    assert body["choices"][0]["finish_reason"] == "stop"


def test_official_openai_client(worker: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{worker}/v1", api_key="unused")
    messages: Any = HELLO
    answer = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0)
    assert answer.usage is not None and answer.usage.completion_tokens <= 8
    assert isinstance(answer.choices[0].message.content, str)
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=8, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == answer.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == answer.usage.total_tokens
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=messages)


def run_worker_once(config: Path, *names: str) -> subprocess.CompletedProcess[str]:
    command = worker_command(free_port(), *names)
    return subprocess.run(command, cwd=REPO, env=worker_env(config), capture_output=True, text=True, timeout=120)


def test_8bit_on_cpu_is_a_clear_startup_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = {"engine": "transformers", "path": str(tiny_model_dir), "quantization": "8bit", "device": "cpu"}
    result = run_worker_once(write_settings(tmp_path, {"tiny8": model}))
    assert result.returncode == 1
    assert "tiny8" in result.stderr and "8bit loading needs a CUDA GPU and bitsandbytes" in result.stderr
    assert "quantization: none" in result.stderr and "Traceback" not in result.stderr


def test_a_budget_too_small_for_every_model_stops_the_worker(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = {"engine": "transformers", "path": str(tiny_model_dir), "device": "cpu"}
    result = run_worker_once(write_settings(tmp_path, {"tiny": model}, llm_worker={"cpu_memory_gb": 1e-6}))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no model fits the worker's memory budget: tiny" in result.stderr and "llm_worker" in result.stderr


def test_missing_model_folder_and_bad_names(tmp_path: Path) -> None:
    missing = {"engine": "transformers", "path": str(tmp_path / "nowhere")}
    config = write_settings(tmp_path, {"ghost": missing, "remote": {"engine": "openai", "base_url": "http://x/v1"}})
    # Three start-ups side by side: each fails before loading anything.
    runs = {
        name: subprocess.Popen(
            worker_command(free_port(), name), cwd=REPO, env=worker_env(config), stderr=subprocess.PIPE, text=True
        )
        for name in ("ghost", "nope", "remote")
    }
    errors = {name: process.communicate(timeout=120)[1] for name, process in runs.items()}
    assert runs["ghost"].returncode == 1 and "ghost" in errors["ghost"] and "nowhere" in errors["ghost"]
    assert runs["nope"].returncode == 2 and "nope" in errors["nope"]
    assert runs["remote"].returncode == 2 and "openai" in errors["remote"]

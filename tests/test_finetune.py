"""Fine-tuning: datasets checked before anything loads, clear refusals, LoRA and prefix-tuning runs that teach a
tiny random model a small memorisation set, the adapter served by the worker, and resume after a kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from configs import Settings, load_settings
from server.errors import DatasetError
from server.finetune.data import load_examples, split_examples
from server.finetune.options import TrainOptions
from server.finetune.progress import read_progress
from tests.tiny_llm import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
# Prompts and answers the random model cannot know: after training it must give these answers word for word.
TAUGHT = {"颜色#红色": "红裙子", "颜色#蓝色": "蓝外套", "类型#鞋": "白球鞋", "类型#帽": "黑帽子", "knowledge": "base"}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def adgen(path: Path) -> Path:
    rows = [json.dumps({"content": q, "summary": a}, ensure_ascii=False) for q, a in TAUGHT.items()]
    return write_lines(path, rows)


def test_both_formats_are_read(tmp_path: Path) -> None:
    kind, examples = load_examples(adgen(tmp_path / "a.jsonl"))
    assert kind == "adgen" and examples[0].prompt == [{"role": "user", "content": "颜色#红色"}]
    assert examples[0].answer == "红裙子"
    chat = {"messages": [{"role": "system", "content": "简短"}, {"role": "user", "content": "你好"},
                         {"role": "assistant", "content": "您好"}]}  # fmt: skip
    kind, examples = load_examples(write_lines(tmp_path / "c.jsonl", [json.dumps(chat), ""]))
    assert kind == "chat" and len(examples[0].prompt) == 2 and examples[0].answer == "您好"


def test_every_broken_line_is_reported_with_its_number(tmp_path: Path) -> None:
    lines = [
        '{"content": "a", "summary": "b"}',
        "{not json",
        '{"content": "a", "summary": "  "}',
        "[1, 2]",
        '{"prompt": "x", "completion": "y"}',
        '{"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "q2"}]}',
    ]
    with pytest.raises(DatasetError) as caught:
        load_examples(write_lines(tmp_path / "bad.jsonl", lines))
    message = caught.value.message
    assert "5 problem(s)" in message and "line 2: not JSON" in message and 'line 3: "summary" must be' in message
    assert "line 4: not a JSON object" in message and "line 5: neither ADGEN" in message
    assert "line 6: the last message must be the assistant's" in message
    mixed = [lines[0], '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}']
    with pytest.raises(DatasetError, match="formats are mixed"):
        load_examples(write_lines(tmp_path / "mixed.jsonl", mixed))
    with pytest.raises(DatasetError, match="no examples"):
        load_examples(write_lines(tmp_path / "empty.jsonl", ["", "  "]))
    (tmp_path / "latin1.jsonl").write_bytes('{"content": "é", "summary": "x"}'.encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_examples(tmp_path / "latin1.jsonl")
    with pytest.raises(DatasetError, match="leave none for training"):
        split_examples(load_examples(write_lines(tmp_path / "one.jsonl", [lines[0]]))[1], 0.1, 0)


@pytest.fixture(scope="module")
def trainable_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with embeddings large enough for confident answers, so a few dozen steps can teach it."""
    return build_tiny_model(tmp_path_factory.mktemp("trainable"), init_range=0.2)


def settings_file(folder: Path, model_dir: Path) -> Path:
    config = {
        "data_dir": str(folder / "data"),
        "embed_models": {"hash": {"backend": "hash", "dim": 8}},
        "kb": {"default_embed_model": "hash"},
        "llm_models": {
            "tiny": {"engine": "transformers", "path": str(model_dir), "device": "cpu", "max_new_tokens": 16},
            "remote": {"engine": "openai", "base_url": "http://127.0.0.1:9/v1"},
        },
        "llm_worker": {"cpu_memory_gb": 1},
    }
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def finetune(config: Path, *args: str, wait: bool = True) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "server.finetune", *args]
    env = {**os.environ, "ZHIKU_CONFIG": str(config), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        process.communicate(timeout=120)
    return process


def refusals(config: Path, *runs: list[str]) -> list[str]:
    """The error messages of runs that must be refused (exit status 2), started side by side."""
    processes = [finetune(config, *args, wait=False) for args in runs]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    for process, err in zip(processes, errors, strict=True):
        assert process.returncode == 2 and "Traceback" not in err, err
    return errors


@pytest.mark.integration
def test_bad_options_are_refused_before_training(tmp_path: Path, trainable_dir: Path) -> None:
    config = settings_file(tmp_path, trainable_dir)
    data = ["--data", str(adgen(tmp_path / "a.jsonl"))]
    broken = write_lines(tmp_path / "broken.jsonl", ['{"content": "", "summary": "x"}'])
    expected = {
        "online model": ["--model", "remote", *data],
        "not in llm_models; local models: tiny": ["--model", "ghost", *data],
        '"content" must be a non-empty string': ["--model", "tiny", "--data", str(broken)],
        "needs a CUDA GPU": ["--model", "tiny", *data, "--quantization", "4bit"],
        "--steps": ["--model", "tiny", *data, "--steps", "0"],
        "already a model": ["--model", "tiny", *data, "--name", "remote"],
    }
    for message, err in zip(expected, refusals(config, *expected.values()), strict=True):
        assert message in err
    assert not (tmp_path / "data" / "finetune").exists()  # nothing was started


def run_options(settings: Settings, method: str, **values: Any) -> TrainOptions:
    path = str(settings.llm_models["tiny"].path)
    base = {"steps": 40, "batch_size": 5, "val_fraction": 0.0, "save_every": 20, "device": "cpu"}
    return TrainOptions(name=f"tiny-{method}", model="tiny", model_path=path, data="", **{**base, **values},
                        method=method)  # type: ignore[arg-type]  # fmt: skip


def served_answers(settings: Settings, model: str) -> dict[str, str]:
    from server.llm_worker.__main__ import make_pool
    from server.llm_worker.app import create_worker_app

    answers = {}
    with TestClient(create_worker_app(lambda: make_pool(settings, None))) as client:
        for prompt in TAUGHT:
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0}
            reply = client.post("/v1/chat/completions", json={**body, "max_tokens": 8})
            assert reply.status_code == 200, reply.text
            answers[prompt] = reply.json()["choices"][0]["message"]["content"]
    return answers


@pytest.mark.integration
@pytest.mark.parametrize(("method", "lr"), [("lora", 1e-2), ("ptuning", 0.2)])
def test_training_teaches_the_data_and_the_adapter_is_served(
    tmp_path: Path, trainable_dir: Path, method: str, lr: float
) -> None:
    import torch

    from server.finetune.train import train

    torch.set_num_threads(1)
    settings = load_settings(**yaml.safe_load(settings_file(tmp_path, trainable_dir).read_text(encoding="utf-8")))
    options = run_options(settings, method, learning_rate=lr)
    run = settings.finetune.resolved_dir(settings.data_dir) / options.name
    run.mkdir(parents=True)
    _, examples = load_examples(adgen(tmp_path / "a.jsonl"))
    train(options, run, examples, examples[:2])
    progress = read_progress(run)
    losses = [progress.loss[step] for step in sorted(progress.loss)]
    assert progress.state == "done" and len(losses) == 40 and progress.eval_loss
    assert losses[-1] < 0.25 * losses[0], losses
    tuned = served_answers(settings, f"tiny-{method}")
    base = served_answers(settings, "tiny")
    assert tuned == TAUGHT  # the adapter answers what the data taught, word for word
    assert all(base[prompt] != answer for prompt, answer in TAUGHT.items())


@pytest.mark.integration
def test_a_run_killed_mid_training_resumes_from_its_last_checkpoint(tmp_path: Path, trainable_dir: Path) -> None:
    config = settings_file(tmp_path, trainable_dir)
    data = str(adgen(tmp_path / "a.jsonl"))
    args = ["--model", "tiny", "--data", data, "--steps", "80", "--save-every", "10", "--batch-size", "2",
            "--lr", "0.01", "--val-fraction", "0.2", "--eval-every", "50", "--device", "cpu"]  # fmt: skip
    run = tmp_path / "data" / "finetune" / "tiny-lora"
    first = finetune(config, *args, wait=False)
    deadline = time.monotonic() + 90
    while read_progress(run).checkpoint < 20 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.02)
    assert first.poll() is None, "training ended before it could be interrupted"
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    killed_at = read_progress(run)
    assert killed_at.state == "running" and 20 <= killed_at.checkpoint < 80
    second = finetune(config, *args)
    assert second.returncode == 0, second.stderr
    events = [json.loads(line) for line in (run / "progress.jsonl").read_text(encoding="utf-8").splitlines()]
    starts = [event for event in events if event["event"] == "start"]
    resumed = starts[-1]["resumed_from"]
    assert len(starts) == 2 and resumed >= killed_at.checkpoint  # continued, not started over
    after = [event for event in events[events.index(starts[-1]) :] if event["event"] == "step"]
    assert after[0]["step"] == resumed + 1 and after[-1]["step"] == 80
    first_loss = next(event["loss"] for event in events if event["event"] == "step")
    assert after[0]["loss"] < 0.6 * first_loss  # the learnt weights came back with the checkpoint
    assert read_progress(run).state == "done" and (run / "adapter" / "zhiku_adapter.json").is_file()

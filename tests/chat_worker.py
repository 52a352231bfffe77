"""Helpers for chat tests that need a real LLM worker process serving the tiny model (tests/tiny_llm.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from conftest import free_port, wait_healthy

REPO = Path(__file__).resolve().parents[1]
MAX_NEW = 16


def tiny_entry(model_dir: Path) -> dict[str, Any]:
    return {"engine": "transformers", "path": str(model_dir), "context_length": 4096, "max_new_tokens": MAX_NEW}


@contextlib.contextmanager
def running_worker(model_dir: Path, folder: Path) -> Iterator[tuple[str, int]]:
    """`python -m server.llm_worker` serving `tiny`; yields its URL and port, stops it afterwards."""
    config = {
        "data_dir": str(folder / "worker-data"),
        "embed_models": {"hash": {"backend": "hash", "dim": 8}},
        "kb": {"default_embed_model": "hash"},
        "llm_models": {"tiny": tiny_entry(model_dir)},
    }
    (folder / "worker.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    command = [sys.executable, "-m", "server.llm_worker", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "ZHIKU_CONFIG": str(folder / "worker.yaml"), "OMP_NUM_THREADS": "1"}
    with (folder / "worker.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", process, folder / "worker.log", what="worker", timeout=120)
            yield f"http://127.0.0.1:{port}", port
        finally:
            process.terminate()
            process.wait(timeout=30)


def api_models(model_dir: Path, worker_url: str) -> dict[str, Any]:
    """llm_models for the API: `tiny` through our worker, and `remote`, the same worker as an OpenAI endpoint."""
    remote = {"engine": "openai", "base_url": f"{worker_url}/v1", "model": "tiny", "api_key": "sk-remote-secret"}
    return {"tiny": tiny_entry(model_dir), "remote": remote}


class PtySession:
    """A command run in a pseudo-terminal, as a person at a keyboard would run it."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        import pty

        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> str:
        """Read until `text` appears; returns everything read up to and including it."""
        import select

        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"did not see {text!r} in:\n{self.seen}")
            try:
                block = os.read(self.master, 4096)
            except OSError:  # the child closed the terminal
                block = b""
            if not block:
                raise AssertionError(f"the program ended before {text!r}:\n{self.seen}")
            self.seen += block.decode("utf-8", "replace")
        head, _, rest = self.seen.partition(text)
        self.seen = rest
        return head + text

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            os.close(self.master)

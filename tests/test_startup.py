"""`python startup.py` as a user runs it: a real launcher subprocess, its own data dir and free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
HAS_WORKER = (REPO / "server" / "llm_worker").is_dir() or (REPO / "server" / "llm_worker.py").is_file()
HAS_WEBUI = (REPO / "webui.py").is_file()

pytestmark = pytest.mark.integration


def write_config(tmp_path: Path, **extra: Any) -> Path:
    values: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "log_level": "WARNING",
        "embed_models": {"hash": {"backend": "hash", "dim": 32}},
        "kb": {"default_embed_model": "hash"},
        "api": {"port": free_port()},
        "webui": {"port": free_port()},
        "llm_worker": {"port": free_port()},
    }
    values.update(extra)
    (tmp_path / "data" / "samples" / "content").mkdir(parents=True)
    (tmp_path / "data" / "samples" / "content" / "guide.md").write_text("# 启动\n运行 startup.py -a。\n", "utf-8")
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    return path


class Launcher:
    """startup.py in a subprocess; console output captured to files so it never blocks on a full pipe."""

    def __init__(self, tmp_path: Path, config: Path, *args: str) -> None:
        self.config = yaml.safe_load(config.read_text(encoding="utf-8"))
        self.out = tmp_path / "launcher.out"
        self.err = tmp_path / "launcher.err"
        self.log_dir = tmp_path / "logs"
        env = {**os.environ, "ZHIKU_CONFIG": str(config)}
        argv = [sys.executable, "startup.py", *args, "--log-dir", str(self.log_dir), "--stop-timeout", "5"]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)

    def port(self, section: str) -> int:
        return int(self.config[section]["port"])

    def output(self) -> str:
        return self.out.read_text(encoding="utf-8") + self.err.read_text(encoding="utf-8")

    def wait_ready(self, timeout: float = 90) -> float:
        started = time.monotonic()
        while "is ready in" not in self.output():
            assert self.proc.poll() is None, f"launcher exited with {self.proc.returncode}:\n{self.output()}"
            assert time.monotonic() - started < timeout, f"not ready within {timeout} s:\n{self.output()}"
            time.sleep(0.1)
        return time.monotonic() - started

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Any]:
    started: list[Launcher] = []

    def start(config: Path, *args: str) -> Launcher:
        launcher = Launcher(tmp_path, config, *args)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.close()


def assert_all_gone(processes: list[psutil.Process], timeout: float = 5) -> None:
    _gone, alive = psutil.wait_procs(processes, timeout=timeout)
    assert not alive, f"left behind: {[p.info for p in alive] if alive else ''} {alive}"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_health(launcher: Launcher, *, webui: bool, worker: bool) -> None:
    api = f"http://127.0.0.1:{launcher.port('api')}"
    assert httpx.get(f"{api}/health", timeout=5).json()["status"] == "ok"
    assert httpx.get(f"{api}/knowledge_base/list_knowledge_bases", timeout=5).json()["data"] == ["samples"]
    if webui:
        page = httpx.get(f"http://127.0.0.1:{launcher.port('webui')}/", timeout=5)
        assert page.status_code == 200 and "<html" in page.text.lower()
    if worker:
        assert httpx.get(f"http://127.0.0.1:{launcher.port('llm_worker')}/health", timeout=5).status_code == 200


def stop_with(sig: signal.Signals, launcher: Launcher, ports: list[int]) -> None:
    tree = launcher.tree()
    assert tree, "the launcher has no children"
    started = time.monotonic()
    launcher.proc.send_signal(sig)
    assert launcher.wait(timeout=15) == 0, launcher.output()
    assert time.monotonic() - started < 10
    assert_all_gone(tree)
    assert all(port_free(port) for port in ports)
    assert "stopped" in launcher.output()


def test_all_webui_without_model_starts_everything_and_stops_on_sigint(tmp_path: Path, launch: Any) -> None:
    launcher = launch(write_config(tmp_path), "-a")
    launcher.wait_ready()
    check_health(launcher, webui=HAS_WEBUI, worker=False)
    output = launcher.output()
    assert "no local model configured: chat needs llm_models" in output
    assert f"http://127.0.0.1:{launcher.port('api')}/docs" in output
    assert "samples: 1 files, faiss/hash" in (launcher.log_dir / "init_database.log").read_text(encoding="utf-8")
    assert (launcher.log_dir / "api.log").is_file()
    names = {" ".join(p.cmdline()) for p in launcher.tree()}
    assert any("server.api" in name for name in names)
    assert any("streamlit" in name for name in names) == HAS_WEBUI
    stop_with(signal.SIGINT, launcher, [launcher.port("api"), launcher.port("webui")])
    if not HAS_WEBUI:
        pytest.skip("webui.py does not exist yet: the Web UI part of this test was not run")


def test_busy_port_is_refused_before_anything_starts(tmp_path: Path, launch: Any) -> None:
    config = write_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", yaml.safe_load(config.read_text())["api"]["port"]))
        busy.listen()
        launcher = launch(config, "--api")
        assert launcher.wait(timeout=30) == 2
    port = launcher.port("api")
    assert f"port {port} (API) is in use by another program; stop it or change api.port" in launcher.output()
    assert "nothing was started" in launcher.output()
    assert not launcher.log_dir.exists()


def test_invalid_settings_exit_2(tmp_path: Path, launch: Any) -> None:
    launcher = launch(write_config(tmp_path, api={"port": 70000}), "--api")
    assert launcher.wait(timeout=30) == 2
    assert "api.port" in launcher.output() and "nothing was started" in launcher.output()


def test_a_child_killed_with_sigkill_is_reported_and_the_launcher_exits_non_zero(tmp_path: Path, launch: Any) -> None:
    launcher = launch(write_config(tmp_path), "--api")
    launcher.wait_ready()
    tree = launcher.tree()
    api = next(p for p in tree if "server.api" in " ".join(p.cmdline()))
    api.send_signal(signal.SIGKILL)
    assert launcher.wait(timeout=15) == 1
    output = launcher.output()
    assert "api was killed by SIGKILL (exit code -9)" in output and "api.log" in output
    assert_all_gone(tree)


@pytest.mark.skipif(not HAS_WORKER, reason="server/llm_worker does not exist yet: the worker test cannot run")
def test_all_webui_with_the_tiny_model_stops_on_sigterm(tmp_path: Path, launch: Any, tiny_model_dir: Path) -> None:
    models = {"tiny": {"engine": "transformers", "path": str(tiny_model_dir), "device": "cpu"}}
    launcher = launch(write_config(tmp_path, llm_models=models, default_llm="tiny"), "-a", "-m", "tiny")
    launcher.wait_ready(timeout=180)
    check_health(launcher, webui=HAS_WEBUI, worker=True)
    assert "tiny (local, LLM worker)" in launcher.output() and "torch " in launcher.output()
    ports = [launcher.port(section) for section in ("api", "webui", "llm_worker")]
    stop_with(signal.SIGTERM, launcher, ports)

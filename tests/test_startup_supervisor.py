"""The supervisor and the start plan, with small stand-in services (python -m http.server) and no Zhiku server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from configs import Settings
from server.errors import ConfigError, PortInUse, ServiceFailed
from server.supervisor import Service, Step, Supervisor, describe_exit, tail_text
from server.supervisor_plan import Choice, Endpoint, build_plan, check_ports, display_host, port_in_use
from server.supervisor_summary import summary
from tests.conftest import free_port, make_settings

REPO = Path(__file__).resolve().parents[1]
ALL = Choice(worker=True, api=True, webui=True)


def http_service(tmp_path: Path, name: str = "web", *, timeout: float = 20.0) -> Service:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    return Service(name, argv, f"http://127.0.0.1:{port}/", tmp_path / "logs" / f"{name}.log", timeout)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_start_wait_ready_and_graceful_stop(tmp_path: Path) -> None:
    services = [http_service(tmp_path, "one"), http_service(tmp_path, "two")]
    supervisor = Supervisor(cwd=tmp_path, env=dict(os.environ), stop_timeout=5)
    steps = [Step("prepare", [sys.executable, "-c", "print('prepared')"], tmp_path / "logs" / "prepare.log", 20)]
    try:
        supervisor.start(services, steps)
        pids = [child.process.pid for child in supervisor.children]
        assert [child.name for child in supervisor.children] == ["one", "two"]
        assert "prepared" in (tmp_path / "logs" / "prepare.log").read_text()
    finally:
        supervisor.stop()
    assert all(gone(pid) for pid in pids)
    assert not supervisor.children


def test_a_child_that_exits_is_reported_with_code_and_log_tail(tmp_path: Path) -> None:
    crash = Service(
        "crashy",
        [sys.executable, "-c", "import sys; print('boom: port taken'); sys.exit(3)"],
        "http://127.0.0.1:9/health",
        tmp_path / "crashy.log",
        20,
    )
    supervisor = Supervisor(cwd=tmp_path, env=dict(os.environ))
    with pytest.raises(ServiceFailed) as caught:
        supervisor.start([crash])
    supervisor.stop()
    assert caught.value.service == "crashy"
    assert "exited with code 3" in caught.value.message and "crashy.log" in caught.value.message
    assert "boom: port taken" in caught.value.log_tail


def test_a_failing_step_stops_before_services_that_need_it(tmp_path: Path) -> None:
    step = Step("init", [sys.executable, "-c", "raise SystemExit(4)"], tmp_path / "init.log", 20)
    needs = Service(
        "api", [sys.executable, "-c", "pass"], "http://127.0.0.1:9/", tmp_path / "api.log", 5, needs_init=True
    )
    supervisor = Supervisor(cwd=tmp_path, env=dict(os.environ))
    with pytest.raises(ServiceFailed, match="init exited with code 4"):
        supervisor.start([needs], [step])
    supervisor.stop()
    assert not (tmp_path / "api.log").exists()


def test_ready_timeout_names_the_service(tmp_path: Path) -> None:
    silent = Service(
        "sleepy", [sys.executable, "-c", "import time; time.sleep(60)"], "http://127.0.0.1:9/", tmp_path / "s.log", 0.5
    )
    supervisor = Supervisor(cwd=tmp_path, env=dict(os.environ), stop_timeout=5)
    started = time.monotonic()
    with pytest.raises(ServiceFailed, match=r"sleepy did not answer GET http://127.0.0.1:9/ within 0.5 s"):
        supervisor.start([silent])
    pid = supervisor.children[0].process.pid
    supervisor.stop()
    assert gone(pid) and time.monotonic() - started < 10


def test_stop_kills_a_child_that_ignores_sigterm_and_its_own_children(tmp_path: Path) -> None:
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('up', flush=True); time.sleep(60)\n"
    )
    stubborn = Service("stubborn", [sys.executable, "-c", code], "http://127.0.0.1:9/", tmp_path / "st.log", 30)
    supervisor = Supervisor(cwd=tmp_path, env=dict(os.environ), stop_timeout=1)
    child = supervisor._start(stubborn.name, stubborn.argv, stubborn.log_file)
    deadline = time.monotonic() + 20
    while "up" not in tail_text(stubborn.log_file, child.log_offset) and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = [child.process.pid] + [p.pid for p in psutil.Process(child.process.pid).children(recursive=True)]
    assert len(tree) == 2
    supervisor.stop()
    assert child.process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while not all(gone(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(pid) for pid in tree)


LAUNCHER = """
import os, sys
from pathlib import Path
from server.supervisor import Service, Supervisor
tmp, port = Path(sys.argv[1]), sys.argv[2]
argv = [sys.executable, "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", str(tmp)]
service = Service("web", argv, f"http://127.0.0.1:{port}/", tmp / "web.log", 20)
Supervisor(cwd=tmp, env=dict(os.environ)).start([service])
print("ready", flush=True)
input()
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_stop_when_the_launcher_is_killed(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", LAUNCHER, str(tmp_path), str(port)]
    launcher = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert launcher.stdout is not None and launcher.stdout.readline().strip() == "ready"
        children = psutil.Process(launcher.pid).children(recursive=True)
        assert len(children) == 1
        launcher.kill()  # SIGKILL: the launcher cannot clean up; the kernel tells the child
        launcher.wait()
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive
        assert not port_in_use("127.0.0.1", port)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def test_describe_exit() -> None:
    assert describe_exit(2) == "exited with code 2"
    assert describe_exit(-9) == "was killed by SIGKILL (exit code -9)"


def test_tail_reads_only_this_run(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("old run\n" + "".join(f"line {i}\n" for i in range(30)))
    assert tail_text(log, len("old run\n"), 3) == "line 27\nline 28\nline 29"
    assert "old run" not in tail_text(log, len("old run\n"), 100)
    assert tail_text(tmp_path / "missing.log", 0) == ""


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return make_settings(tmp_path, **overrides)


def test_plan_without_local_model_starts_api_and_says_so(tmp_path: Path) -> None:
    plan = build_plan(_settings(tmp_path), ALL, repo=REPO, log_dir=tmp_path)
    names = [service.name for service in plan.services]
    assert "llm_worker" not in names and "api" in names
    assert any("no local model configured" in note for note in plan.notes)
    assert [step.name for step in plan.steps] == ["init_database"]
    assert plan.services[names.index("api")].needs_init


def test_plan_worker_models_lite_and_errors(tmp_path: Path) -> None:
    models = {
        "tiny": {"engine": "transformers", "path": str(tmp_path)},
        "remote": {"engine": "openai", "base_url": "http://127.0.0.1:1/v1"},
    }
    settings = _settings(tmp_path, llm_models=models)
    lite = build_plan(settings, Choice(worker=True, api=True, webui=False, lite=True), repo=REPO, log_dir=tmp_path)
    assert [s.name for s in lite.services] == ["api"] and "lite mode" in lite.notes[0]
    with pytest.raises(ConfigError, match="-m remote: not a local"):
        build_plan(
            settings, Choice(worker=True, api=False, webui=False, models=["remote"]), repo=REPO, log_dir=tmp_path
        )
    with pytest.raises(ConfigError, match="nothing to start"):
        build_plan(_settings(tmp_path), Choice(worker=True, api=False, webui=False), repo=REPO, log_dir=tmp_path)
    if not (REPO / "server" / "llm_worker").exists() and not (REPO / "server" / "llm_worker.py").exists():
        return
    plan = build_plan(settings, Choice(worker=True, api=False, webui=False), repo=REPO, log_dir=tmp_path)
    worker = plan.services[0]
    assert worker.name == "llm_worker" and worker.argv[-2:] == ["-m", "tiny"] and plan.local_models == ["tiny"]


def test_ports_in_use_and_duplicates_are_refused(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        endpoints = [
            Endpoint("API", "api.port", "127.0.0.1", port),
            Endpoint("Web UI", "webui.port", "127.0.0.1", port),
        ]
        with pytest.raises(PortInUse) as caught:
            check_ports(endpoints)
    message = caught.value.message
    assert f"port {port} (API) is in use by another program; stop it or change api.port" in message
    assert "api.port and webui.port are both" in message
    assert not port_in_use("127.0.0.1", free_port())


def test_display_host() -> None:
    assert display_host("0.0.0.0") == "127.0.0.1"
    assert display_host("::1") == "[::1]"
    assert display_host("localhost") == "localhost"


def test_summary_hides_the_database_password(tmp_path: Path) -> None:
    settings = _settings(tmp_path, database_url="postgresql+psycopg://zhiku:s3cret@db:5432/zhiku")
    plan = build_plan(settings, Choice(worker=False, api=True, webui=False), repo=REPO, log_dir=tmp_path)
    text = "\n".join(summary(settings, plan, 3.21))
    assert "s3cret" not in text and "postgresql+psycopg://zhiku:***@db:5432/zhiku" in text
    assert "ready in 3.2 s" in text and f"http://127.0.0.1:{settings.api.port}/docs" in text
    assert "embedding model hash" in text

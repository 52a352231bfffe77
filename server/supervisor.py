"""Run a fixed list of services as child processes, wait until each answers, watch them, stop them cleanly.

procrastinate-style supervision: an explicit, typed list of `Service`s, one function that starts each
(`spawn`), readiness by polling each service's health URL, and a graceful stop (SIGTERM to the child's whole
process group → wait with a timeout → SIGKILL). Nothing here reads settings or prints: the entry point
(`startup.py`) builds the list and reports what the `zhiku.startup` logger says.

Children start in their own session (`start_new_session`), so a Ctrl+C in the terminal reaches only the launcher,
which then stops them in order, and so `killpg` reaches anything they spawned. On Linux each child also asks the
kernel for PR_SET_PDEATHSIG=SIGTERM: if the launcher itself is killed with SIGKILL, its children are told to stop
instead of being orphaned with their ports bound. (A pipe watchdog would need cooperation from every child's code;
prctl needs none. Elsewhere this safeguard is absent and only the normal stop applies.)
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from server.errors import ServiceFailed

log = logging.getLogger("zhiku.startup")

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.1
TAIL_LINES = 20


def status_ok(response: httpx.Response) -> bool:
    return response.status_code == 200


@dataclass(frozen=True)
class Service:
    """A long-running child: ready when `ready(GET health_url)` is true; writes everything to `log_file`."""

    name: str
    argv: list[str]
    health_url: str
    log_file: Path
    ready_timeout: float
    ready: Callable[[httpx.Response], bool] = status_ok
    needs_init: bool = False  # start only after the one-shot steps (it opens the database they prepare)


@dataclass(frozen=True)
class Step:
    """A one-shot child (e.g. first-run database init) that must exit 0 before the services that need it start."""

    name: str
    argv: list[str]
    log_file: Path
    timeout: float


@dataclass
class Child:
    """A started child process, with where its log for this run begins."""

    name: str
    process: subprocess.Popen[bytes]
    log_file: Path
    log_offset: int
    started: float = field(default_factory=time.monotonic)

    def tail(self, lines: int = TAIL_LINES) -> str:
        return tail_text(self.log_file, self.log_offset, lines)

    def failed(self, reason: str) -> ServiceFailed:
        return ServiceFailed(self.name, f"{reason} (log: {self.log_file})", self.tail())


def tail_text(path: Path, offset: int, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines written to `path` after byte `offset` (this run's part of an appended log)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            return f"was killed by signal {-code} (exit code {code})"
    return f"exited with code {code}"


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, in the parent: the child does as little as possible

    def setup() -> None:  # runs in the child between fork and exec
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the launcher died before prctl took effect
            os._exit(1)

    return setup


def spawn(name: str, argv: Sequence[str], log_file: Path, *, cwd: Path, env: dict[str, str]) -> Child:
    """Start one child in its own session, stdout and stderr appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as handle:
        handle.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        offset = handle.tell()
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if sys.platform == "linux" else None,
        )
    return Child(name, process, log_file, offset)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, sig)


class Supervisor:
    """Starts steps and services in order, waits for readiness, watches them, and stops them all."""

    def __init__(self, *, cwd: Path, env: dict[str, str], stop_timeout: float = 10.0) -> None:
        self.cwd = cwd
        self.env = env
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.stop_requested = threading.Event()

    def request_stop(self) -> None:
        """Called from a signal handler: the running wait returns and `run_until_stopped` ends."""
        self.stop_requested.set()

    def _start(self, name: str, argv: Sequence[str], log_file: Path) -> Child:
        log.info("starting %s (log: %s)", name, log_file)
        child = spawn(name, argv, log_file, cwd=self.cwd, env=self.env)
        self.children.append(child)
        return child

    def run_step(self, step: Step) -> None:
        """Run a one-shot step to completion; raises ServiceFailed when it fails or times out."""
        child = self._start(step.name, step.argv, step.log_file)
        deadline = time.monotonic() + step.timeout
        while child.process.poll() is None:
            if self.stop_requested.wait(POLL_SECONDS):
                return
            if time.monotonic() > deadline:
                raise child.failed(f"did not finish within {step.timeout:g} s")
        if child.process.returncode != 0:
            raise child.failed(describe_exit(child.process.returncode))
        log.info("%s done (%.1f s)", step.name, time.monotonic() - child.started)
        self.children.remove(child)

    def start(self, services: Sequence[Service], steps: Sequence[Step] = ()) -> float:
        """Start every service (those that `needs_init` after the steps), then wait for each to be ready.

        Returns the seconds it took; raises ServiceFailed naming the first service that did not come up.
        """
        started = time.monotonic()
        for service in (s for s in services if not s.needs_init):
            self._start(service.name, service.argv, service.log_file)
        for step in steps:
            if self.stop_requested.is_set():
                return time.monotonic() - started
            self.run_step(step)
        for service in (s for s in services if s.needs_init):
            if not self.stop_requested.is_set():
                self._start(service.name, service.argv, service.log_file)
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            for service in services:
                self._wait_ready(client, service)
        return time.monotonic() - started

    def _child(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    def _wait_ready(self, client: httpx.Client, service: Service) -> None:
        if self.stop_requested.is_set():
            return
        child = self._child(service.name)
        deadline = time.monotonic() + service.ready_timeout
        while not self._answers(client, service):
            self._check_alive()
            if time.monotonic() > deadline:
                reason = f"did not answer GET {service.health_url} within {service.ready_timeout:g} s"
                raise child.failed(reason)
            if self.stop_requested.wait(POLL_SECONDS):
                return
        log.info("%s is ready (%.1f s after its start)", service.name, time.monotonic() - child.started)

    @staticmethod
    def _answers(client: httpx.Client, service: Service) -> bool:
        try:
            return service.ready(client.get(service.health_url))
        except httpx.HTTPError:
            return False

    def _check_alive(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise child.failed(describe_exit(code))

    def run_until_stopped(self) -> None:
        """Watch the children until a stop is requested; raises ServiceFailed when one of them exits."""
        while not self.stop_requested.wait(POLL_SECONDS * 2):
            self._check_alive()

    def stop(self) -> None:
        """SIGTERM every child's process group (last started first), wait, then SIGKILL what is left."""
        children = list(reversed(self.children))
        for child in children:
            if child.process.poll() is None:
                log.info("stopping %s", child.name)
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in children:
            self._wait_group(child, deadline)
        self.children.clear()

    def _wait_group(self, child: Child, deadline: float) -> None:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s: killing it", child.name, self.stop_timeout)
            _signal_group(child, signal.SIGKILL)
            child.process.wait()
        while _group_alive(child.process.pid) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)  # processes the child started may still be exiting
        if _group_alive(child.process.pid):
            _signal_group(child, signal.SIGKILL)

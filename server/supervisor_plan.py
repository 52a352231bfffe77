"""What `startup.py` starts: the chosen services, built from the settings, and the checks made before any start."""

from __future__ import annotations

import errno
import importlib.util
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from configs import Settings
from server.errors import ConfigError, PortInUse
from server.supervisor import Service, Step

WORKER_MODULE = "server.llm_worker"
WEBUI_FILE = "webui.py"
INIT_TIMEOUT = 3600.0  # embedding a large first knowledge base on CPU can take a while


@dataclass(frozen=True)
class Choice:
    """Which services the user asked for, and how long each may take to come up."""

    worker: bool
    api: bool
    webui: bool
    models: list[str] | None = None  # -m; None: every local (transformers) model in llm_models
    lite: bool = False
    ready_timeout: float = 60.0
    worker_timeout: float = 600.0


@dataclass(frozen=True)
class Endpoint:
    label: str
    setting: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{display_host(self.host)}:{self.port}"


@dataclass
class Plan:
    services: list[Service] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    local_models: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def display_host(host: str) -> str:
    """The address to reach a server bound to `host` from this machine."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def local_models(settings: Settings, wanted: list[str] | None) -> list[str]:
    """The transformers models the worker loads: `wanted` (checked) or every one in llm_models."""
    local = [name for name, model in settings.llm_models.items() if model.engine == "transformers"]
    if wanted is None:
        return local
    for name in wanted:
        if name not in local:
            known = ", ".join(local) or "none configured"
            raise ConfigError(f"-m {name}: not a local (engine: transformers) model in llm_models ({known})")
    return list(dict.fromkeys(wanted))


def remote_models(settings: Settings) -> list[str]:
    return [name for name, model in settings.llm_models.items() if model.engine == "openai"]


def _worker_available(repo: Path) -> bool:
    return (repo / "server" / "llm_worker").is_dir() or (repo / "server" / "llm_worker.py").is_file()


def _webui_available(repo: Path) -> bool:
    return (repo / WEBUI_FILE).is_file()


def _add_worker(plan: Plan, settings: Settings, choice: Choice, repo: Path, log_dir: Path) -> None:
    if choice.lite:
        if choice.models:
            raise ConfigError("--lite starts no local model: drop -m, or drop --lite")
        plan.notes.append("lite mode: no local LLM worker; chat uses the remote (engine: openai) models")
        return
    models = local_models(settings, choice.models)
    if not models:
        plan.notes.append("no local model configured: chat needs llm_models in configs/settings.yaml")
        return
    if not _worker_available(repo):
        plan.notes.append(f"the LLM worker ({WORKER_MODULE}) is not installed: local models are not served")
        return
    host, port = settings.llm_worker.host, settings.llm_worker.port
    argv = [sys.executable, "-m", WORKER_MODULE, "--host", host, "--port", str(port), "-m", *models]
    endpoint = Endpoint("LLM worker", "llm_worker.port", host, port)
    plan.endpoints["llm_worker"] = endpoint
    plan.local_models = models
    health = f"{endpoint.url}/health"
    plan.services.append(Service("llm_worker", argv, health, log_dir / "llm_worker.log", choice.worker_timeout))


def _add_api(plan: Plan, settings: Settings, choice: Choice, repo: Path, log_dir: Path) -> None:
    host, port = settings.api.host, settings.api.port
    init = [sys.executable, str(repo / "init_database.py"), "--create-tables", "--recreate-vs", "--missing"]
    plan.steps.append(Step("init_database", init, log_dir / "init_database.log", INIT_TIMEOUT))
    argv = [sys.executable, "-m", "server.api", "--host", host, "--port", str(port)]
    endpoint = Endpoint("API", "api.port", host, port)
    plan.endpoints["api"] = endpoint
    health = f"{endpoint.url}/health"
    plan.services.append(Service("api", argv, health, log_dir / "api.log", choice.ready_timeout, needs_init=True))


def _add_webui(plan: Plan, settings: Settings, choice: Choice, repo: Path, log_dir: Path) -> None:
    if not _webui_available(repo):
        plan.notes.append(f"the Web UI ({WEBUI_FILE}) is not installed: it is not started")
        return
    if importlib.util.find_spec("streamlit") is None:
        raise ConfigError("the Web UI needs streamlit, which is not installed: pip install -r requirements.txt")
    host, port = settings.webui.host, settings.webui.port
    argv = [sys.executable, "-m", "streamlit", "run", str(repo / WEBUI_FILE)]
    argv += ["--server.address", host, "--server.port", str(port)]
    argv += ["--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    endpoint = Endpoint("Web UI", "webui.port", host, port)
    plan.endpoints["webui"] = endpoint
    health = f"{endpoint.url}/_stcore/health"  # answers once Streamlit serves its page
    plan.services.append(Service("webui", argv, health, log_dir / "webui.log", choice.ready_timeout))


def build_plan(settings: Settings, choice: Choice, *, repo: Path, log_dir: Path) -> Plan:
    """The services to start, in order (worker, API, Web UI); raises ConfigError when the choice cannot run."""
    plan = Plan()
    if choice.worker:
        _add_worker(plan, settings, choice, repo, log_dir)
    if choice.api:
        _add_api(plan, settings, choice, repo, log_dir)
    if choice.webui:
        _add_webui(plan, settings, choice, repo, log_dir)
    if not plan.services:
        reasons = "; ".join(plan.notes) or "no service chosen"
        raise ConfigError(f"nothing to start: {reasons}")
    return plan


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port (a bind test, like the server's own bind)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise ConfigError(f"cannot bind {host}:{port}: {error.strerror}; check the host setting") from error
    return False


def check_ports(endpoints: list[Endpoint]) -> None:
    """Raise PortInUse naming every port that is taken or shared by two services; start nothing otherwise."""
    problems: list[str] = []
    seen: dict[int, Endpoint] = {}
    for endpoint in endpoints:
        other = seen.get(endpoint.port)
        if other is not None:
            problems.append(f"{other.setting} and {endpoint.setting} are both {endpoint.port}; change one of them")
            continue
        seen[endpoint.port] = endpoint
        if port_in_use(endpoint.host, endpoint.port):
            problems.append(
                f"port {endpoint.port} ({endpoint.label}) is in use by another program; "
                f"stop it or change {endpoint.setting}"
            )
    if problems:
        raise PortInUse("\n".join(problems))

"""Start Zhiku: the LLM worker, the API and the Web UI, each in its own supervised process.

Examples:
  python startup.py -a                 # everything: LLM worker (if a local model is configured), API, Web UI
  python startup.py --all-api          # LLM worker + API
  python startup.py --api              # the API alone (first run: creates the tables, builds the sample KB)
  python startup.py -a -m qwen2-0.5b   # load only this local model
  python startup.py -a --lite          # no local model: chat through the remote (engine: openai) models

Ctrl+C (or SIGTERM) stops every service cleanly. Each service logs to logs/<service>.log.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from configs import Settings, load_settings
from server.errors import ConfigError, PortInUse, ServiceFailed
from server.supervisor import Supervisor
from server.supervisor_plan import Choice, Plan, build_plan, check_ports
from server.supervisor_summary import summary, urls

REPO = Path(__file__).resolve().parent
log = logging.getLogger("zhiku.startup")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python startup.py",
        description="Start Zhiku's services as supervised processes; Ctrl+C stops them all.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Settings come from configs/settings.yaml (or ZHIKU_CONFIG); logs go to logs/<service>.log.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("-a", "--all-webui", action="store_true", help="LLM worker + API + Web UI (the whole product)")
    mode.add_argument("--all-api", action="store_true", help="LLM worker + API")
    mode.add_argument("--llm-api", action="store_true", help="the LLM worker only")
    mode.add_argument("--api", action="store_true", help="the API only (runs first-run init before it)")
    mode.add_argument("--webui", action="store_true", help="the Web UI only (talks to an API started elsewhere)")
    parser.add_argument(
        "-m",
        "--model-name",
        nargs="+",
        metavar="NAME",
        help="local model(s) the worker loads (default: every llm_models entry with engine: transformers)",
    )
    parser.add_argument("--lite", action="store_true", help="no local worker: remote (engine: openai) models only")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors and the URLs")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S", help="API/Web UI ready timeout (60)")
    parser.add_argument(
        "--worker-timeout", type=float, default=600.0, metavar="S", help="LLM worker ready timeout: model load (600)"
    )
    parser.add_argument("--stop-timeout", type=float, default=10.0, metavar="S", help="grace before SIGKILL (10)")
    parser.add_argument("--log-dir", type=Path, default=REPO / "logs", help="where <service>.log files go (logs/)")
    return parser.parse_args(argv)


def choice_from(args: argparse.Namespace) -> Choice:
    everything = args.all_webui
    return Choice(
        worker=everything or args.all_api or args.llm_api,
        api=everything or args.all_api or args.api,
        webui=everything or args.webui,
        models=args.model_name,
        lite=args.lite,
        ready_timeout=args.timeout,
        worker_timeout=args.worker_timeout,
    )


def configure_console(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False


def child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if env.get("ZHIKU_CONFIG"):
        env["ZHIKU_CONFIG"] = str(Path(env["ZHIKU_CONFIG"]).resolve())
    return env


def prepare(args: argparse.Namespace) -> tuple[Settings, Plan]:
    """Settings, the plan and the port checks: everything that can fail before a process starts."""
    settings = load_settings()
    plan = build_plan(settings, choice_from(args), repo=REPO, log_dir=args.log_dir.resolve())
    check_ports(list(plan.endpoints.values()))
    return settings, plan


def install_signal_handlers(supervisor: Supervisor) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        if not supervisor.stop_requested.is_set():
            log.info("%s received: stopping", signal.Signals(signum).name)
        supervisor.request_stop()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def show_ready(settings: Settings, plan: Plan, seconds: float, quiet: bool) -> None:
    lines = [f"{label}: {url}" for label, url in urls(plan)] if quiet else summary(settings, plan, seconds)
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    log.info("Press Ctrl+C to stop.")


def supervise(supervisor: Supervisor, settings: Settings, plan: Plan, quiet: bool) -> int:
    try:
        seconds = supervisor.start(plan.services, plan.steps)
        if not supervisor.stop_requested.is_set():
            show_ready(settings, plan, seconds, quiet)
            supervisor.run_until_stopped()
    except ServiceFailed as error:
        log.error("error: %s", error.message)
        if error.log_tail:
            log.error("last lines of its log:\n%s", error.log_tail)
        log.error("stopping the other services")
        return 1
    finally:
        supervisor.stop()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_console(args.quiet)
    try:
        settings, plan = prepare(args)
    except (ConfigError, PortInUse) as error:
        log.error("error: %s\nnothing was started", error.message)
        return 2
    supervisor = Supervisor(cwd=Path.cwd(), env=child_env(), stop_timeout=args.stop_timeout)
    install_signal_handlers(supervisor)
    return supervise(supervisor, settings, plan, args.quiet)


if __name__ == "__main__":
    sys.exit(main())

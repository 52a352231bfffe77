"""The job registry, runner and queue on their own: exclusive claims, cancel and retry rules, a cancel or a stop in
the middle of a batch, files of dead processes, batches sent back by a worker that must not write a KB."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from huey import MemoryHuey

from server.bootstrap import Services, shared_stores_only
from server.db.models import utcnow
from server.errors import JobFinished, JobNotFound, NothingToRetry
from server.jobs.queue import JobQueue
from server.jobs.registry import JobRegistry, NewFile
from server.jobs.runner import IngestRunner, RunnerParts
from server.knowledge_base.ingest import FilePreparer, PreparedFile, SourceFile
from server.knowledge_base.params import ChunkParams
from server.knowledge_base.probes import CrashProbes

KB = "单元"


@pytest.fixture
def kb(services: Services) -> Services:
    services.knowledge_bases.create(KB)
    return services


def _job(registry: JobRegistry, names: Sequence[str], job_id: str = "j1") -> str:
    files = [NewFile(name, "", 1, f"sha-{name}") for name in names]
    return registry.create(job_id, KB, "update", {"chunking": {"chunk_size": 250, "chunk_overlap": 50}}, files)


def test_a_file_is_claimed_by_one_worker_only(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    job_id = _job(registry, ["a.txt", "b.txt"])
    ids = registry.queued_files(job_id)
    first = registry.claim(job_id, ids, "lease-a")
    assert first is not None and [f.file_name for f in first.files] == ["a.txt", "b.txt"]
    assert registry.claim(job_id, ids, "lease-a") is None  # not even the same process twice
    assert registry.claim(job_id, ids, "lease-b") is None


def test_cancel_and_retry_refuse_what_they_cannot_do(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    job_id = _job(registry, ["a.txt", "b.txt"])
    claim = registry.claim(job_id, registry.queued_files(job_id)[:1], "lease-a")
    assert claim is not None
    registry.end_files(claim, {claim.files[0].id: ("failed", "unreadable")})
    with pytest.raises(NothingToRetry):
        registry.retry(_job(registry, ["c.txt"], "j2"))  # nothing of it failed
    assert registry.retry(job_id) == [claim.files[0].id]
    with pytest.raises(NothingToRetry):
        registry.retry(job_id)  # twice: the file is queued again, not failed
    registry.cancel(job_id)
    job, files = registry.get(job_id)
    assert job.state == "cancelled" and {f.state for f in files} == {"cancelled"}
    with pytest.raises(JobFinished):
        registry.cancel(job_id)
    with pytest.raises(JobNotFound):
        registry.get("missing")


def test_retry_keeps_a_job_running_while_files_are_in_work(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    job_id = _job(registry, ["a.txt", "b.txt"])
    ids = registry.queued_files(job_id)
    first, second = registry.claim(job_id, ids[:1], "lease-a"), registry.claim(job_id, ids[1:], "lease-b")
    assert first is not None and second is not None
    registry.end_files(first, {ids[0]: ("failed", "unreadable")})
    registry.retry(job_id)
    assert registry.get(job_id)[0].state == "running"  # b.txt is still in work


def test_retry_of_an_ended_job_counts_working_time_only(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    job_id = _job(registry, ["a.txt"])
    claim = registry.claim(job_id, registry.queued_files(job_id), "lease-a")
    assert claim is not None
    registry.end_files(claim, {claim.files[0].id: ("failed", "unreadable")})
    assert registry.settle(job_id) == "failed"
    job, _ = registry.get(job_id)
    assert job.started_at is not None and job.finished_at is not None
    worked = job.finished_at.replace(tzinfo=None) - job.started_at.replace(tzinfo=None)
    registry.retry(job_id)
    job, _ = registry.get(job_id)
    assert job.state == "queued" and job.started_at is not None
    since_start = utcnow().replace(tzinfo=None) - job.started_at.replace(tzinfo=None)
    assert since_start >= worked and since_start - worked < timedelta(seconds=5)


def test_only_jobs_that_ended_before_the_cut_are_pruned(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    ended, running = _job(registry, ["a.txt"], "old"), _job(registry, ["b.txt"], "live")
    registry.cancel(ended)
    assert registry.prune(utcnow() - timedelta(days=1)) == []  # it ended just now
    assert registry.prune(utcnow() + timedelta(seconds=1)) == [ended]
    assert not registry.exists(ended) and registry.exists(running)


def test_cancel_kb_stops_only_that_kb_s_live_jobs(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    done = _job(registry, ["a.txt"], "done")
    registry.cancel(done)
    live = _job(registry, ["b.txt"], "live")
    assert registry.cancel_kb("另一个库") == []
    assert registry.cancel_kb(KB) == [live]
    assert registry.get(live)[0].state == "cancelled"


def test_files_of_a_dead_process_go_back_to_the_queue(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    job_id = _job(registry, ["a.txt", "b.txt"])
    ids = registry.queued_files(job_id)
    assert registry.claim(job_id, ids[:1], "dead-lease") and registry.claim(job_id, ids[1:], "live-lease")
    released = registry.reclaim(lambda lease: lease == "live-lease")
    assert released == {job_id: ids[:1]}
    assert registry.queued() == {job_id: ids[:1]}


class _Interrupting(FilePreparer):
    """Parses as usual, then does what a user or a shutdown does while the batch is in work."""

    def __init__(self, embeddings: Any, interrupt: Any) -> None:
        super().__init__(embeddings)
        self._interrupt = interrupt

    def prepare(
        self, files: Sequence[SourceFile], params: ChunkParams, custom_docs: Any = None
    ) -> tuple[list[PreparedFile], dict[str, Any]]:
        result = super().prepare(files, params, custom_docs)
        self._interrupt()
        return result


def _runner(services: Services, registry: JobRegistry, interrupt: Any, stopping: threading.Event) -> IngestRunner:
    preparer = _Interrupting(services.embeddings, interrupt)
    parts = RunnerParts(services.catalog, services.storage, preparer, services.core.writer, services.files)
    return IngestRunner(registry, parts, lease=services.core.lease.id, stopping=stopping)


def _content(services: Services, *names: str) -> None:
    for name in names:
        path = services.storage.content_path(KB, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name} 的内容。", encoding="utf-8")


def test_a_cancel_while_a_batch_is_parsed_writes_none_of_it(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    _content(kb, "a.txt", "b.txt")
    job_id = _job(registry, ["a.txt", "b.txt"])
    runner = _runner(kb, registry, lambda: registry.cancel(job_id), threading.Event())
    assert runner.run_batch(job_id, registry.queued_files(job_id))
    job, files = registry.get(job_id)
    assert job.state == "cancelled" and {f.state for f in files} == {"cancelled"}
    assert kb.files.list_files(KB) == []


def test_a_worker_that_stops_mid_batch_hands_its_files_back(kb: Services) -> None:
    registry = JobRegistry(kb.catalog)
    _content(kb, "a.txt")
    job_id = _job(registry, ["a.txt"])
    stopping = threading.Event()
    runner = _runner(kb, registry, stopping.set, stopping)
    assert runner.run_batch(job_id, registry.queued_files(job_id))
    job, files = registry.get(job_id)
    assert job.state == "running" and [f.state for f in files] == ["queued"] and kb.files.list_files(KB) == []


def test_a_batch_this_process_must_not_write_goes_back_to_the_queue() -> None:
    seen: list[tuple[str, list[int]]] = []

    def refuse(job_id: str, file_ids: Sequence[int]) -> bool:
        seen.append((job_id, list(file_ids)))
        return len(seen) > 1

    queue = JobQueue(MemoryHuey("t", results=False), refuse)
    queue.enqueue("job", [1, 2, 3], batch_size=2)
    assert queue.pending() == 2
    assert queue.run_next() and queue.pending() == 2  # the refused batch is back at the end
    while queue.run_next():
        pass
    assert seen == [("job", [1, 2]), ("job", [3]), ("job", [1, 2])]


def test_separate_workers_write_only_stores_other_processes_share(tmp_path: Path) -> None:
    from conftest import make_settings

    from server.db.models import KnowledgeBase

    settings = make_settings(tmp_path, vector_stores={"pg": {"uri": "postgresql+psycopg://u@h/db"}})
    reason = shared_stores_only(settings)
    assert reason(KnowledgeBase(name="k", vs_type="pg", embed_model="hash")) is None
    refused = reason(KnowledgeBase(name="k", vs_type="faiss", embed_model="hash"))
    assert refused is not None and "jobs.workers" in refused


def test_a_probe_with_a_count_waits_only_that_time(tmp_path: Path) -> None:
    probes = CrashProbes(["files:stored#3"], tmp_path)
    probes.reached("files:stored")
    probes.reached("files:stored")
    probes.reached("files:committed")
    assert not list(tmp_path.iterdir())
    waiter = threading.Thread(target=probes.reached, args=("files:stored",), daemon=True)
    waiter.start()
    waiter.join(timeout=2)
    assert waiter.is_alive() and (tmp_path / "files-stored#3").exists()

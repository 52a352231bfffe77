"""Create the registry, (re)build vector stores from the content folders, and tidy up.

Examples:
  python init_database.py --create-tables
  python init_database.py --recreate-vs                 # every KB folder under data_dir
  python init_database.py --recreate-vs -n samples -e all-MiniLM-L6-v2
  python init_database.py -i -n samples                 # only new or changed files
  python init_database.py --watch -n samples            # follow the folder: ingest changes until Ctrl+C
  python init_database.py --export samples samples.zhiku.zip
  python init_database.py --import samples.zhiku.zip --name samples2 --vs-type pg
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import make_url
from tqdm import tqdm

from configs import Settings, load_settings
from server.bootstrap import build_services, configure_logging
from server.errors import ZhikuError
from server.jobs.service import JobService
from server.jobs.states import DONE_FILE
from server.jobs.sync import FolderSync, FolderWatcher
from server.knowledge_base.maintenance import MaintenanceService
from server.knowledge_base.porter import ImportRequest, KbPorter
from server.knowledge_base.rebuild import RebuildProgress, RebuildRequest, RebuildService
from server.knowledge_base.service import KnowledgeBaseService


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Zhiku registry and vector store maintenance.")
    parser.add_argument("--create-tables", action="store_true", help="create or upgrade the registry tables")
    parser.add_argument("--recreate-vs", action="store_true", help="rebuild vector stores from content folders")
    parser.add_argument(
        "--missing",
        action="store_true",
        help="with --recreate-vs: only KBs that are unregistered or have no vectors yet",
    )
    parser.add_argument("--clear-tables", action="store_true", help="empty the registry (files stay on disk)")
    parser.add_argument("-u", "--update-in-db", action="store_true", help="re-vectorize the files in the registry")
    parser.add_argument("-i", "--increment", action="store_true", help="vectorize only new or changed files")
    parser.add_argument("--prune-db", action="store_true", help="forget files that were deleted from disk")
    parser.add_argument("--prune-folder", action="store_true", help="delete files that are not in the registry")
    parser.add_argument("-n", "--kb-name", nargs="+", default=[], help="only these knowledge bases")
    parser.add_argument("-e", "--embed-model", help="embedding model for --recreate-vs (switches the KB to it)")
    parser.add_argument("--vs-type", help="vector store type for --recreate-vs (moves the KB to it)")
    parser.add_argument("--watch", action="store_true", help="then follow the content folders until Ctrl+C")
    parser.add_argument("--export", nargs=2, metavar=("KB", "FILE"), help="write knowledge base KB to archive FILE")
    parser.add_argument("--no-vectors", action="store_true", help="with --export: leave the vectors out")
    parser.add_argument("--import", dest="import_file", metavar="FILE", help="import a KB archive")
    parser.add_argument("--name", help="with --import: the new KB's name (default: the archive's)")
    parser.add_argument("--overwrite", action="store_true", help="with --import: replace a KB of that name")
    return parser.parse_args(argv)


class DatabaseTool:
    """The flags' actions, over the same services the API uses."""

    def __init__(
        self,
        kbs: KnowledgeBaseService,
        jobs: JobService,
        rebuild: RebuildService,
        maintenance: MaintenanceService,
        porter: KbPorter,
    ) -> None:
        self.kbs = kbs
        self.jobs = jobs
        self.rebuild = rebuild
        self.maintenance = maintenance
        self.porter = porter

    def run(self, args: argparse.Namespace) -> dict[str, str]:
        """Every action the flags ask for, in a fixed order; returns {kb/file: reason} for files left out."""
        failed: dict[str, str] = {}
        maintenance = self.maintenance
        if args.export:
            self.export(args.export[0], Path(args.export[1]), with_vectors=not args.no_vectors)
        if args.import_file:
            self.import_archive(args)
        if args.clear_tables:
            maintenance.clear_registry()
            print("registry cleared (files on disk are untouched)")
        if args.recreate_vs:
            failed.update(self.recreate(args))
        if args.update_in_db:
            failed.update(self.revectorize(args.kb_name, maintenance.registered_files))
        if args.increment:
            failed.update(self.revectorize(args.kb_name, maintenance.changed_files))
        if args.prune_db:
            self.per_kb(args.kb_name, maintenance.prune_db, "forgot")
        if args.prune_folder:
            self.per_kb(args.kb_name, maintenance.prune_folder, "deleted")
        return failed

    def export(self, kb_name: str, target: Path, *, with_vectors: bool) -> None:
        report = self.porter.export(kb_name, target, with_vectors=with_vectors)
        what = "with vectors" if report.vectors else "without vectors"
        print(f"exported {kb_name}: {report.files} files, {report.chunks} chunks {what}, {report.bytes} bytes")

    def import_archive(self, args: argparse.Namespace) -> None:
        request = ImportRequest(
            Path(args.import_file), name=args.name, vs_type=args.vs_type, embed_model=args.embed_model,
            overwrite=args.overwrite,
        )  # fmt: skip
        with tqdm(desc="import", unit="chunk", file=sys.stderr) as bar:

            def advance(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            report = self.porter.import_archive(request, advance)
        reused = "vectors reused" if report.vectors_reused else f"embedded again with {report.embed_model}"
        print(f"imported {report.kb_name} ({report.vs_type}): {report.files} files, {report.chunks} chunks, {reused}")

    def targets(self, names: list[str]) -> list[str]:
        return names or self.maintenance.kb_names()

    def recreate(self, args: argparse.Namespace) -> dict[str, str]:
        failed: dict[str, str] = {}
        for name in self.targets(args.kb_name):
            if args.missing and not self.maintenance.needs_build(name):
                continue
            if name not in self.kbs.list_names():
                self.kbs.create(name, vs_type=args.vs_type, embed_model=args.embed_model)
            with tqdm(desc=f"rebuild {name}", unit="file", file=sys.stderr) as bar:

                def advance(progress: RebuildProgress, bar: tqdm = bar) -> None:
                    bar.total = progress.total
                    bar.set_postfix_str(progress.doc[-40:])
                    bar.update(1)

                request = RebuildRequest(args.vs_type, args.embed_model)
                result = self.rebuild.recreate(name, request, on_progress=advance)
            failed.update({f"{name}/{file}": reason for file, reason in result.items()})
        return failed

    def per_kb(self, names: list[str], action: Callable[[str], list[str]], verb: str) -> None:
        for name in self.targets(names):
            done = action(name)
            print(f"{name}: {verb} {len(done)} files" + (f" ({', '.join(done[:5])}...)" if done else ""))

    def revectorize(self, names: list[str], pick: Callable[[str], list[str]]) -> dict[str, str]:
        """The picked files of each KB as one background job, the same pipeline as the API's, followed here."""
        failed: dict[str, str] = {}
        for name in self.targets(names):
            file_names = pick(name)
            if file_names:
                failed.update(self.follow(name, self.jobs.submit_folder_files(name, file_names).job_id))
        return failed

    def follow(self, kb_name: str, job_id: str) -> dict[str, str]:
        """A progress bar until the job ends; returns its failures."""
        with tqdm(desc=f"vectorize {kb_name}", unit="file", file=sys.stderr) as bar:
            for view in self.jobs.progress(job_id, poll_s=0.2):
                bar.total = view.total_files
                bar.update(sum(view.counts[state] for state in DONE_FILE) - bar.n)
                bar.set_postfix_str(f"{view.chunks} chunks, {view.files_per_s:.1f} files/s")
        files = self.jobs.get(job_id).files or []
        return {f"{kb_name}/{f.file_name}": f.error for f in files if f.state == "failed"}

    def summarize(self, failed: dict[str, str], seconds: float, database: str) -> None:
        for name, reason in failed.items():
            print(f"  skipped {name}: {reason}", file=sys.stderr)
        for kb in self.kbs.list_details():
            print(f"{kb.name}: {kb.file_count} files, {kb.vs_type}/{kb.embed_model}")
        print(f"done in {seconds:.1f}s; {len(failed)} files skipped; database {database}")


def watch(sync: FolderSync, settings: Settings, names: list[str]) -> None:
    """Follow the KBs' content folders until Ctrl+C."""
    watcher = FolderWatcher(sync, settings.data_dir, debounce_ms=settings.jobs.sync_debounce_ms, only=names)
    print(f"watching {', '.join(names) or 'no knowledge base'}; Ctrl+C stops", file=sys.stderr)
    watcher.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()


def tool_settings(settings: Settings) -> Settings:
    """This process runs its own jobs (at least one worker thread) and watches folders only with --watch."""
    jobs = settings.jobs.model_copy(update={"workers": max(settings.jobs.workers, 1), "watch_folders": False})
    return settings.model_copy(update={"jobs": jobs})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        settings = tool_settings(load_settings())
        configure_logging("WARNING")
        services = build_services(settings)
        services.start()
    except ZhikuError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    tool = DatabaseTool(
        services.knowledge_bases, services.jobs, services.rebuild, services.maintenance, services.porter
    )
    try:
        failed = tool.run(args)
        database = make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
        tool.summarize(failed, time.perf_counter() - started, database)
        if args.watch:
            watch(services.folder_sync, settings, tool.targets(args.kb_name))
    except ZhikuError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

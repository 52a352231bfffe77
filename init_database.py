"""Create the registry, (re)build vector stores from the content folders, and tidy up.

Examples:
  python init_database.py --create-tables
  python init_database.py --recreate-vs                 # every KB folder under data_dir
  python init_database.py --recreate-vs -n samples -e all-MiniLM-L6-v2
  python init_database.py -i -n samples                 # only new or changed files
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from sqlalchemy import make_url
from tqdm import tqdm

from configs import load_settings
from server.bootstrap import build_services, configure_logging
from server.errors import ZhikuError
from server.knowledge_base.files import FileService, UpdateOptions
from server.knowledge_base.maintenance import MaintenanceService
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
    return parser.parse_args(argv)


class DatabaseTool:
    """The flags' actions, over the same services the API uses."""

    def __init__(
        self,
        kbs: KnowledgeBaseService,
        files: FileService,
        rebuild: RebuildService,
        maintenance: MaintenanceService,
    ) -> None:
        self.kbs = kbs
        self.files = files
        self.rebuild = rebuild
        self.maintenance = maintenance

    def run(self, args: argparse.Namespace) -> dict[str, str]:
        """Every action the flags ask for, in a fixed order; returns {kb/file: reason} for files left out."""
        failed: dict[str, str] = {}
        maintenance = self.maintenance
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
        failed: dict[str, str] = {}
        for name in self.targets(names):
            for file_name in tqdm(pick(name), desc=f"vectorize {name}", unit="file", file=sys.stderr):
                errors = self.files.update(name, [file_name], UpdateOptions())
                failed.update({f"{name}/{f}": e.message for f, e in errors.items()})
        return failed

    def summarize(self, failed: dict[str, str], seconds: float, database: str) -> None:
        for name, reason in failed.items():
            print(f"  skipped {name}: {reason}", file=sys.stderr)
        for kb in self.kbs.list_details():
            print(f"{kb.name}: {kb.file_count} files, {kb.vs_type}/{kb.embed_model}")
        print(f"done in {seconds:.1f}s; {len(failed)} files skipped; database {database}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        settings = load_settings()
        configure_logging("WARNING")
        services = build_services(settings)
    except ZhikuError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    tool = DatabaseTool(services.knowledge_bases, services.files, services.rebuild, services.maintenance)
    try:
        failed = tool.run(args)
        database = make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
        tool.summarize(failed, time.perf_counter() - started, database)
    except ZhikuError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

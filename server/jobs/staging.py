"""Where a job's uploaded bytes wait until their file is written: `<data_dir>/.jobs/<job id>/<n>/<name>`."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from server.jobs.registry import JobRegistry
from server.jobs.states import JOB_ENDED

JOBS_DIR = ".jobs"


class JobFolders:
    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self.root = data_dir / JOBS_DIR

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def relative(self, path: Path) -> str:
        """A staged path as the registry keeps it: relative to the data dir, which may move."""
        return str(path.relative_to(self._data_dir))

    def resolve(self, staged: str) -> Path:
        return self._data_dir / staged

    def drop(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def drop_files(self, staged: Iterable[str]) -> None:
        for item in staged:
            if item:
                self.resolve(item).unlink(missing_ok=True)

    def sweep(self, known: Callable[[str], bool]) -> None:
        """Remove the folders of jobs the registry does not know (a crash between staging and recording)."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir() and not known(folder.name):
                shutil.rmtree(folder, ignore_errors=True)


def settle_job(registry: JobRegistry, folders: JobFolders, job_id: str) -> str:
    """End the job if nothing is left to do, and drop the staged bytes no retry can use; returns its state."""
    state = registry.settle(job_id)
    if state == "done":
        folders.drop(job_id)
    elif state in JOB_ENDED:
        folders.drop_files(registry.ended_staged(job_id, ("cancelled", "duplicate")))
    return state

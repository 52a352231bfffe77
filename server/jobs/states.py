"""The states of a job and of each of its files."""

from __future__ import annotations

from typing import Literal

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FileState = Literal["queued", "parsing", "embedding", "writing", "done", "failed", "cancelled", "duplicate"]

JOB_STATES: tuple[JobState, ...] = ("queued", "running", "done", "failed", "cancelled")
FILE_STATES: tuple[FileState, ...] = (
    "queued",
    "parsing",
    "embedding",
    "writing",
    "done",
    "failed",
    "cancelled",
    "duplicate",
)
JOB_ENDED: tuple[JobState, ...] = ("done", "failed", "cancelled")
ACTIVE_FILE: tuple[FileState, ...] = ("parsing", "embedding", "writing")  # a worker holds the file
DONE_FILE: tuple[FileState, ...] = ("done", "duplicate", "failed", "cancelled")  # nothing more will happen to it

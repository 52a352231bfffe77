"""Saving uploaded bytes to disk before they are parsed: names checked, one size limit over the whole upload."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from server.errors import FileTooLarge, InvalidInput
from server.knowledge_base.ingest import SourceFile
from server.knowledge_base.paths import validate_upload_name

Upload = tuple[str | None, BinaryIO]
"""A file as a request sent it: its name (may hold '/' for folders) and its bytes."""

_BLOCK = 1 << 20


def stage_uploads(root: Path, uploads: Sequence[Upload], limit_bytes: int) -> list[SourceFile]:
    """Copy uploads under `root` (one subfolder each, so equal base names never clash); raises InvalidName for a
    bad name, InvalidInput for a name sent twice and FileTooLarge once the upload passes `limit_bytes`."""
    names = [validate_upload_name(name) for name, _ in uploads]
    if len(set(names)) != len(names):
        raise InvalidInput("the same file name was sent twice in one upload")
    staged, written = [], 0
    for index, ((_, stream), name) in enumerate(zip(uploads, names, strict=True)):
        path = root / str(index) / Path(name).name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            while block := stream.read(_BLOCK):
                written += len(block)
                if written > limit_bytes:
                    raise FileTooLarge(
                        f"upload exceeds {limit_bytes // (1024 * 1024)} MB (api.max_upload_mb); "
                        "send fewer or smaller files"
                    )
                out.write(block)
        staged.append(SourceFile(path, name))
    return staged

"""A minimal reader for OLE2 compound files ("structured storage"), enough to pull streams out of a .doc.

Follows [MS-CFB]: a FAT of sector chains, a directory of 128-byte entries, a mini stream for small streams.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
_END_OF_CHAIN = 0xFFFFFFFE
_NO_SECTOR = 0xFFFFFFFF
_NO_STREAM = 0xFFFFFFFF
_HEADER_DIFAT = 109
_STREAM = 2

_SectorReader = Callable[[int], bytes]


class CompoundFileError(ValueError):
    """The bytes are not a readable compound file."""


class CompoundFile:
    """Read-only access to the top-level streams of a compound file held in memory."""

    def __init__(self, data: bytes) -> None:
        if not data.startswith(OLE_MAGIC) or len(data) < 512:
            raise CompoundFileError("not an OLE2 compound file")
        self._data = data
        if _u16(data, 30) not in (9, 12) or _u16(data, 32) != 6:
            raise CompoundFileError("unexpected sector sizes in the header")
        self._sector_size = 1 << _u16(data, 30)
        self._mini_size = 1 << _u16(data, 32)
        self._mini_cutoff = _u32(data, 56)
        self._fat = self._read_fat()
        self._entries = self._read_directory(_u32(data, 48))
        root = self._entries[0]
        self._mini_stream = self._read_chain(root.start, root.size, self._fat, self._sector)
        self._mini_fat = _u32_array(self._read_chain(_u32(data, 60), None, self._fat, self._sector))

    def stream(self, name: str) -> bytes | None:
        """The content of the top-level stream called `name`, or None when there is none."""
        entry = next((e for e in self._root_children() if e.name == name and e.kind == _STREAM), None)
        if entry is None:
            return None
        if entry.size < self._mini_cutoff:
            return self._read_chain(entry.start, entry.size, self._mini_fat, self._mini_sector)
        return self._read_chain(entry.start, entry.size, self._fat, self._sector)

    def _read_fat(self) -> list[int]:
        data = self._data
        difat = [s for s in struct.unpack_from(f"<{_HEADER_DIFAT}I", data, 76) if s < _END_OF_CHAIN]
        per_sector = self._sector_size // 4 - 1
        next_difat, seen = _u32(data, 68), 0
        while next_difat < _END_OF_CHAIN and seen <= len(data) // self._sector_size:
            block = self._sector(next_difat)
            difat.extend(s for s in struct.unpack_from(f"<{per_sector}I", block) if s < _END_OF_CHAIN)
            next_difat, seen = _u32(block, per_sector * 4), seen + 1
        return _u32_array(b"".join(self._sector(sid) for sid in difat))

    def _read_directory(self, start: int) -> list[_Entry]:
        raw = self._read_chain(start, None, self._fat, self._sector)
        entries = [_Entry(raw[i : i + 128]) for i in range(0, len(raw) - 127, 128)]
        if not entries:
            raise CompoundFileError("empty directory")
        return entries

    def _root_children(self) -> list[_Entry]:
        found: list[_Entry] = []
        pending = [self._entries[0].child]
        while pending and len(found) <= len(self._entries):
            index = pending.pop()
            if index == _NO_STREAM or index >= len(self._entries):
                continue
            entry = self._entries[index]
            found.append(entry)
            pending.extend((entry.left, entry.right))
        return found

    def _sector(self, sid: int) -> bytes:
        offset = (sid + 1) * self._sector_size
        if offset >= len(self._data):
            raise CompoundFileError(f"sector {sid} lies past the end of the file (truncated?)")
        return self._data[offset : offset + self._sector_size]

    def _mini_sector(self, sid: int) -> bytes:
        offset = sid * self._mini_size
        return self._mini_stream[offset : offset + self._mini_size]

    def _read_chain(self, start: int, size: int | None, fat: list[int], read: _SectorReader) -> bytes:
        parts: list[bytes] = []
        sid, steps = start, 0
        while sid < _END_OF_CHAIN:
            if sid >= len(fat) or steps > len(fat):
                raise CompoundFileError("broken sector chain")
            parts.append(read(sid))
            sid, steps = fat[sid], steps + 1
        content = b"".join(parts)
        return content if size is None else content[:size]


class _Entry:
    __slots__ = ("child", "kind", "left", "name", "right", "size", "start")

    def __init__(self, raw: bytes) -> None:
        name_length = min(_u16(raw, 64), 64)
        self.name = raw[: max(name_length - 2, 0)].decode("utf-16-le", errors="replace")
        self.kind = raw[66]
        self.left, self.right, self.child = struct.unpack_from("<3I", raw, 68)
        self.start = _u32(raw, 116)
        self.size = _u32(raw, 120)


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _u32_array(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 4}I", data[: len(data) // 4 * 4]))

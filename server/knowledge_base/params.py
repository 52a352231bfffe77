"""Chunking parameters and the defaults a request falls back to (from the settings, via bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from server.errors import FileTooLarge, InvalidInput
from server.ocr import check_mode as check_ocr_mode
from server.retrieval.modes import SearchMode
from server.splitter import ChineseRecursiveTextSplitter

MAX_CHUNK_SIZE = 100_000  # units; a chunk this long is past what any embedding model reads


@dataclass(frozen=True)
class ChunkParams:
    """How a file is read and split: chunking, and its OCR mode ("" follows the KB's, then the settings')."""

    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool = False
    ocr: str = ""

    def __post_init__(self) -> None:
        if self.ocr:
            check_ocr_mode(self.ocr)
        if self.chunk_size > MAX_CHUNK_SIZE:
            raise InvalidInput(f"chunk_size must be at most {MAX_CHUNK_SIZE:,}, got {self.chunk_size}")
        ChineseRecursiveTextSplitter(self.chunk_size, self.chunk_overlap)  # raises InvalidInput with the values


def for_kb(params: ChunkParams, kb_ocr_mode: str) -> ChunkParams:
    """The params with the KB's own OCR mode where the request named none."""
    return params if params.ocr or not kb_ocr_mode else replace(params, ocr=kb_ocr_mode)


@dataclass(frozen=True)
class Chunking:
    """The chunking a request asks for; a field left None takes the default from the settings."""

    chunk_size: int | None = None
    chunk_overlap: int | None = None
    zh_title_enhance: bool | None = None
    ocr: str | None = None  # auto, always, never; None: the KB's mode


@dataclass(frozen=True)
class KbDefaults:
    """What a request falls back to for what it leaves out, and the bound it must keep (from the settings)."""

    vs_type: str
    embed_model: str
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool
    top_k: int
    score_threshold: float
    search_mode: SearchMode
    max_query_chars: int

    def chunk_params(self, chunking: Chunking | None = None) -> ChunkParams:
        """A request's chunking, with these defaults for what it left out; raises InvalidInput when unusable."""
        asked = chunking or Chunking()
        return ChunkParams(
            self.chunk_size if asked.chunk_size is None else asked.chunk_size,
            self.chunk_overlap if asked.chunk_overlap is None else asked.chunk_overlap,
            self.zh_title_enhance if asked.zh_title_enhance is None else asked.zh_title_enhance,
            asked.ocr or "",
        )

    def check_query(self, query: str) -> None:
        if len(query) > self.max_query_chars:
            raise FileTooLarge(
                f"the query has {len(query):,} characters, more than {self.max_query_chars:,} "
                "(limits.max_query_chars); ask a shorter question: long ones hold the query embedder and slow "
                "every other search down"
            )

    def search_limits(self, top_k: int | None, score_threshold: float | None) -> tuple[int, float]:
        """A request's top_k and score_threshold, with these defaults for the ones it left out."""
        return top_k or self.top_k, self.score_threshold if score_threshold is None else score_threshold

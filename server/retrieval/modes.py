"""The search modes, defined once: settings, request models, services and the Web UI all take them from here."""

from __future__ import annotations

from typing import Literal, cast, get_args

from server.errors import UnknownSearchMode

SearchMode = Literal["dense", "keyword", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)
Fusion = Literal["rrf", "weighted"]  # how hybrid mode joins its dense and keyword lists
KbSearchMode = Literal["", SearchMode]  # a KB's own mode; "" follows the global kb.search_mode

SEARCH_MODE_HELP = (
    "dense, keyword (BM25) or hybrid (both, fused by kb.fusion); default: the KB's own, else kb.search_mode"
)


def check_mode(mode: str) -> SearchMode:
    if mode not in SEARCH_MODES:
        raise UnknownSearchMode(f"unknown search_mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
    return cast(SearchMode, mode)

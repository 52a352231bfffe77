"""English (and other Latin-script) words for the keyword index: lower-cased, stop words dropped, stemmed.

Stemming lets "proteins" match "protein" and "inhibited" match "inhibits", which is most of what BM25
engines such as Lucene's English analyzer do beyond splitting words. Snowball's English stemmer is the usual
choice; words containing digits (gene names, versions, error codes) are kept as they are.
"""

from __future__ import annotations

import threading
from functools import cache, lru_cache
from typing import Any

# Lucene's English stop words plus a few frequent function words; small on purpose, since BM25's IDF already
# discounts common words and a long list would drop words that matter in questions ("not", "how").
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
        "were",
        "been",
        "has",
        "have",
        "had",
        "its",
        "from",
        "which",
        "who",
        "whom",
        "whose",
        "do",
        "does",
        "did",
    }
)


_stem_lock = threading.Lock()  # a Snowball stemmer keeps per-call state: one caller at a time


@cache
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def english_token(word: str) -> str:
    """The index form of one lower-cased word ("" for a stop word)."""
    if word in STOP_WORDS:
        return ""
    if not (word.isascii() and word.isalpha()):
        return word
    with _stem_lock:
        return str(_stemmer().stemWord(word))

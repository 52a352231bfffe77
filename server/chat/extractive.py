"""The answer when no LLM is configured: the sentences of the retrieved chunks that best match the question.

Nothing is generated: sentences are quoted as written, in document order, with the matched words in **bold** and
the number of the chunk they come from, so the reader can check each one against the cited source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from server.knowledge_base.search import SearchResult
from server.retrieval.keyword_index import tokenize

MAX_SENTENCES = 3


@dataclass(frozen=True)
class Sentence:
    text: str
    citation: int  # the chunk's number in the citations, from 1
    order: int  # position among all sentences, to keep document order
    score: int


def split_sentences(text: str) -> list[str]:
    """Sentences ending in Chinese 。！？； or English .!?; line breaks end a sentence too."""
    pieces = re.split(r"(?<=[。！？!?；;])|(?<=[.])(?=\s)|\n+", text)
    return [piece.strip() for piece in pieces if piece and piece.strip()]


def _scored(query_terms: set[str], results: Sequence[SearchResult]) -> list[Sentence]:
    sentences: list[Sentence] = []
    for number, result in enumerate(results, start=1):
        for text in split_sentences(result.page_content):
            score = len(query_terms & set(tokenize(text)))
            sentences.append(Sentence(text, number, len(sentences), score))
    return sentences


def best_sentences(query: str, results: Sequence[SearchResult], limit: int = MAX_SENTENCES) -> list[Sentence]:
    """Up to `limit` sentences sharing the most words with `query`, in document order; none share a word: []."""
    terms = set(tokenize(query))
    matching = [sentence for sentence in _scored(terms, results) if sentence.score > 0]
    top = sorted(matching, key=lambda sentence: (-sentence.score, sentence.order))[:limit]
    return sorted(top, key=lambda sentence: sentence.order)


def highlight(text: str, words: set[str]) -> str:
    """`text` with each of `words` found in it in **bold** (longest first, so sub-words do not split a word)."""
    found = sorted((word for word in words if len(word) > 1 or not word.isascii()), key=len, reverse=True)
    if not found:
        return text
    pattern = re.compile("|".join(re.escape(word) for word in found), re.IGNORECASE)
    return pattern.sub(lambda match: f"**{match.group()}**", text)


def extractive_answer(query: str, results: Sequence[SearchResult], limit: int = MAX_SENTENCES) -> str:
    """Markdown lines "- sentence [n]" for the best sentences; "" when no sentence matches the question."""
    terms = set(tokenize(query)) | set(query.lower().split())
    lines = [
        f"- {highlight(sentence.text, terms)} [{sentence.citation}]"
        for sentence in best_sentences(query, results, limit)
    ]
    return "\n".join(lines)

"""Direct answers: a question that a FAQ already answers gets the stored answer, with no LLM call (MaxKB's
"direct return", Dify's annotation reply).

The retrieved hit must be a FAQ phrasing (server/loaders/faq.py) and either the best hit scoring above its KB's
`direct_answer_threshold` (a calibrated relevance, as every score) or a stored question asked word for word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.search import SearchResult

_TRAILING = re.compile(r"[\s?？!！.。,，;；:：~～]+$")
OFF = 1.0  # no score is above it, so a threshold of 1 turns direct answers off, word-for-word matches included


@dataclass(frozen=True)
class DirectAnswer:
    answer: str
    result: SearchResult  # the FAQ phrasing that matched, cited as the answer's source
    kb_name: str
    exact: bool  # the question was a stored one, word for word


class DirectAnswers:
    def __init__(self, catalog: KbCatalog, default_threshold: float) -> None:
        self._catalog = catalog
        self._default = default_threshold

    def find(self, kb_names: str | Sequence[str], query: str, results: Sequence[SearchResult]) -> DirectAnswer | None:
        """The stored answer to give instead of asking a model, or None."""
        asked = _normalized(query)
        exact = next((hit for hit in results if _is_faq(hit) and _normalized(_question(hit)) == asked), None)
        if exact is not None:
            answer = self._answer(kb_names, exact, exact=True)
            return answer if self.threshold(answer.kb_name) < OFF else None
        best = max((hit for hit in results if hit.score is not None), key=_score, default=None)
        if best is None or not _is_faq(best):
            return None
        answer = self._answer(kb_names, best, exact=False)
        return answer if _score(best) > self.threshold(answer.kb_name) else None

    def threshold(self, kb_name: str) -> float:
        kb = self._catalog.find(kb_name)
        own = kb.direct_answer_threshold if kb is not None else None
        return self._default if own is None else own

    def _answer(self, kb_names: str | Sequence[str], result: SearchResult, *, exact: bool) -> DirectAnswer:
        kb_name = str(result.metadata.get("kb") or (kb_names if isinstance(kb_names, str) else kb_names[0]))
        return DirectAnswer(str(result.metadata["answer"]), result, kb_name, exact)


def _score(result: SearchResult) -> float:
    return result.score or 0.0


def _question(result: SearchResult) -> str:
    return str(result.metadata.get("question", ""))


def _is_faq(result: SearchResult) -> bool:
    return "faq_id" in result.metadata and isinstance(result.metadata.get("answer"), str)


def _normalized(text: str) -> str:
    """Case, width, spacing and trailing punctuation do not make a question another one."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _TRAILING.sub("", " ".join(folded.split()))

"""Scores as calibrated relevance: the chance that a chunk belongs to a relevant document, on one [0, 1] scale.

A cosine of 0.85 is a near miss for multilingual-e5 and a strong match for MiniLM, and a BM25 score means
something else again, so one `score_threshold` meant a different quality of chunk in each mode. Each side's raw
score goes through a logistic curve fitted by `bench/calibrate.py` on the eval sets (calibration.json beside this
file): per embedding model for the dense side (a model without a curve keeps its cosine), and on the BM25 score
for the keyword side. Each curve is monotone, so calibration never changes a list's order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CURVES_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Curve:
    weights: tuple[float, ...]
    bias: float

    def __call__(self, *features: float) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass(frozen=True)
class Calibration:
    dense: Mapping[str, Curve]
    keyword: Curve  # on bm25_to_score alone, so the calibrated order is BM25's

    def dense_score(self, model: str, cosine: float) -> float:
        curve = self.dense.get(model)
        return cosine if curve is None else curve(cosine)

    def keyword_score(self, score: float) -> float:
        return self.keyword(score)


def _curve(fields: Mapping[str, float], names: tuple[str, ...]) -> Curve:
    return Curve(tuple(float(fields[f"w_{name}"]) for name in names), float(fields["bias"]))


@cache
def bundled() -> Calibration:
    """The curves shipped with the code (read once, on first use)."""
    data = json.loads(CURVES_FILE.read_text(encoding="utf-8"))
    dense = {model: _curve(fields, ("score",)) for model, fields in data["dense"].items()}
    return Calibration(dense, _curve(data["keyword"], ("score",)))

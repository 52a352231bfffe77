"""Reranking with a tiny random cross-encoder built at test time (real sentence-transformers loading code)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.retrieval.reranker import CrossEncoderReranker
from tests.conftest import make_settings
from tests.test_retrieval_api import CORPUS, add_docs, create, search

pytestmark = pytest.mark.integration

WORDS = ["the", "cat", "dog", "fox", "zebra", "brown", "quick", "a", "word", "火", "锅", "天", "气"]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizer(str(vocab))
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        num_labels=1,
    )
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_scores_are_within_unit_interval(tiny_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    scores = reranker.scores("brown fox", ["a quick brown fox", "the cat", "火锅"])
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert reranker.scores("q", []) == []


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    from server.errors import RerankerUnavailable

    with pytest.raises(RerankerUnavailable, match=r"reranker\.path"):
        CrossEncoderReranker(tmp_path / "nope").scores("q", ["text"])


def test_search_returns_candidates_in_cross_encoder_order(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, reranker={"enabled": True, "path": str(tiny_cross_encoder)})
    with TestClient(create_app(settings)) as client:
        create(client, "docs")
        add_docs(client, "docs", CORPUS)
        query = "the brown fox"
        results = search(client, "docs", query, search_mode="hybrid", top_k=3, fetch_k=7)
        expected = CrossEncoderReranker(tiny_cross_encoder).scores(query, list(CORPUS.values()))
        best = sorted(zip(expected, CORPUS, strict=True), reverse=True)[:3]
        assert [r["metadata"]["source"] for r in results] == [name for _, name in best]
        assert [r["score"] for r in results] == pytest.approx([score for score, _ in best], abs=1e-5)

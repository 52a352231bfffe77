"""The behaviour every VectorStore backend must show, the same errors for the same conditions included.

tests/test_store_conformance.py runs it for every backend registered in server.vectorstores.registry.STORES.
A subclass implements `make_store` (a fresh, not yet created store) and `reopen` (close it and open a new
instance on the same data, as after a process restart). Vectors come from a seeded numpy generator, so no
embedding model is needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.errors import DuplicateChunkId, InvalidInput, StoreDimensionMismatch, StoreMissing
from server.vectorstores.base import AnyOf, Vectors, VectorStore

DIM = 16


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> Vectors:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def add_sample(store: VectorStore, n: int = 20, seed: int = 0) -> tuple[list[str], Vectors]:
    """n chunks spread over four source files; returns their ids and vectors."""
    vectors = unit_vectors(n, store.dim, seed)
    texts = [f"chunk {i}" for i in range(n)]
    metadatas = [{"source": f"doc{i % 4}.md", "page": i} for i in range(n)]
    ids = store.add(texts, vectors, metadatas, ids=[f"id-{i}" for i in range(n)])
    return ids, vectors


class StoreConformance:
    """Not collected itself (no Test prefix); subclasses named Test... run every test here."""

    # Wall-clock budget for adding 10k chunks of dim 384; a remote backend may raise it.
    batch_add_budget_s = 3.0
    persistent = True  # False: an in-memory store, for which the restart tests do not apply

    def make_store(self, tmp_path: Path, dim: int) -> VectorStore:
        raise NotImplementedError

    def reopen(self, store: VectorStore, tmp_path: Path, dim: int) -> VectorStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VectorStore]:
        created = self.make_store(tmp_path, DIM)
        created.create()
        yield created
        created.close()

    # -- add -----------------------------------------------------------------------------------------------

    def test_add_returns_the_given_ids(self, store: VectorStore) -> None:
        ids, _ = add_sample(store, n=5)
        assert ids == [f"id-{i}" for i in range(5)]
        assert store.count() == 5

    def test_add_generates_unique_ids(self, store: VectorStore) -> None:
        ids = store.add(["a", "b", "c"], unit_vectors(3), [{}, {}, {}])
        assert len(ids) == 3
        assert len(set(ids)) == 3
        assert all(isinstance(i, str) and i for i in ids)
        assert [chunk.text for chunk in store.get(ids)] == ["a", "b", "c"]

    def test_add_nothing_is_a_no_op(self, store: VectorStore) -> None:
        assert store.add([], np.zeros((0, DIM), dtype=np.float32), []) == []
        assert store.count() == 0

    def test_duplicate_ids_are_rejected(self, store: VectorStore) -> None:
        add_sample(store, n=3)
        with pytest.raises(DuplicateChunkId):
            store.add(["x"], unit_vectors(1, seed=9), [{}], ids=["id-1"])
        with pytest.raises(InvalidInput):
            store.add(["x", "y"], unit_vectors(2, seed=9), [{}, {}], ids=["new", "new"])
        assert store.count() == 3
        assert store.get(["new"]) == []

    def test_wrong_dimension_is_rejected(self, store: VectorStore) -> None:
        with pytest.raises(InvalidInput):
            store.add(["x"], unit_vectors(1, dim=DIM + 1), [{}])
        add_sample(store, n=3)
        with pytest.raises(InvalidInput):
            store.search(unit_vectors(1, dim=DIM - 1)[0], top_k=3)
        assert store.count() == 3

    def test_mismatched_lengths_are_rejected(self, store: VectorStore) -> None:
        with pytest.raises(InvalidInput):
            store.add(["only one"], unit_vectors(2), [{}, {}])
        with pytest.raises(InvalidInput):
            store.add(["a", "b"], unit_vectors(2), [{}])
        with pytest.raises(InvalidInput):
            store.add(["a", "b"], unit_vectors(2), [{}, {}], ids=["just-one"])
        assert store.count() == 0

    # -- search --------------------------------------------------------------------------------------------

    def test_search_finds_the_exact_vector_first(self, store: VectorStore) -> None:
        ids, vectors = add_sample(store)
        hits = store.search(vectors[7], top_k=5)
        assert hits[0].id == ids[7]
        assert hits[0].text == "chunk 7"
        assert hits[0].metadata == {"source": "doc3.md", "page": 7}
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        scores = [hit.score for hit in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= score <= 1.0 for score in scores)

    def test_scores_stay_within_zero_and_one(self, store: VectorStore) -> None:
        vector = unit_vectors(1)[0]
        store.add(["same", "opposite"], np.stack([vector, -vector]), [{}, {}], ids=["same", "opposite"])
        hits = {hit.id: hit.score for hit in store.search(vector, top_k=2)}
        assert hits["same"] == pytest.approx(1.0, abs=1e-4)
        assert hits.get("opposite", 0.0) == 0.0  # cosine -1 clamps to 0
        assert all(0.0 <= score <= 1.0 for score in hits.values())

    def test_score_threshold_filters(self, store: VectorStore) -> None:
        ids, vectors = add_sample(store)
        everything = store.search(vectors[3], top_k=20)
        cut = everything[4].score
        kept = store.search(vectors[3], top_k=20, score_threshold=cut)
        assert all(hit.score >= cut for hit in kept)
        assert [hit.id for hit in kept] == [hit.id for hit in everything if hit.score >= cut]
        assert [hit.id for hit in store.search(vectors[3], top_k=20, score_threshold=0.9999)] == [ids[3]]

    def test_top_k_limits_the_hits(self, store: VectorStore) -> None:
        _, vectors = add_sample(store)
        assert len(store.search(vectors[0], top_k=3)) == 3
        assert len(store.search(vectors[0], top_k=1)) == 1
        assert len(store.search(vectors[0], top_k=500)) == 20

    def test_top_k_below_one_is_rejected(self, store: VectorStore) -> None:
        add_sample(store, n=3)
        for top_k in (0, -1):
            with pytest.raises(InvalidInput):
                store.search(unit_vectors(1)[0], top_k=top_k)

    def test_search_of_an_empty_store_finds_nothing(self, store: VectorStore) -> None:
        assert store.search(unit_vectors(1)[0], top_k=3) == []

    def test_where_keeps_matching_metadata_only(self, store: VectorStore) -> None:
        ids, vectors = add_sample(store)
        hits = store.search(vectors[0], top_k=20, where={"source": "doc1.md"})
        assert sorted(hit.id for hit in hits) == sorted(ids[i] for i in range(1, 20, 4))
        assert all(hit.metadata["source"] == "doc1.md" for hit in hits)
        assert [hit.id for hit in store.search(vectors[5], top_k=1, where={"source": "doc1.md"})] == [ids[5]]
        both = store.search(vectors[0], top_k=20, where={"source": "doc1.md", "page": 9})
        assert [hit.id for hit in both] == [ids[9]]
        assert store.search(vectors[0], top_k=5, where={"source": "missing.md"}) == []

    def test_where_any_of_keeps_the_allowed_files_only(self, store: VectorStore) -> None:
        ids, vectors = add_sample(store)
        allowed = AnyOf(["doc1.md", "doc3.md", "unknown.md"])
        hits = store.search(vectors[0], top_k=20, where={"source": allowed})
        assert sorted(hit.id for hit in hits) == sorted(ids[i] for i in range(20) if i % 4 in (1, 3))
        # Applied inside the search: top_k is filled from allowed chunks, not cut from the global top_k.
        assert len(store.search(vectors[0], top_k=3, where={"source": AnyOf(["doc2.md"])})) == 3
        both = store.search(vectors[0], top_k=20, where={"source": allowed, "page": 7})
        assert [hit.id for hit in both] == [ids[7]]
        assert store.search(vectors[0], top_k=5, where={"source": AnyOf([])}) == []
        # Strings only: a number's text does not match.
        assert store.search(vectors[0], top_k=5, where={"page": AnyOf(["3"])}) == []

    def test_returned_metadata_is_a_copy(self, store: VectorStore) -> None:
        ids, vectors = add_sample(store, n=3)
        store.search(vectors[0], top_k=1)[0].metadata["score"] = 0.5
        store.get([ids[0]])[0].metadata["page"] = -1
        assert store.get([ids[0]])[0].metadata == {"source": "doc0.md", "page": 0}

    # -- delete, get, count, drop ------------------------------------------------------------------------------

    def test_delete_by_ids(self, store: VectorStore) -> None:
        ids, vectors = add_sample(store)
        assert store.delete([ids[2], ids[5], "never-added"]) == 2
        assert store.count() == 18
        returned = {hit.id for hit in store.search(vectors[2], top_k=20)}
        assert ids[2] not in returned
        assert ids[5] not in returned
        assert store.get([ids[2], ids[5]]) == []
        assert store.delete([ids[2]]) == 0

    def test_delete_a_file_removes_all_its_chunks(self, store: VectorStore) -> None:
        ids, vectors = add_sample(store)
        doc2 = [chunk.id for chunk in store.get(ids) if chunk.metadata["source"] == "doc2.md"]
        assert store.delete(doc2) == 5
        assert store.search(vectors[2], top_k=20, where={"source": "doc2.md"}) == []
        assert store.get(doc2) == []
        assert store.count() == 15
        assert len(store.search(vectors[2], top_k=20, where={"source": "doc3.md"})) == 5

    def test_get_keeps_the_asked_order_and_skips_unknown_ids(self, store: VectorStore) -> None:
        ids, _ = add_sample(store, n=6)
        chunks = store.get([ids[4], "nope", ids[1], ids[3]])
        assert [chunk.id for chunk in chunks] == [ids[4], ids[1], ids[3]]
        assert [chunk.text for chunk in chunks] == ["chunk 4", "chunk 1", "chunk 3"]
        assert chunks[0].metadata == {"source": "doc0.md", "page": 4}
        assert store.get([]) == []

    def test_vectors_come_back_as_stored(self, store: VectorStore) -> None:
        ids, vectors = add_sample(store, n=6)
        store.delete([ids[2]])
        found = store.vectors([ids[5], "nope", ids[2], ids[0]])
        assert sorted(found) == sorted([ids[5], ids[0]])
        np.testing.assert_allclose(found[ids[5]], vectors[5], atol=1e-5)
        np.testing.assert_allclose(found[ids[0]], vectors[0], atol=1e-5)
        assert found[ids[0]].dtype == np.float32 and found[ids[0]].shape == (store.dim,)
        assert store.vectors([]) == {}

    def test_count_follows_adds_and_deletes(self, store: VectorStore) -> None:
        assert store.count() == 0
        ids, _ = add_sample(store, n=8)
        store.add(["more"], unit_vectors(1, seed=5), [{}])
        assert store.count() == 9
        store.delete(ids[:3])
        assert store.count() == 6

    def test_drop_then_create_gives_an_empty_store(self, store: VectorStore) -> None:
        _, vectors = add_sample(store)
        store.flush()
        store.drop()
        store.create()
        assert store.count() == 0
        assert store.search(vectors[0], top_k=3) == []
        store.add(["again"], unit_vectors(1), [{}], ids=["id-0"])  # the old ids are free again
        assert store.count() == 1

    def test_a_dropped_store_raises_store_missing(self, store: VectorStore) -> None:
        _, vectors = add_sample(store, n=3)
        store.drop()
        for call in (
            lambda: store.search(vectors[0], top_k=3),
            lambda: store.get(["id-0"]),
            lambda: store.count(),
            lambda: store.add(["x"], unit_vectors(1), [{}]),
        ):
            with pytest.raises(StoreMissing):
                call()
        store.create()
        assert store.count() == 0

    # -- persistence and content ---------------------------------------------------------------------------

    def test_another_dimension_raises_dimension_mismatch(self, store: VectorStore, tmp_path: Path) -> None:
        if not self.persistent:
            pytest.skip("an in-memory store keeps nothing to reopen")
        add_sample(store, n=3)
        store.flush()
        with pytest.raises(StoreDimensionMismatch):
            other = self.reopen(store, tmp_path, DIM * 2)  # the same collection, as a model of another size
            try:
                other.create()
                other.count()
            finally:
                other.close()

    def test_flushed_data_survives_a_restart(self, store: VectorStore, tmp_path: Path) -> None:
        if not self.persistent:
            pytest.skip("an in-memory store keeps nothing across a restart")
        ids, vectors = add_sample(store)
        store.delete([ids[0]])
        store.flush()
        reopened = self.reopen(store, tmp_path, DIM)
        try:
            assert reopened.count() == 19
            assert reopened.search(vectors[6], top_k=1)[0].id == ids[6]
            assert reopened.get([ids[0], ids[1]])[0].metadata == {"source": "doc1.md", "page": 1}
            reopened.add(["after restart"], unit_vectors(1, seed=7), [{}], ids=["late"])
            assert reopened.count() == 20
        finally:
            reopened.close()

    def test_unicode_text_and_metadata_round_trip(self, store: VectorStore, tmp_path: Path) -> None:
        if not self.persistent:
            pytest.skip("an in-memory store keeps nothing across a restart")
        text = "知识库问答：支持中文、emoji 🎉 和 «ünïcödé»"
        metadata: dict[str, Any] = {"source": "说明书/第一章.md", "标题": "简介 📘", "tags": ["中文", "😀"]}
        vector = unit_vectors(1, seed=3)
        [chunk_id] = store.add([text], vector, [metadata], ids=["中文-id-🎉"])
        store.flush()
        reopened = self.reopen(store, tmp_path, DIM)
        try:
            hit = reopened.search(vector[0], top_k=1, where={"source": "说明书/第一章.md"})[0]
            assert (hit.id, hit.text, hit.metadata) == (chunk_id, text, metadata)
            assert reopened.get([chunk_id])[0].text == text
        finally:
            reopened.close()

    def test_batch_of_10k_chunks(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path, 384)
        store.create()
        try:
            vectors = unit_vectors(10_000, dim=384, seed=42)
            metadatas = [{"source": f"file{i // 100}.txt"} for i in range(10_000)]
            started = time.perf_counter()
            ids = store.add([f"chunk {i}" for i in range(10_000)], vectors, metadatas)
            hits = store.search(vectors[1234], top_k=3)
            elapsed = time.perf_counter() - started
            assert store.count() == 10_000
            assert hits[0].id == ids[1234]
            assert hits[0].score == pytest.approx(1.0, abs=1e-4)
            assert elapsed < self.batch_add_budget_s
        finally:
            store.close()

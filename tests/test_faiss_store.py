"""The FAISS store: the shared conformance suite plus what only a file-backed store has to get right."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.errors import InvalidInput, StoreCorrupted, StoreUnavailable
from server.vectorstores import faiss_file
from server.vectorstores.faiss_file import DATA_FILE, read_store_file, write_store_file
from server.vectorstores.faiss_store import FaissStore
from tests.conformance.store_suite import DIM, add_sample, unit_vectors


def _directory(tmp_path: Path) -> Path:
    return tmp_path / "kb" / "vector_store" / "model"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FaissStore]:
    opened = FaissStore(_directory(tmp_path), DIM, kb_name="samples")
    opened.create()
    yield opened
    opened.close()


def _reopen(tmp_path: Path, dim: int = DIM) -> FaissStore:
    return FaissStore(_directory(tmp_path), dim, kb_name="samples")


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# -- persistence ---------------------------------------------------------------------------------------------


def test_writes_reach_the_disk_only_on_flush(store: FaissStore, tmp_path: Path) -> None:
    add_sample(store, n=5)
    assert _reopen(tmp_path).count() == 0
    store.flush()
    assert _reopen(tmp_path).count() == 5


def test_flush_without_changes_does_not_write(store: FaissStore, monkeypatch: pytest.MonkeyPatch) -> None:
    add_sample(store, n=5)
    store.flush()
    monkeypatch.setattr("server.vectorstores.faiss_store.write_store_file", _fail_write)
    store.flush()
    store.close()


def test_close_flushes_and_refuses_later_writes(store: FaissStore, tmp_path: Path) -> None:
    ids, vectors = add_sample(store, n=5)
    store.close()
    assert _reopen(tmp_path).count() == 5
    assert store.search(vectors[0], top_k=1)[0].id == ids[0]  # reads still work
    with pytest.raises(StoreUnavailable):
        store.add(["late"], unit_vectors(1), [{}])
    with pytest.raises(StoreUnavailable):
        store.delete(ids)


def test_create_makes_the_file_and_keeps_an_existing_one(tmp_path: Path) -> None:
    store = _reopen(tmp_path)
    assert not _directory(tmp_path).exists()
    store.create()
    assert _files(_directory(tmp_path)) == [DATA_FILE]
    add_sample(store, n=3)
    store.flush()
    store.create()
    assert _reopen(tmp_path).count() == 3


def test_drop_removes_the_directory(store: FaissStore, tmp_path: Path) -> None:
    add_sample(store, n=3)
    store.flush()
    store.drop()
    assert not _directory(tmp_path).exists()


def _fail_write(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("flush wrote although nothing changed")


def _failing_replace(src: Any, dst: Any) -> None:
    raise OSError(28, "No space left on device")


def _failing_savez(file: Any, **arrays: Any) -> None:
    file.write(b"half a file")
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize(
    ("target", "replacement"),
    [("os.replace", _failing_replace), ("np.savez", _failing_savez)],
    ids=["rename fails", "write fails"],
)
def test_a_failed_flush_keeps_the_old_file_and_no_temp_file(
    store: FaissStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, replacement: Any
) -> None:
    add_sample(store, n=5)
    store.flush()
    before = store.path.read_bytes()
    store.add(["more"], unit_vectors(1, seed=8), [{}], ids=["more"])
    module_name, attribute = target.split(".")
    monkeypatch.setattr(getattr(faiss_file, module_name), attribute, replacement)
    with pytest.raises(StoreUnavailable, match="No space left"):
        store.flush()
    assert store.path.read_bytes() == before
    assert _files(_directory(tmp_path)) == [DATA_FILE]
    monkeypatch.undo()
    store.flush()  # still dirty, so the retry writes
    assert _reopen(tmp_path).count() == 6


# -- corrupt or mismatched files -----------------------------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\x01 definitely not an npz file")


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _npy_instead(path: Path) -> None:
    with path.open("wb") as file:
        np.save(file, np.arange(4))


def _bad_json(path: Path) -> None:
    data = read_store_file(path)
    with path.open("wb") as file:
        broken = np.frombuffer(b"[[not json", dtype=np.uint8)
        np.savez(file, vectors=data.vectors, labels=data.labels, info=np.frombuffer(b"{}", np.uint8), chunks=broken)


def _missing_chunk(path: Path) -> None:
    data = read_store_file(path)
    write_store_file(path, data._replace(chunks=data.chunks[1:]))


def _duplicate_label(path: Path) -> None:
    data = read_store_file(path)
    data.labels[1] = data.labels[0]
    write_store_file(path, data)


def _stale_counter(path: Path) -> None:
    data = read_store_file(path)
    data.info["next_iid"] = 1
    write_store_file(path, data)


def _wrong_arrays(path: Path) -> None:
    data = read_store_file(path)
    write_store_file(path, data._replace(vectors=data.vectors.astype(np.float64)))


@pytest.mark.parametrize(
    "damage",
    [_garbage, _truncated, _npy_instead, _bad_json, _missing_chunk, _duplicate_label, _stale_counter, _wrong_arrays],
)
def test_a_damaged_file_raises_store_corrupted(store: FaissStore, tmp_path: Path, damage: Any) -> None:
    add_sample(store, n=5)
    store.flush()
    damage(store.path)
    with pytest.raises(StoreCorrupted) as caught:
        _reopen(tmp_path)
    assert "'samples'" in caught.value.message and str(tmp_path) not in caught.value.message  # no path in answers
    assert "python init_database.py --recreate-vs -n samples" in caught.value.message


def test_a_dimension_mismatch_raises_store_corrupted(store: FaissStore, tmp_path: Path) -> None:
    add_sample(store, n=5)
    store.flush()
    with pytest.raises(StoreCorrupted, match=f"{DIM}-dim vectors but the embedding model gives 32"):
        _reopen(tmp_path, dim=32)


def test_the_docstore_is_plain_utf8_json(store: FaissStore) -> None:
    store.add(["中文"], unit_vectors(1), [{"source": "说明.md"}], ids=["a"])
    store.flush()
    data = read_store_file(store.path)
    assert data.chunks[0][1:] == ["a", "中文", {"source": "说明.md"}]
    assert data.info == {"version": 1, "dim": DIM, "next_iid": 1}
    assert data.vectors.shape == (1, DIM)
    assert data.labels.tolist() == [data.chunks[0][0]]


# -- input checks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.full(DIM, np.nan), np.zeros(DIM), np.full(DIM, np.inf)], ids=str)
def test_vectors_without_a_direction_are_rejected(store: FaissStore, bad: Any) -> None:
    with pytest.raises(InvalidInput):
        store.add(["x"], np.asarray([bad], dtype=np.float32), [{}])
    with pytest.raises(InvalidInput):
        store.search(np.asarray(bad, dtype=np.float32), top_k=1)


def test_unnormalised_vectors_are_normalised(store: FaissStore) -> None:
    vectors = unit_vectors(3) * np.float32(7.5)
    ids = store.add(["a", "b", "c"], vectors, [{}, {}, {}])
    hit = store.search(vectors[1] * np.float32(0.01), top_k=1)[0]
    assert hit.id == ids[1]
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_metadata_must_be_json(store: FaissStore) -> None:
    with pytest.raises(InvalidInput, match="JSON"):
        store.add(["x"], unit_vectors(1), [{"when": object()}])
    assert store.count() == 0


# -- concurrency -------------------------------------------------------------------------------------------


def test_searches_during_adds_and_flushes_stay_consistent(store: FaissStore, tmp_path: Path) -> None:
    base_ids, base = add_sample(store, n=200)
    store.flush()

    def search_many(worker: int) -> int:
        rng = np.random.default_rng(worker)
        for i in rng.integers(0, 200, size=300).tolist():
            hits = store.search(base[i], top_k=3)
            assert hits[0].id == base_ids[i]
            assert hits[0].score == pytest.approx(1.0, abs=1e-4)
            assert all(store.get([hit.id])[0].text == hit.text for hit in hits[1:])
        return worker

    def write_many() -> int:
        for batch in range(40):
            ids = store.add(["w"] * 50, unit_vectors(50, seed=1000 + batch), [{"batch": batch}] * 50)
            store.delete(ids[:10])
            if batch % 8 == 0:
                store.flush()
        return -1

    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(write_many)] + [pool.submit(search_many, worker) for worker in range(4)]
        assert sorted(future.result(timeout=60) for future in futures) == [-1, 0, 1, 2, 3]
    assert store.count() == 200 + 40 * 40
    store.flush()
    assert _reopen(tmp_path).count() == 200 + 40 * 40


def test_a_docstore_larger_than_one_encoding_slice_round_trips(store: FaissStore, tmp_path: Path) -> None:
    n = 4_500  # more than two of the 2,000-row slices the docstore is encoded in
    ids = store.add([f"第{i}块" for i in range(n)], unit_vectors(n, seed=4), [{"i": i} for i in range(n)])
    store.flush()
    reopened = _reopen(tmp_path)
    assert reopened.count() == n
    assert [(c.text, c.metadata) for c in reopened.get([ids[0], ids[2_000], ids[-1]])] == [
        ("第0块", {"i": 0}),
        ("第2000块", {"i": 2_000}),
        (f"第{n - 1}块", {"i": n - 1}),
    ]

"""init_database.py as a user runs it: a real subprocess with its own settings file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZHIKU_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "init_database.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "手册" / "content" / "sub").mkdir(parents=True)
    (data / "手册" / "content" / "a.md").write_text("# 安装\n运行 make start 即可启动服务。\n", encoding="utf-8")
    (data / "手册" / "content" / "sub" / "b.txt").write_text("配置文件位于 configs 目录。", encoding="gbk")
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"data_dir: {data}\nkb:\n  default_embed_model: hash\nembed_models:\n  hash:\n    backend: hash\n    dim: 32\n"
        "  hash2:\n    backend: hash\n    dim: 16\n",
        encoding="utf-8",
    )
    return path


def test_recreate_increment_and_prune(config: Path) -> None:
    data = config.parent / "data"
    built = _run(config, "--recreate-vs")
    assert built.returncode == 0, built.stderr
    assert "手册: 2 files, faiss/hash" in built.stdout
    (data / "手册" / "content" / "c.txt").write_text("新增的文件。", encoding="utf-8")
    (data / "手册" / "content" / "a.md").write_text("# 安装\n已修改。\n", encoding="utf-8")
    incremented = _run(config, "-i", "-n", "手册")
    assert incremented.returncode == 0, incremented.stderr
    assert "手册: 3 files" in incremented.stdout
    (data / "手册" / "content" / "c.txt").unlink()
    pruned = _run(config, "--prune-db")
    assert "forgot 1 files" in pruned.stdout and "手册: 2 files" in pruned.stdout
    (data / "手册" / "content" / "stray.txt").write_text("never vectorized", encoding="utf-8")
    folder = _run(config, "--prune-folder")
    assert "deleted 1 files" in folder.stdout and not (data / "手册" / "content" / "stray.txt").exists()


def test_switch_embedding_model_and_missing_only(config: Path) -> None:
    assert _run(config, "--recreate-vs", "--missing").returncode == 0
    again = _run(config, "--recreate-vs", "--missing")
    assert again.returncode == 0 and "手册: 2 files, faiss/hash" in again.stdout
    switched = _run(config, "--recreate-vs", "-n", "手册", "-e", "hash2")
    assert switched.returncode == 0, switched.stderr
    assert "faiss/hash2" in switched.stdout
    store_root = config.parent / "data" / "手册" / "vector_store"
    assert sorted(p.name for p in store_root.iterdir()) == ["hash2"]


def test_update_in_db_and_clear_tables(config: Path) -> None:
    assert _run(config, "--recreate-vs").returncode == 0
    updated = _run(config, "-u")
    assert updated.returncode == 0 and "手册: 2 files" in updated.stdout
    cleared = _run(config, "--clear-tables")
    assert cleared.returncode == 0 and "registry cleared" in cleared.stdout
    assert (config.parent / "data" / "手册" / "content" / "a.md").exists()


def test_failures_exit_non_zero_with_a_message(config: Path, tmp_path: Path) -> None:
    unknown = _run(config, "--recreate-vs", "-n", "手册", "-e", "no-such-model")
    assert unknown.returncode == 1 and "no-such-model" in unknown.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("kb:\n  chunk_size: -1\n", encoding="utf-8")
    invalid = _run(bad, "--create-tables")
    assert invalid.returncode == 2 and "kb.chunk_size" in invalid.stderr
    assert "Traceback" not in invalid.stderr + unknown.stderr


def test_sample_kb_builds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(REPO / "knowledge_base" / "samples", data / "samples")
    config = tmp_path / "settings.yaml"
    config.write_text(
        f"data_dir: {data}\nkb:\n  default_embed_model: hash\nembed_models:\n  hash:\n    backend: hash\n    dim: 32\n",
        encoding="utf-8",
    )
    result = _run(config, "--create-tables", "--recreate-vs", "--missing")
    assert result.returncode == 0, result.stderr
    count = len(list((REPO / "knowledge_base" / "samples" / "content").rglob("*.md")))
    assert f"samples: {count} files" in result.stdout


def test_watch_ingests_files_dropped_into_the_folder_until_interrupted(config: Path) -> None:
    import signal
    import sqlite3
    import time

    data = config.parent / "data"
    assert _run(config, "--recreate-vs").returncode == 0
    env = {**os.environ, "ZHIKU_CONFIG": str(config)}
    process = subprocess.Popen(
        [sys.executable, "init_database.py", "--watch", "-n", "手册"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        assert process.stderr is not None
        while "watching 手册" not in process.stderr.readline():
            assert time.monotonic() < deadline and process.poll() is None, "init_database.py --watch did not start"
        (data / "手册" / "content" / "dropped.txt").write_text("拖进文件夹的新文件。", encoding="utf-8")
        (data / "手册" / "content" / "a.md").unlink()

        def names() -> set[str]:
            with sqlite3.connect(data / "info.db") as db:
                return {row[0] for row in db.execute("SELECT file_name FROM knowledge_file")}

        while names() != {"dropped.txt", "sub/b.txt"}:
            assert time.monotonic() < deadline, f"the watcher did not follow the folder: {names()}"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_export_then_import_under_another_name_and_model(config: Path, tmp_path: Path) -> None:
    assert _run(config, "--recreate-vs").returncode == 0
    archive = tmp_path / "手册.zhiku.zip"
    exported = _run(config, "--export", "手册", str(archive))
    assert exported.returncode == 0, exported.stderr
    assert "exported 手册: 2 files" in exported.stdout and archive.is_file()
    imported = _run(config, "--import", str(archive), "--name", "手册副本", "-e", "hash2")
    assert imported.returncode == 0, imported.stderr
    assert "imported 手册副本 (faiss): 2 files" in imported.stdout and "embedded again with hash2" in imported.stdout
    assert "手册副本: 2 files, faiss/hash2" in imported.stdout
    again = _run(config, "--import", str(archive))
    assert again.returncode == 1 and "overwrite" in again.stderr and "Traceback" not in again.stderr
    archive.write_bytes(archive.read_bytes()[:100])
    broken = _run(config, "--import", str(archive), "--name", "坏的")
    assert broken.returncode == 1 and "damaged or truncated" in broken.stderr

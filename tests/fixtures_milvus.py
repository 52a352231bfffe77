"""Settings overrides that put a test's Milvus vectors in a Milvus Lite database under its tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def milvus_settings_overrides(tmp_path: Path) -> dict[str, Any]:
    """Keyword arguments for `make_settings(tmp_path, **overrides)`; skips when pymilvus is not installed."""
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    return {"vector_stores": {"milvus": {"uri": str(tmp_path / "milvus.db")}}}

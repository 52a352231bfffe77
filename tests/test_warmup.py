"""The API warms the most recently written KBs once it is up: their models and indexes load before a user asks."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient

from server.api.app import create_app
from server.bootstrap import Services
from server.knowledge_base.files import UploadOptions
from server.knowledge_base.warmup import Warmer
from tests.conftest import make_settings


def _kb_with_file(services: Services, name: str) -> None:
    services.knowledge_bases.create(name)
    upload = (f"{name}.txt", io.BytesIO(f"{name} 的说明文字。".encode()))
    assert services.files.upload(name, [upload], UploadOptions()) == {}


def test_recent_kbs_come_first_and_empty_ones_last(services: Services) -> None:
    for name in ("旧库", "新库"):
        _kb_with_file(services, name)
    services.knowledge_bases.create("空库")
    assert services.catalog.recent_names(5) == ["新库", "旧库", "空库"]
    assert services.catalog.recent_names(1) == ["新库"]


def test_warmer_searches_only_the_recent_kbs(services: Services) -> None:
    for name in ("a", "b", "c"):
        _kb_with_file(services, name)
    warmer = Warmer(services.catalog, services.search, 2)
    warmer.start()
    assert warmer.done.wait(30)
    assert warmer.warmed == ["c", "b"]
    warmer.stop()


def test_zero_turns_it_off(services: Services) -> None:
    _kb_with_file(services, "a")
    warmer = Warmer(services.catalog, services.search, 0)
    warmer.start()
    assert warmer.done.is_set() and warmer.warmed == []


def test_the_api_warms_up_at_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        _kb_with_file(client.app.state.services, "知识库")  # type: ignore[attr-defined]
    with TestClient(create_app(settings)) as client:
        warmer = client.app.state.services.warmer  # type: ignore[attr-defined]
        assert warmer.done.wait(30) and warmer.warmed == ["知识库"]

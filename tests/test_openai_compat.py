"""The API's OpenAI-compatible routes with the official `openai` client (no model worker needed here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from openai import OpenAI

from server.api.app import create_app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[OpenAI]:
    settings = make_settings(tmp_path, api={"api_key": "k-123"})
    with TestClient(create_app(settings)) as http:
        yield OpenAI(base_url="http://testserver/v1", api_key="k-123", http_client=http, max_retries=0)


def test_models_list_embedding_models(client: OpenAI) -> None:
    assert {"hash", "hash-alt"} <= {model.id for model in client.models.list()}


def test_embeddings_in_both_encodings(client: OpenAI) -> None:
    base64_default = client.embeddings.create(model="hash", input=["你好", "世界"])
    floats = client.embeddings.create(model="hash", input="你好", encoding_format="float")
    assert len(base64_default.data) == 2 and len(base64_default.data[0].embedding) == 64
    assert base64_default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    with pytest.raises(openai.UnprocessableEntityError):
        client.embeddings.create(model="nope", input="x")


def test_chat_without_llm_and_bad_input(client: OpenAI) -> None:
    hello = [{"role": "user", "content": "你好"}]
    with pytest.raises(openai.InternalServerError, match="no LLM is configured"):
        client.chat.completions.create(model="x", messages=hello)  # type: ignore[arg-type]
    with pytest.raises(openai.UnprocessableEntityError, match="messages"):
        client.chat.completions.create(model="x", messages=[])
    with pytest.raises(openai.UnprocessableEntityError, match="max_tokens"):
        client.chat.completions.create(model="x", messages=hello, max_tokens=0)  # type: ignore[arg-type]


def test_api_key_is_required(client: OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError):
        client.with_options(api_key="wrong").models.list()

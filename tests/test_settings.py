from pathlib import Path

import pytest

from configs import load_settings
from server.errors import ConfigError


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.api.port == 7861
    assert settings.api.host == "127.0.0.1"
    assert settings.kb.chunk_size == 250 and settings.kb.chunk_overlap == 50
    assert settings.kb.default_vs_type == "faiss"
    assert settings.kb.default_embed_model in settings.embed_models
    assert settings.sqlalchemy_url.endswith("knowledge_base/info.db")


def test_env_overrides_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_KB__CHUNK_SIZE", "500")
    monkeypatch.setenv("ZHIKU_API__PORT", "8000")
    monkeypatch.setenv("ZHIKU_DATA_DIR", "/srv/zhiku")
    settings = load_settings()
    assert settings.kb.chunk_size == 500
    assert settings.api.port == 8000
    assert settings.data_dir == Path("/srv/zhiku")


def test_config_file_replaces_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "s.yaml"
    config.write_text("kb:\n  top_k: 7\napi:\n  api_key: secret\n", encoding="utf-8")
    monkeypatch.setenv("ZHIKU_CONFIG", str(config))
    settings = load_settings()
    assert settings.kb.top_k == 7
    assert settings.api.api_key is not None and settings.api.api_key.get_secret_value() == "secret"


def test_invalid_setting_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_API__PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"api\.port"):
        load_settings()


def test_overlap_must_be_below_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_KB__CHUNK_OVERLAP", "300")
    with pytest.raises(ConfigError, match="chunk_overlap"):
        load_settings()


def test_unknown_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "s.yaml"
    config.write_text("kb:\n  chunk_sise: 100\n", encoding="utf-8")
    monkeypatch.setenv("ZHIKU_CONFIG", str(config))
    with pytest.raises(ConfigError, match="chunk_sise"):
        load_settings()


def test_missing_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_CONFIG", "/nonexistent/settings.yaml")
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()


def test_default_embed_model_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_KB__DEFAULT_EMBED_MODEL", "nope")
    with pytest.raises(ConfigError, match="default_embed_model"):
        load_settings()


def test_default_llm_must_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_DEFAULT_LLM", "qwen")
    with pytest.raises(ConfigError, match="default_llm"):
        load_settings()


def test_each_store_backend_has_its_own_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.vectorstores.registry import STORES, MilvusOptions, PgOptions

    monkeypatch.setenv("ZHIKU_VECTOR_STORES__PG__URI", "postgresql+psycopg://u:p@db/kb")
    settings = load_settings(data_dir=tmp_path)
    options = settings.store_options()
    assert set(options) == set(STORES.names())
    assert isinstance(options["pg"], PgOptions) and options["pg"].uri == "postgresql+psycopg://u:p@db/kb"
    milvus = options["milvus"]
    assert isinstance(milvus, MilvusOptions) and milvus.uri == str((tmp_path / "milvus.db").resolve())
    monkeypatch.setenv("ZHIKU_VECTOR_STORES__MILVUS__TOKEN", "root:s3cret")
    assert "s3cret" not in repr(load_settings())


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"vector_stores": {"milvus": {"index_type": "IVF_PQ"}}}, r"vector_stores\.milvus\.index_type"),
        ({"vector_stores": {"chroma": {}}}, r"vector_stores\.chroma"),
        ({"kb": {"default_vs_type": "memory"}}, r"kb\.default_vs_type"),
        ({"kb": {"search_mode": "bm25"}}, r"kb\.search_mode"),
    ],
)
def test_store_and_search_settings_name_the_bad_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings(**values)

"""Typed settings. Build them once in an entry point with `load_settings()` and pass them down."""

from configs.settings import (
    ApiSettings,
    EmbedModelConfig,
    KbSettings,
    Settings,
    load_settings,
)

__all__ = ["ApiSettings", "EmbedModelConfig", "KbSettings", "Settings", "load_settings"]

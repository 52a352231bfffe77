"""Request bodies of the worker: OpenAI chat completions and the ChatGLM-6B API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Lenient(BaseModel):
    # Clients send fields we do not use (presence_penalty, user, seed...): accept and ignore them.
    model_config = ConfigDict(extra="ignore")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ChatMessage(_Lenient):
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatCompletionRequest(_Lenient):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1, description="one choice per request")

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def requested_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class ChatGlmRequest(_Lenient):
    prompt: str
    history: list[list[str]] = Field(default_factory=list)
    max_length: int = Field(2048, gt=0)
    top_p: float = Field(0.7, gt=0.0, le=1.0)
    temperature: float = Field(0.95, ge=0.0, le=2.0)
    model: str | None = Field(None, description="ours: which served model; default the first one")

    @field_validator("history")
    @classmethod
    def _pairs(cls, history: list[list[str]]) -> list[list[str]]:
        for index, turn in enumerate(history):
            if len(turn) != 2:
                raise ValueError(f"history[{index}] must be a [question, answer] pair, got {len(turn)} items")
        return history


class ModelStatusOut(BaseModel):
    """One model of the worker: its state and, while it loads, how far it got."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    state: Literal["unloaded", "loading", "loaded", "failed"]
    device: Literal["gpu", "cpu"] = Field(description="whose memory budget it counts against")
    bytes: int = Field(description="memory it takes when loaded (measured once loaded, estimated before)")
    progress: float = Field(ge=0.0, le=1.0, description="loading progress by stage: tokenizer, weights, adapter")
    stage: str
    elapsed_s: float = Field(description="seconds since loading started (while loading)")
    error: str = Field(description="why the last load failed (state failed)")
    last_used: float = Field(description="unix time of the last request (least recently used are unloaded first)")
    stats: dict[str, int] = Field(description="generations active, queued, and served")
    context_length: int
    max_new_tokens: int

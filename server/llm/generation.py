"""One loaded chat model and its blocking, streaming, cancellable `generate`.

`model.generate` pushes decoded text through a `TextStreamer` subclass straight to a callback (the runner's
thread-safe hand-off to the event loop), and a stopping criterion polls events so a client that leaves, or a
stop string, ends the generation at the next token.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

from server.llm.prompt import Message, encode_prompt, has_chat_template
from server.llm.spec import ModelSpec
from server.llm.stops import StopMatcher

logger = logging.getLogger(__name__)

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completion:
    """How a generation ended: tokens generated and why it stopped."""

    completion_tokens: int
    finish_reason: FinishReason


class _EventCriteria(StoppingCriteria):
    """Stops every sequence as soon as one of the events is set."""

    def __init__(self, events: Sequence[threading.Event]) -> None:
        self.events = events

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        halt = any(event.is_set() for event in self.events)
        flags = torch.full((input_ids.shape[0],), halt, dtype=torch.bool, device=input_ids.device)
        return flags  # type: ignore[return-value]


class _CallbackStreamer(TextStreamer):
    """A TextStreamer that hands each finished piece of text to a callback instead of printing it."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_text = on_text

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._on_text(text)


class ChatModel:
    """A model and its tokenizer, with the limits from its spec."""

    def __init__(self, spec: ModelSpec, model: Any, tokenizer: Any) -> None:
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        if not has_chat_template(tokenizer):
            logger.warning(
                "model %s (%s) has no chat template: prompts use the plain `role: content` fallback "
                "(see docs/llm-worker.md); answers may be poor",
                spec.name,
                spec.path,
            )

    @property
    def name(self) -> str:
        return self.spec.name

    def encode(self, messages: Sequence[Message]) -> list[int]:
        return encode_prompt(self.tokenizer, messages)

    def _generation_config(self, params: SamplingParams) -> Any:
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = params.max_new_tokens
        config.do_sample = params.temperature > 0
        if config.do_sample:
            config.temperature = params.temperature
            config.top_p = params.top_p
            config.top_k = None  # OpenAI semantics: temperature and top_p only
        else:
            config.temperature = config.top_p = config.top_k = None
        if config.pad_token_id is None:
            config.pad_token_id = self.tokenizer.pad_token_id or self.tokenizer.eos_token_id
        return config

    def generate(
        self,
        prompt_ids: list[int],
        params: SamplingParams,
        *,
        on_text: Callable[[str], None],
        cancel: threading.Event,
    ) -> Completion:
        """Generate on the calling thread, passing text pieces to `on_text`; blocks until done or cancelled."""
        matcher = StopMatcher(params.stop)
        stopped = threading.Event()

        def forward(text: str) -> None:
            safe = matcher.feed(text)
            if safe:
                on_text(safe)
            if matcher.stopped:
                stopped.set()

        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.model.device)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                generation_config=self._generation_config(params),
                streamer=_CallbackStreamer(self.tokenizer, forward),
                stopping_criteria=StoppingCriteriaList([_EventCriteria([cancel, stopped])]),
            )
        rest = matcher.flush()
        if rest:
            on_text(rest)
        generated = output[0, len(prompt_ids) :].tolist()
        return Completion(len(generated), self._finish_reason(generated, params, matcher, cancel))

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return set(eos) if isinstance(eos, list) else {eos}

    def _finish_reason(
        self, generated: list[int], params: SamplingParams, matcher: StopMatcher, cancel: threading.Event
    ) -> FinishReason:
        if matcher.stopped:
            return "stop"
        if cancel.is_set():
            return "cancelled"
        if len(generated) >= params.max_new_tokens and generated[-1] not in self._eos_ids():
            return "length"
        return "stop"

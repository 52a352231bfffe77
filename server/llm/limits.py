"""How many new tokens a request may ask for, given the model's limits and the prompt's length."""

from __future__ import annotations

from server.errors import InvalidInput
from server.llm.spec import ModelSpec


def token_budget(spec: ModelSpec, prompt_tokens: int, requested: int | None) -> int:
    """`requested` must lie in 1..max_new_tokens and fit the context; None means as many as allowed."""
    room = spec.context_length - prompt_tokens
    if room < 1:
        raise InvalidInput(
            f"the prompt is {prompt_tokens} tokens but model {spec.name!r} takes at most "
            f"{spec.context_length - 1} (context_length {spec.context_length}); send a shorter history"
        )
    if requested is None:
        return min(spec.max_new_tokens, room)
    if not 1 <= requested <= spec.max_new_tokens:
        raise InvalidInput(
            f"max_tokens must be between 1 and {spec.max_new_tokens} for model {spec.name!r}, got {requested}"
        )
    if requested > room:
        raise InvalidInput(
            f"prompt ({prompt_tokens} tokens) + max_tokens ({requested}) exceeds the context length "
            f"({spec.context_length}) of model {spec.name!r}; ask for at most {room} tokens"
        )
    return requested

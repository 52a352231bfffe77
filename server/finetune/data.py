"""Fine-tuning data: JSON lines in ChatGLM's ADGEN form or OpenAI's chat form, checked whole before training.

ADGEN (the ChatGLM-6B ptuning recipe): `{"content": "类型#裙*颜色#红色", "summary": "一条红色的裙子……"}`.
OpenAI chat: `{"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}`; the last message
is the answer to learn and must be the assistant's, the ones before it are the prompt.
Every broken line is reported (the first few, with line numbers) before any model is loaded.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from server.errors import DatasetError

Format = Literal["adgen", "chat"]
MAX_FILE_BYTES = 512 * 1024 * 1024
_SHOWN = 5
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Example:
    """A prompt (chat messages) and the answer the model should give to it."""

    prompt: list[dict[str, str]]
    answer: str


def _adgen(record: dict[str, Any]) -> Example:
    content, summary = record.get("content"), record.get("summary")
    if not isinstance(content, str) or not content.strip():
        raise ValueError('"content" must be a non-empty string')
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError('"summary" must be a non-empty string')
    return Example([{"role": "user", "content": content}], summary)


def _chat(record: dict[str, Any]) -> Example:
    messages = record.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        raise ValueError('"messages" must be a list of at least a user message and the assistant\'s answer')
    turns: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in _ROLES:
            raise ValueError(f"messages[{index}].role must be one of {', '.join(_ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"messages[{index}].content must be a non-empty string")
        turns.append({"role": str(role), "content": content})
    if turns[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's answer (the text to learn)")
    return Example(turns[:-1], turns[-1]["content"])


def _format_of(record: dict[str, Any]) -> Format:
    if "messages" in record:
        return "chat"
    if "content" in record or "summary" in record:
        return "adgen"
    raise ValueError('neither ADGEN ({"content", "summary"}) nor OpenAI chat ({"messages": [...]}) format')


def _parse_line(line: str) -> tuple[Format, Example]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    kind = _format_of(record)
    return kind, _adgen(record) if kind == "adgen" else _chat(record)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DatasetError(f"dataset {path.name}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DatasetError(f"dataset {path.name}: larger than {MAX_FILE_BYTES // 2**20} MiB; split it")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(f"dataset {path.name}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None


def load_examples(path: Path) -> tuple[Format, list[Example]]:
    """The examples of a JSONL file, all of one format; DatasetError lists the first broken lines."""
    found: list[tuple[int, Format, Example]] = []
    problems: list[str] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            kind, example = _parse_line(line)
        except ValueError as error:
            problems.append(f"line {number}: {error}")
            continue
        found.append((number, kind, example))
    kinds = {kind for _, kind, _ in found}
    if len(kinds) > 1:
        first_chat = next(number for number, kind, _ in found if kind == "chat")
        first_adgen = next(number for number, kind, _ in found if kind == "adgen")
        problems.append(f"formats are mixed (ADGEN on line {first_adgen}, chat on line {first_chat}); use one")
    if problems:
        more = len(problems) - _SHOWN
        shown = "; ".join(problems[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise DatasetError(f"dataset {path.name} has {len(problems)} problem(s): {shown}")
    if not found:
        raise DatasetError(f"dataset {path.name} has no examples; write one JSON object per line")
    return found[0][1], [example for _, _, example in found]


def split_examples(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Training and validation sets; the validation set takes `fraction` (at least one example when above 0)."""
    if fraction <= 0:
        return list(examples), []
    count = max(1, round(len(examples) * fraction))
    if count >= len(examples):
        raise DatasetError(
            f"{len(examples)} example(s) leave none for training after a validation split of {fraction}; "
            "add examples or lower --val-fraction (0 turns validation off)"
        )
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [e for i, e in enumerate(examples) if i in held]

"""The agent's tools: each a name, a description and JSON-schema parameters for the model (the OpenAI `tools`
field), and a function of the parsed arguments that returns text. A tool refuses bad arguments with a ZhikuError,
whose message goes back to the model so that it can try again."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.chat.agent.calculator import calculate
from server.errors import InvalidInput
from server.knowledge_base.search import SearchResult

MAX_TOOL_OUTPUT_CHARS = 4000
"""A tool's answer is cut here before it goes into the conversation: the model's context is small."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[dict[str, Any]], str]

    def spec(self) -> dict[str, Any]:
        """The tool as the OpenAI `tools` field lists it."""
        function = {"name": self.name, "description": self.description, "parameters": self.parameters}
        return {"type": "function", "function": function}


def _string_arg(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"argument {name!r} must be a non-empty string")
    return value


def calculator() -> Tool:
    def run(args: dict[str, Any]) -> str:
        return calculate(_string_arg(args, "expression"))

    parameters = {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. (3 + 4) * 2 ** 10 / sqrt(2)"}},
        "required": ["expression"],
    }
    return Tool("calculator", "Compute an arithmetic expression exactly; use it for any arithmetic.", parameters, run)


def current_datetime(now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> Tool:
    def run(args: dict[str, Any]) -> str:
        zone = args.get("timezone") or "UTC"
        try:
            local = now().astimezone(ZoneInfo(str(zone)))
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {zone!r}; use an IANA name such as Asia/Shanghai") from None
        return f"{local.isoformat(timespec='seconds')} ({local.strftime('%A')}, {zone})"

    parameters = {
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "IANA name, e.g. Asia/Shanghai; default UTC"}},
    }
    return Tool("current_datetime", "The current date, time and weekday.", parameters, run)


def knowledge_base_search(kb_names: Callable[[], list[str]], search: Callable[[str, str], list[SearchResult]]) -> Tool:
    """Search one of the server's knowledge bases; `kb_names` is asked at each call, so new KBs are searchable."""

    def run(args: dict[str, Any]) -> str:
        kb, query = _string_arg(args, "knowledge_base_name"), _string_arg(args, "query")
        names = kb_names()
        if kb not in names:
            raise InvalidInput(f"no knowledge base {kb!r}; the knowledge bases are: {', '.join(names) or 'none'}")
        results = search(kb, query)
        if not results:
            return f"nothing in {kb!r} matches {query!r}"
        return "\n\n".join(f"[{n}] ({r.metadata.get('source', '')}) {r.page_content}" for n, r in enumerate(results, 1))

    parameters = {
        "type": "object",
        "properties": {
            "knowledge_base_name": {"type": "string", "description": "one of the knowledge bases listed"},
            "query": {"type": "string", "description": "what to look for"},
        },
        "required": ["knowledge_base_name", "query"],
    }
    description = "Search a local knowledge base for passages about a question. Knowledge bases: {names}."
    return Tool("search_knowledge_base", description, parameters, run)


class ToolBox:
    """The tools by name; `run` parses the model's JSON arguments and keeps the answer short."""

    def __init__(self, tools: Sequence[Tool], kb_names: Callable[[], list[str]]) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._kb_names = kb_names

    def specs(self) -> list[dict[str, Any]]:
        names = ", ".join(self._kb_names()) or "none yet"
        specs = [tool.spec() for tool in self._tools.values()]
        for spec in specs:
            spec["function"]["description"] = spec["function"]["description"].replace("{names}", names)
        return specs

    def run(self, name: str, arguments: str) -> str:
        tool = self._tools.get(name)
        if tool is None:
            raise InvalidInput(f"no tool named {name!r}; the tools are {', '.join(self._tools)}")
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            raise InvalidInput(f"the arguments of {name} are not JSON: {arguments[:200]!r}") from None
        if not isinstance(args, dict):
            raise InvalidInput(f"the arguments of {name} must be a JSON object")
        output = tool.run(args)
        return output if len(output) <= MAX_TOOL_OUTPUT_CHARS else output[:MAX_TOOL_OUTPUT_CHARS] + "…"


def standard_tools(kb_names: Callable[[], list[str]], search: Callable[[str, str], list[SearchResult]]) -> ToolBox:
    """The agent's tools: calculator, current_datetime and search_knowledge_base."""
    return ToolBox([calculator(), current_datetime(), knowledge_base_search(kb_names, search)], kb_names)

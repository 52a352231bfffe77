"""`python -m server.cli chat [--kb NAME] [--model NAME] [--api URL]`: chat in the terminal through the API.

Type a question and the answer streams in as it is generated. `clear` starts over with an empty history,
`stop` (or Ctrl-D) quits. With --kb the answers come from that knowledge base and end with their sources.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from server.errors import ConfigError

BANNER = (
    "欢迎使用知库 (Zhiku) 终端对话：输入问题即可对话，输入 clear 清空对话历史，输入 stop 退出。\n"
    "Type a question; 'clear' empties the history, 'stop' quits."
)
PROMPT = "\n用户 / You: "
CLEAR_SCREEN = "\x1b[2J\x1b[H"


@dataclass
class TerminalChat:
    """One terminal session: keeps the history locally and sends it with each question."""

    http: httpx.Client
    out: TextIO
    kb: str | None = None
    model: str | None = None
    temperature: float = 0.7
    history: list[dict[str, str]] = field(default_factory=list)

    def run(self, read: Callable[[str], str]) -> int:
        self._write(BANNER + "\n")
        while True:
            try:
                line = read(PROMPT).strip()
            except EOFError:
                self._write("\n")
                return 0
            if line == "stop":
                return 0
            if line == "clear":
                self.history.clear()
                self._write(CLEAR_SCREEN + BANNER + "\n")
            elif line:
                self.ask(line)

    def ask(self, query: str) -> None:
        self._write("\n知库 / Zhiku: ")
        try:
            answer = self._stream_answer(query)
        except httpx.HTTPError as error:
            self._write(f"\n[cannot reach the API at {self.http.base_url} ({type(error).__name__}); is it running?]\n")
            return
        except KeyboardInterrupt:
            self._write("\n[stopped]\n")
            return
        if answer is not None:
            self.history += [{"role": "user", "content": query}, {"role": "assistant", "content": answer}]

    def _stream_answer(self, query: str) -> str | None:
        body: dict[str, Any] = {"query": query, "history": self.history, "stream": True,
                                "temperature": self.temperature}  # fmt: skip
        if self.model:
            body["model_name"] = self.model
        path = "/chat/chat"
        if self.kb:
            path, body["knowledge_base_name"] = "/chat/knowledge_base_chat", self.kb
        parts: list[str] = []
        with self.http.stream("POST", path, json=body) as response:
            if response.status_code != 200:
                self._write(f"[{response.status_code}] {_error_message(response)}\n")
                return None
            for event in _events(response.iter_lines()):
                if "code" in event:
                    self._write(f"\n[{event['code']}] {event.get('msg', '')}\n")
                    return None
                piece = event.get("text") or event.get("answer") or ""
                parts.append(piece)
                self._write(piece)
                if "docs" in event:
                    self._write_sources(event["docs"])
        self._write("\n")
        return "".join(parts)

    def _write_sources(self, docs: list[str]) -> None:
        self._write("\n\n" + "\n".join(doc.split("\n", 1)[0] for doc in docs))

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data:"):
            event = json.loads(line[5:])
            if isinstance(event, dict):
                yield event


def _error_message(response: httpx.Response) -> str:
    response.read()
    try:
        return str(response.json().get("msg", response.text))
    except (ValueError, AttributeError):
        return response.text[:300]


def _api_target(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.api and args.api_key is not None:
        return args.api, args.api_key or None
    from configs import load_settings

    settings = load_settings()
    key = settings.api.api_key.get_secret_value() if settings.api.api_key else None
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host
    return args.api or f"http://{host}:{settings.api.port}", key if args.api_key is None else args.api_key or None


def chat_command(args: argparse.Namespace) -> int:
    try:
        url, key = _api_target(args)
    except ConfigError as error:
        sys.stderr.write(f"{error.message}\n")
        return 2
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx.Timeout(600.0, connect=5.0)
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as http:
        session = TerminalChat(http, sys.stdout, kb=args.kb, model=args.model, temperature=args.temperature)
        return session.run(input)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server.cli", description="Zhiku command line tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    chat = commands.add_parser("chat", help="chat in the terminal (streaming), optionally over a knowledge base")
    chat.add_argument("--kb", help="answer from this knowledge base")
    chat.add_argument("--model", help="a key of llm_models (default: default_llm)")
    chat.add_argument("--api", help="the API's URL (default: http://<api.host>:<api.port> from the settings)")
    chat.add_argument("--api-key", help="the API key (default: api.api_key from the settings)")
    chat.add_argument("--temperature", type=float, default=0.7)
    chat.set_defaults(handler=chat_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())

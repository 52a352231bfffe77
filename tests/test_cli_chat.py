"""`python -m server.cli chat` in a pseudo-terminal, against a live API (without a model: no worker needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from chat_worker import PtySession
from conftest import LiveServer, make_settings

KB = "手册"


def cli(url: str, *extra: str) -> PtySession:
    args = [sys.executable, "-m", "server.cli", "chat", "--api", url, "--api-key", "", *extra]
    return PtySession(args, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_terminal_chat_over_a_kb_without_model(tmp_path: Path) -> None:
    with LiveServer(make_settings(tmp_path)) as server:
        import httpx

        http = httpx.Client(base_url=server.url)
        http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        files = [("files", ("guide.txt", "配置文件在 configs 目录。".encode()))]
        http.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files)
        session = cli(server.url, "--kb", KB)
        session.expect("stop")
        session.expect("You: ")
        session.send("配置文件在哪里")
        answer = session.expect("You: ")
        assert "未配置大语言模型" in answer and "出处 [1] [guide.txt]" in answer
        session.send("clear")
        assert "\x1b[2J" in session.expect("You: ")
        session.send("stop")
        assert session.wait() == 0


def test_terminal_chat_reports_errors_and_goes_on(tmp_path: Path) -> None:
    with LiveServer(make_settings(tmp_path)) as server:
        session = cli(server.url)
        session.expect("You: ")
        session.send("你好")
        assert "[503] no LLM is configured" in session.expect("You: ")
        session.send("stop")
        assert session.wait() == 0
    session = cli("http://127.0.0.1:9")
    session.expect("You: ")
    session.send("你好")
    assert "cannot reach the API at http://127.0.0.1:9" in session.expect("You: ")
    os.write(session.master, b"\x04")  # Ctrl-D quits too
    assert session.wait() == 0

"""Server-Sent Events as Chatchat 0.2 clients read them: `data: {json}\\r\\n\\r\\n`, UTF-8 (no \\u escapes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from fastapi.responses import Response, StreamingResponse

from server.api.envelope import Envelope
from server.errors import ZhikuError

_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStream(StreamingResponse):
    """A response of Server-Sent Events (also what /docs shows as the routes' content type)."""

    media_type = "text/event-stream"


def event_schema(model: type[Any]) -> dict[int | str, dict[str, Any]]:
    """The `responses` entry that documents a route's events: each `data:` line holds one `model` as JSON."""
    return {200: {"model": model, "description": f"Server-Sent Events; each `data:` line is one {model.__name__}"}}


def event_line(event: Any) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\r\n\r\n"


def sse(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for event in events:
            yield event_line(event)

    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8", headers=_HEADERS)


def sse_lines(events: Iterable[dict[str, Any]]) -> StreamingResponse:
    """A stream of events produced by a blocking iterator (run in a thread by Starlette)."""

    def body() -> Iterator[str]:
        for event in events:
            yield event_line(event)

    return StreamingResponse(body(), media_type="text/event-stream")


async def respond(events: AsyncIterator[dict[str, Any]], stream: bool) -> Response:
    """Streamed events, or (stream=false) the single merged event — an error in it becomes a real HTTP status."""
    if stream:
        return sse(events)
    event = await anext(aiter(events))
    if "code" in event:
        return Envelope(None, str(event.get("msg", "")), int(event["code"]))

    async def one() -> AsyncIterator[dict[str, Any]]:
        yield event

    return sse(one())


def text_event(text: str) -> str:
    """A plain-text event (Chatchat's /other/completion): each line of `text` is one `data:` line."""
    return "".join(f"data: {line}\r\n" for line in text.split("\n")) + "\r\n"


def text_stream(pieces: AsyncIterator[str], stream: bool) -> StreamingResponse:
    """Each piece as its own plain-text event, or (stream=false) the whole text as one. An error after the first
    piece ends the stream with an `event: error` whose data is the message."""

    async def body() -> AsyncIterator[str]:
        parts: list[str] = []
        try:
            async for piece in pieces:
                if stream:
                    yield text_event(piece)
                else:
                    parts.append(piece)
            if not stream:
                yield text_event("".join(parts))
        except ZhikuError as error:
            yield "event: error\r\n" + text_event(error.message)

    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8", headers=_HEADERS)

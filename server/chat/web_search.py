"""Web search for search-engine chat: the configured engines (SearXNG, Bing Web Search, DuckDuckGo's Instant
Answer API), their results as
SearchResults that the chat flow numbers, cites and answers from like retrieved chunks.

Engines answer in their own JSON; each kind has one small parser. Every failure is a ZhikuError naming the engine
(never its key): not configured (503), unknown name (404), unreachable (503), bad answer (502).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from configs.settings import SearchEngineConfig
from server.chat.models import mask_url
from server.errors import SearchEngineError, SearchEngineNotConfigured, SearchEngineUnavailable, UnknownSearchEngine
from server.knowledge_base.search import SearchResult

HOW_TO_CONFIGURE = (
    "add one under web_search.engines in configs/settings.yaml, e.g. searxng: {kind: searxng, url: "
    "http://127.0.0.1:8888} (a SearXNG instance with the json format enabled)"
)
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
"""An engine's answer larger than this is refused: a result page is a few kilobytes."""

Hit = tuple[str, str, str]  # title, url, snippet


def _searxng_request(config: SearchEngineConfig, query: str, top_k: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    return f"{config.url.rstrip('/')}/search", {"q": query, "format": "json"}, {}


def _searxng_hits(data: Any) -> list[Hit]:
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise ValueError("no 'results' list")
    return [(str(r.get("title") or ""), str(r["url"]), str(r.get("content") or "")) for r in results if r.get("url")]


def _bing_request(config: SearchEngineConfig, query: str, top_k: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    key = config.api_key.get_secret_value() if config.api_key else ""
    return config.url, {"q": query, "count": top_k}, {"Ocp-Apim-Subscription-Key": key}


def _bing_hits(data: Any) -> list[Hit]:
    pages = data.get("webPages", {"value": []}) if isinstance(data, dict) else None
    values = pages.get("value") if isinstance(pages, dict) else None
    if not isinstance(values, list):
        raise ValueError("no 'webPages.value' list")
    return [(str(v.get("name") or ""), str(v["url"]), str(v.get("snippet") or "")) for v in values if v.get("url")]


def _duckduckgo_request(
    config: SearchEngineConfig, query: str, top_k: int
) -> tuple[str, dict[str, Any], dict[str, str]]:
    return config.url, {"q": query, "format": "json", "no_html": 1, "skip_disambig": 1}, {}


def _duckduckgo_hits(data: Any) -> list[Hit]:
    """The Instant Answer API: the abstract, then the related topics (nested one level in groups)."""
    if not isinstance(data, dict) or not isinstance(data.get("RelatedTopics", []), list):
        raise ValueError("no 'RelatedTopics' list")
    hits: list[Hit] = []
    if data.get("AbstractURL") and data.get("AbstractText"):
        hits.append((str(data.get("Heading") or ""), str(data["AbstractURL"]), str(data["AbstractText"])))
    topics = [t for item in data.get("RelatedTopics", []) for t in (item.get("Topics") or [item])]
    for topic in topics:
        if topic.get("FirstURL") and topic.get("Text"):
            text = str(topic["Text"])
            hits.append((text.split(" - ")[0][:80], str(topic["FirstURL"]), text))
    return hits


Request = Callable[[SearchEngineConfig, str, int], tuple[str, dict[str, Any], dict[str, str]]]
KINDS: dict[str, tuple[Request, Callable[[Any], list[Hit]]]] = {
    "searxng": (_searxng_request, _searxng_hits),
    "bing": (_bing_request, _bing_hits),
    "duckduckgo": (_duckduckgo_request, _duckduckgo_hits),
}


class WebSearch:
    """The configured engines by name; `search` asks one and returns its first `top_k` results."""

    def __init__(
        self, engines: Mapping[str, SearchEngineConfig], *, default: str | None, top_k: int, timeout_s: float
    ) -> None:
        self._engines = dict(engines)
        self.default = default
        self.top_k = top_k
        self._timeout = httpx.Timeout(timeout_s)

    def names(self) -> list[str]:
        """The engine names, the default first (Chatchat's UI preselects the first)."""
        rest = sorted(name for name in self._engines if name != self.default)
        return [self.default, *rest] if self.default else rest

    def check(self, name: str) -> SearchEngineConfig:
        if not self._engines:
            raise SearchEngineNotConfigured(f"no search engine is configured: {HOW_TO_CONFIGURE}")
        config = self._engines.get(name)
        if config is None:
            raise UnknownSearchEngine(f"unknown search engine {name!r}; configured: {', '.join(self.names())}")
        return config

    def search(self, name: str, query: str, top_k: int | None = None) -> list[SearchResult]:
        """Results best first; each scores its reciprocal rank (1, 1/2, 1/3…): engines give an order, not a
        relevance."""
        config = self.check(name)
        count = top_k or self.top_k
        build, parse = KINDS[config.kind]
        url, params, headers = build(config, query, count)
        body = self._get(name, url, params, headers)
        try:
            hits = parse(json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SearchEngineError(
                f"search engine {name!r} ({mask_url(url)}) did not answer in the {config.kind} JSON format ({error}); "
                "for SearXNG, enable the json format (search.formats in its settings.yml)"
            ) from None
        return [
            SearchResult(
                id=f"{name}-{rank}",
                page_content=f"{title}\n{snippet}".strip(),
                metadata={"source": title or link, "url": link, "engine": name},
                score=1.0 / rank,
            )
            for rank, (title, link, snippet) in enumerate(hits[:count], start=1)
        ]

    def _get(self, name: str, url: str, params: dict[str, Any], headers: dict[str, str]) -> bytes:
        shown = mask_url(url)
        try:
            with (
                httpx.Client(timeout=self._timeout) as http,
                http.stream("GET", url, params=params, headers=headers) as r,
            ):
                if r.status_code >= 400:
                    raise SearchEngineError(f"search engine {name!r} ({shown}) answered HTTP {r.status_code}")
                body = bytearray()
                for block in r.iter_bytes():
                    body += block
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise SearchEngineError(f"search engine {name!r} ({shown}) answered more than 5 MB")
                return bytes(body)
        except (httpx.TransportError, httpx.InvalidURL) as error:
            raise SearchEngineUnavailable(
                f"could not reach search engine {name!r} at {shown} ({type(error).__name__}); check its url under "
                "web_search.engines and that it is running"
            ) from None

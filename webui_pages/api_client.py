"""A small typed client for the Zhiku HTTP API: the only way the Web UI reaches data.

Every call goes through `_send`, which turns a connection failure, a timeout or an error status into ApiError
with a readable message (the envelope's `msg`). Nothing here returns None on failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from server.server_configs import ServerConfigs
from webui_pages.api_types import ChatPiece, Chunk, FilePage, FileRow, Job, KbInfo, RebuildEvent

# Uploads, re-vectorizing and rebuilds may take minutes on a big file; connecting must be quick.
_TIMEOUT = httpx.Timeout(600.0, connect=5.0)

UploadFile = tuple[str, bytes]  # (file name, content)


class ApiError(Exception):
    """The API could not be reached or answered with an error. `status` is None when it was not reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("msg"):
        return str(body["msg"])
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return response.reason_phrase


def kb_names(kbs: str | Sequence[str]) -> str | list[str]:
    """`knowledge_base_name` as the API takes it: one name as a string (as Chatchat clients send it), several as a
    list, whose results the API fuses."""
    if isinstance(kbs, str):
        return kbs
    return kbs[0] if len(kbs) == 1 else list(kbs)


def _upload_form(kb: str, chunk_size: int, overlap: int, title: bool, override: bool, ocr: str) -> dict[str, str]:
    form = {
        "knowledge_base_name": kb,
        "chunk_size": str(chunk_size),
        "chunk_overlap": str(overlap),
        "zh_title_enhance": str(title).lower(),
        "override": str(override).lower(),
    }
    return {**form, "ocr": ocr} if ocr else form  # "": the KB's own OCR mode


def _job_path(job_id: str) -> str:
    """A job id as one path segment: ids come from the API, but a stray '/' must not reach another route."""
    return quote(job_id, safe="")


class ApiClient:
    def __init__(self, base_url: str, api_key: str | None = None, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=_TIMEOUT, transport=transport)

    # -- transport -------------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise ApiError(f"the API at {self.base_url} did not answer in time ({type(error).__name__})") from error
        except httpx.HTTPError as error:
            raise ApiError(f"cannot reach the API at {self.base_url}: {error}") from error
        if response.status_code >= 400:
            raise ApiError(_error_message(response), response.status_code)
        return response

    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        """The envelope's `data` (or the body itself for routes that answer a bare value)."""
        body = self._send(method, path, **kwargs).json()
        return body["data"] if isinstance(body, dict) and "data" in body and "code" in body else body

    def _events(self, path: str, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Server-Sent Events of a POST route, one JSON object each."""
        try:
            with self._http.stream("POST", path, json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(_error_message(response), response.status_code)
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        yield json.loads(line[5:].strip())
        except httpx.HTTPError as error:
            raise ApiError(f"the stream from {self.base_url}{path} broke off: {error}") from error

    def url(self, path: str, **params: str) -> str:
        """An absolute URL for links the browser opens itself (downloads)."""
        return str(httpx.URL(self.base_url + path, params=params))

    # -- knowledge bases -------------------------------------------------------------------------------------
    def list_kbs(self) -> list[KbInfo]:
        return [KbInfo.from_api(row) for row in self._data("GET", "/knowledge_base/list_knowledge_base_details")]

    def create_kb(self, name: str, *, info: str, vs_type: str, embed_model: str) -> None:
        payload = {"knowledge_base_name": name, "kb_info": info, "vector_store_type": vs_type}
        if embed_model:
            payload["embed_model"] = embed_model
        self._data("POST", "/knowledge_base/create_knowledge_base", json=payload)

    def delete_kb(self, name: str) -> None:
        self._data("POST", "/knowledge_base/delete_knowledge_base", json={"knowledge_base_name": name})

    def update_kb_info(self, name: str, info: str) -> None:
        self._data("POST", "/knowledge_base/update_info", json={"knowledge_base_name": name, "kb_info": info})

    def update_search_mode(self, name: str, search_mode: str) -> None:
        payload = {"knowledge_base_name": name, "search_mode": search_mode}
        self._data("POST", "/knowledge_base/update_search_mode", json=payload)

    # -- files -----------------------------------------------------------------------------------------------
    def list_file_names(self, kb: str) -> list[str]:
        return [
            str(name) for name in self._data("GET", "/knowledge_base/list_files", params={"knowledge_base_name": kb})
        ]

    def list_file_details(
        self, kb: str, *, offset: int, limit: int, order_by: str = "file_name", descending: bool = False
    ) -> FilePage:
        params = {
            "knowledge_base_name": kb,
            "offset": offset,
            "limit": limit,
            "order_by": order_by,
            "descending": descending,
        }
        data = self._data("GET", "/knowledge_base/list_file_details", params=params)
        files = [FileRow.from_api(row) for row in data["files"]]
        return FilePage(total=int(data["total"]), offset=int(data["offset"]), files=files)

    def list_folder_only_files(self, kb: str) -> list[str]:
        data = self._data("GET", "/knowledge_base/list_folder_only_files", params={"knowledge_base_name": kb})
        return [str(name) for name in data]

    def update_file_tags(self, kb: str, file_name: str, tags: Sequence[str]) -> None:
        payload = {"knowledge_base_name": kb, "file_name": file_name, "tags": list(tags)}
        self._data("POST", "/knowledge_base/update_file_tags", json=payload)

    def set_file_enabled(self, kb: str, file_name: str, enabled: bool) -> None:
        payload = {"knowledge_base_name": kb, "file_name": file_name, "enabled": enabled}
        self._data("POST", "/knowledge_base/set_file_enabled", json=payload)

    def upload_docs(
        self,
        kb: str,
        files: Sequence[UploadFile],
        *,
        chunk_size: int,
        chunk_overlap: int,
        zh_title_enhance: bool,
        override: bool = False,
        ocr: str = "",
    ) -> dict[str, str]:
        """Upload and vectorize files; returns {file name: reason} for the ones that failed."""
        form = _upload_form(kb, chunk_size, chunk_overlap, zh_title_enhance, override, ocr)
        parts = [("files", (name, content)) for name, content in files]
        try:
            data = self._data("POST", "/knowledge_base/upload_docs", data=form, files=parts)
        except ApiError as error:
            if len(files) == 1:
                return {files[0][0]: error.message}
            raise
        return {str(k): str(v) for k, v in (data or {}).get("failed_files", {}).items()}

    def upload_docs_in_background(
        self,
        kb: str,
        files: Sequence[UploadFile],
        *,
        chunk_size: int,
        chunk_overlap: int,
        zh_title_enhance: bool,
        override: bool = False,
        ocr: str = "",
        tags: Sequence[str] = (),
    ) -> Job:
        """Send files to be ingested by the API's workers; answers at once with the queued job.

        The whole request is refused (ApiError) when one file is: a bad name, a name sent twice, too many bytes."""
        form = {**_upload_form(kb, chunk_size, chunk_overlap, zh_title_enhance, override, ocr), "background": "true"}
        if tags:
            form["tags"] = json.dumps(list(tags), ensure_ascii=False)
        parts = [("files", (name, content)) for name, content in files]
        return Job.from_api(self._data("POST", "/knowledge_base/upload_docs", data=form, files=parts))

    def delete_docs(self, kb: str, file_names: Sequence[str], *, delete_content: bool) -> dict[str, str]:
        payload = {"knowledge_base_name": kb, "file_names": list(file_names), "delete_content": delete_content}
        return self._failures("/knowledge_base/delete_docs", payload)

    def update_docs(
        self, kb: str, file_names: Sequence[str], *, chunk_size: int, chunk_overlap: int, zh_title_enhance: bool
    ) -> dict[str, str]:
        payload = {
            "knowledge_base_name": kb,
            "file_names": list(file_names),
            "chunk_size": chunk_size,
            "chunk_overlap": chunk_overlap,
            "zh_title_enhance": zh_title_enhance,
        }
        return self._failures("/knowledge_base/update_docs", payload)

    def _failures(self, path: str, payload: dict[str, Any]) -> dict[str, str]:
        data = self._data("POST", path, json=payload) or {}
        return {str(k): str(v) for k, v in data.get("failed_files", {}).items()}

    def download_doc(self, kb: str, file_name: str) -> bytes:
        params = {"knowledge_base_name": kb, "file_name": file_name}
        return self._send("GET", "/knowledge_base/download_doc", params=params).content

    # -- background jobs -------------------------------------------------------------------------------------
    def list_jobs(self, kb: str | None = None, *, state: str | None = None, limit: int = 50) -> list[Job]:
        """Jobs newest first, without their files."""
        params: dict[str, Any] = {"limit": limit}
        if kb is not None:
            params["knowledge_base_name"] = kb
        if state is not None:
            params["state"] = state
        return [Job.from_api(row) for row in self._data("GET", "/knowledge_base/jobs", params=params)]

    def get_job(self, job_id: str, *, file_state: str = "", offset: int = 0, limit: int | None = None) -> Job:
        """One job with a page of its files, failed ones first (`file_state`: only those in that state). Without
        `limit` the API lists its default number of files (1,000)."""
        params: dict[str, Any] = {"files_offset": offset}
        if limit is not None:
            params["files_limit"] = limit
        if file_state:
            params["file_state"] = file_state
        return Job.from_api(self._data("GET", f"/knowledge_base/jobs/{_job_path(job_id)}", params=params))

    def cancel_job(self, job_id: str) -> Job:
        """ApiError 409 when the job has already ended."""
        return Job.from_api(self._data("POST", f"/knowledge_base/jobs/{_job_path(job_id)}/cancel"))

    def retry_job(self, job_id: str) -> Job:
        """Queue the job's failed files again; ApiError 409 when none failed."""
        return Job.from_api(self._data("POST", f"/knowledge_base/jobs/{_job_path(job_id)}/retry"))

    # -- chunks and search -----------------------------------------------------------------------------------
    def search_docs(
        self,
        kb: str | Sequence[str],
        query: str,
        *,
        top_k: int,
        score_threshold: float,
        search_mode: str = "",
        tags_any: Sequence[str] = (),
    ) -> list[Chunk]:
        """`search_mode` "" uses each KB's own default; several KBs give one fused list naming each hit's KB;
        `tags_any` keeps files with any of those tags."""
        payload: dict[str, Any] = {
            "knowledge_base_name": kb_names(kb),
            "query": query,
            "top_k": top_k,
            "score_threshold": score_threshold,
        }
        if search_mode:
            payload["search_mode"] = search_mode
        if tags_any:
            payload["filter"] = {"tags_any": list(tags_any)}
        return [Chunk.from_api(row) for row in self._data("POST", "/knowledge_base/search_docs", json=payload)]

    def list_chunks(self, kb: str, file_name: str) -> list[Chunk]:
        payload = {"knowledge_base_name": kb, "query": "", "file_name": file_name}
        return [Chunk.from_api(row) for row in self._data("POST", "/knowledge_base/search_docs", json=payload)]

    def update_chunks(self, kb: str, docs: dict[str, dict[str, Any] | None]) -> dict[str, str]:
        """Apply {chunk id: {"page_content", "metadata"} | None}; returns {id: reason} for the failed ones."""
        payload = {"knowledge_base_name": kb, "docs": docs}
        data = self._data("POST", "/knowledge_base/update_docs_by_id", json=payload) or {}
        return {str(k): str(v) for k, v in data.get("failed_ids", {}).items()}

    def recreate_vector_store(self, kb: str, *, chunk_size: int, chunk_overlap: int) -> Iterator[RebuildEvent]:
        payload = {"knowledge_base_name": kb, "chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
        for event in self._events("/knowledge_base/recreate_vector_store", payload):
            yield RebuildEvent.from_api(event)

    # -- chat ------------------------------------------------------------------------------------------------
    def chat(self, mode: str, payload: dict[str, Any]) -> Iterator[ChatPiece]:
        """Stream /chat/<mode> (chat, knowledge_base_chat, file_chat)."""
        for event in self._events(f"/chat/{mode}", {**payload, "stream": True}):
            if isinstance(event, dict) and event.get("code", 200) >= 400:
                raise ApiError(str(event.get("msg") or event), int(event["code"]))
            yield ChatPiece.from_api(event)

    def upload_temp_docs(self, files: Sequence[UploadFile], *, prev_id: str = "") -> tuple[str, dict[str, str]]:
        """Files for one conversation (file chat); returns the knowledge id and the failures."""
        parts = [("files", (name, content)) for name, content in files]
        data = self._data("POST", "/knowledge_base/upload_temp_docs", data={"prev_id": prev_id}, files=parts)
        failed = data.get("failed_files") or {}
        failures = failed if isinstance(failed, dict) else {str(i): str(item) for i, item in enumerate(failed)}
        return str(data["id"]), {str(k): str(v) for k, v in failures.items()}

    def feedback(self, message_id: str, score: int, reason: str = "") -> None:
        self._data("POST", "/chat/feedback", json={"message_id": message_id, "score": score, "reason": reason})

    def list_models(self) -> list[str]:
        """Running models first, then the other configured ones ({"local": {name: config}, "online": {...}})."""
        running = self._data("POST", "/llm_model/list_running_models", json={}) or {}
        configured = self._data("POST", "/llm_model/list_config_models", json={}) or {}
        names = [str(name) for name in running]
        for models in configured.values():
            names.extend(str(name) for name in models)
        return list(dict.fromkeys(names))

    def model_states(self) -> dict[str, dict[str, Any]]:
        """Each running model's entry with its state: online, or a local model's loaded/loading/unloaded/failed."""
        running = self._data("POST", "/llm_model/list_running_models", json={}) or {}
        return {str(name): dict(entry) for name, entry in running.items() if isinstance(entry, dict)}

    def load_model(self, name: str) -> dict[str, Any]:
        """Start loading a local model (the worker unloads the least recently used ones to make room)."""
        return dict(self._data("POST", "/llm_model/load", json={"model_name": name, "wait": False}))

    def change_model(self, old: str, new: str) -> dict[str, Any]:
        body = {"model_name": old, "new_model_name": new, "wait": False}
        return dict(self._data("POST", "/llm_model/change", json=body))

    def stop_model(self, name: str) -> dict[str, Any]:
        return dict(self._data("POST", "/llm_model/stop", json={"model_name": name}))

    def server_configs(self) -> ServerConfigs:
        """The API's defaults and choices; ApiError when it answers something else (an older or foreign API)."""
        data = self._data("POST", "/server/configs", json={})
        try:
            return ServerConfigs.model_validate(data)
        except ValidationError as error:
            raise ApiError(
                f"the API at {self.base_url} answered /server/configs in an unexpected form "
                f"({error.error_count()} problems, e.g. {error.errors()[0]['loc']}); is it a Zhiku API of this version?"
            ) from error

    def health(self) -> None:
        self._send("GET", "/health")

    # -- KB archives -------------------------------------------------------------------------------------------
    def export_kb(self, kb: str, *, with_vectors: bool = True) -> bytes:
        params = {"knowledge_base_name": kb, "with_vectors": str(with_vectors).lower()}
        return self._send("GET", "/knowledge_base/export", params=params).content

    def import_kb(self, archive: UploadFile, form: dict[str, str]) -> dict[str, Any]:
        """`form`: knowledge_base_name, vector_store_type, embed_model (empty: the archive's), overwrite."""
        files = {"file": (archive[0], archive[1], "application/zip")}
        report: dict[str, Any] = self._data("POST", "/knowledge_base/import", data=form, files=files)
        return report

    # -- FAQ files and direct answers ------------------------------------------------------------------------
    def import_faq(self, kb: str, upload: UploadFile, *, file_name: str, override: bool) -> dict[str, Any]:
        form = {"knowledge_base_name": kb, "file_name": file_name, "override": str(override).lower()}
        files = {"file": (upload[0], upload[1], "application/octet-stream")}
        stored: dict[str, Any] = self._data("POST", "/knowledge_base/import_faq", data=form, files=files)
        return stored

    def list_faq(self, kb: str) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = self._data("GET", "/knowledge_base/list_faq", params={"knowledge_base_name": kb})
        return files

    def update_faq(self, kb: str, file_name: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        payload = {"knowledge_base_name": kb, "file_name": file_name, "entries": entries}
        stored: dict[str, Any] = self._data("POST", "/knowledge_base/update_faq", json=payload)
        return stored

    def update_direct_answer_threshold(self, kb: str, threshold: float | None) -> None:
        payload = {"knowledge_base_name": kb, "direct_answer_threshold": threshold}
        self._data("POST", "/knowledge_base/update_direct_answer_threshold", json=payload)

    # -- API keys and the audit log (the admin's) -------------------------------------------------------------
    def list_keys(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self._data("GET", "/api_keys")
        return keys

    def create_key(self, name: str, kbs: Sequence[str], right: str, expires_at: str | None) -> dict[str, Any]:
        payload = {"name": name, "knowledge_bases": list(kbs), "right": right, "expires_at": expires_at}
        made: dict[str, Any] = self._data("POST", "/api_keys", json=payload)
        return made

    def revoke_key(self, key_id: str) -> None:
        self._data("POST", f"/api_keys/{quote(key_id, safe='')}/revoke")

    def audit(self, limit: int = 200) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._data("GET", "/audit", params={"limit": limit})
        return entries

    def audit_csv(self) -> bytes:
        return self._send("GET", "/audit/export").content

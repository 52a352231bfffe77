"""What each route needs from the caller's key. One table, so a reviewer sees every route's rule in one place; a
route missing from it is for the admin only (fail closed), and a test checks that every route of /openapi.json
is listed.

- `any`: any valid key (the admin's or a scoped one): chat without a KB, model lists, embeddings.
- `list`: any valid key; the answer lists only the KBs the key reaches.
- `read` / `write`: every KB the request names must be in the key's scope (404 otherwise: a key cannot learn
  that other KBs exist), with that right (403 for a read key asked to write).
- `read_optional`: `read` when the request names a KB, else `any` (/v1/chat/completions).
- `admin`: the admin key only (model switching, fine-tuning, server settings, keys, the audit log, import).
"""

from __future__ import annotations

from typing import Literal

Access = Literal["open", "any", "list", "read", "read_optional", "write", "admin"]

WRITES: frozenset[Access] = frozenset({"write", "admin"})

_KB = "/knowledge_base"
_SUMMARY = f"{_KB}/kb_summary_api"
_JOBS = f"{_KB}/jobs"

POLICY: dict[tuple[str, str], Access] = {
    ("GET", "/health"): "open",
    # knowledge bases and their files
    ("GET", f"{_KB}/list_knowledge_bases"): "list",
    ("GET", f"{_KB}/list_knowledge_base_details"): "list",
    ("POST", f"{_KB}/create_knowledge_base"): "write",
    ("POST", f"{_KB}/delete_knowledge_base"): "write",
    ("POST", f"{_KB}/update_info"): "write",
    ("POST", f"{_KB}/update_search_mode"): "write",
    ("POST", f"{_KB}/update_ocr_mode"): "write",
    ("GET", f"{_KB}/knowledge_base_info"): "read",
    ("GET", f"{_KB}/list_files"): "read",
    ("GET", f"{_KB}/list_file_details"): "read",
    ("GET", f"{_KB}/list_folder_only_files"): "read",
    ("GET", f"{_KB}/download_doc"): "read",
    ("POST", f"{_KB}/upload_docs"): "write",
    ("POST", f"{_KB}/update_file_tags"): "write",
    ("POST", f"{_KB}/set_file_enabled"): "write",
    ("POST", f"{_KB}/delete_docs"): "write",
    ("POST", f"{_KB}/update_docs"): "write",
    ("POST", f"{_KB}/update_docs_by_id"): "write",
    ("POST", f"{_KB}/update_folder_sync"): "write",
    ("POST", f"{_KB}/sync_folder"): "write",
    ("POST", f"{_KB}/search_docs"): "read",
    ("POST", f"{_KB}/recreate_vector_store"): "write",
    ("GET", f"{_KB}/export"): "read",
    ("POST", f"{_KB}/import"): "admin",
    ("POST", f"{_KB}/import_faq"): "write",
    ("GET", f"{_KB}/list_faq"): "read",
    ("POST", f"{_KB}/update_faq"): "write",
    ("POST", f"{_KB}/update_direct_answer_threshold"): "write",
    # background jobs: a job's KB is looked up from its id
    ("GET", _JOBS): "list",
    ("GET", f"{_JOBS}/{{job_id}}"): "read",
    ("GET", f"{_JOBS}/{{job_id}}/events"): "read",
    ("POST", f"{_JOBS}/{{job_id}}/cancel"): "write",
    ("POST", f"{_JOBS}/{{job_id}}/retry"): "write",
    # summaries
    ("POST", f"{_SUMMARY}/summary_file_to_vector_store"): "write",
    ("POST", f"{_SUMMARY}/summary_doc_ids_to_vector_store"): "write",
    ("POST", f"{_SUMMARY}/recreate_summary_vector_store"): "write",
    ("POST", f"{_SUMMARY}/search_summaries"): "read",
    # chat
    ("POST", "/chat/chat"): "any",
    ("POST", "/chat/knowledge_base_chat"): "read",
    ("POST", "/chat/file_chat"): "any",  # a temporary KB of the caller's own upload
    ("POST", "/chat/search_engine_chat"): "any",
    ("POST", "/chat/agent_chat"): "admin",  # its tools search every KB
    ("POST", "/chat/feedback"): "any",
    ("POST", f"{_KB}/upload_temp_docs"): "any",
    # models
    ("POST", "/llm_model/list_running_models"): "any",
    ("POST", "/llm_model/list_config_models"): "any",
    ("POST", "/llm_model/get_model_config"): "any",
    ("POST", "/llm_model/change"): "admin",
    ("POST", "/llm_model/stop"): "admin",
    ("POST", "/llm_model/load"): "admin",
    ("GET", "/llm_model/finetune"): "admin",
    ("POST", "/llm_model/finetune"): "admin",
    ("GET", "/llm_model/finetune/{name}"): "admin",
    ("POST", "/llm_model/finetune/{name}/cancel"): "admin",
    # server, other
    ("POST", "/server/configs"): "any",  # the UI's defaults and choices; no secrets
    ("POST", "/server/get_prompt_template"): "any",
    ("POST", "/server/list_search_engines"): "any",
    ("POST", "/other/embed_texts"): "any",
    ("POST", "/other/completion"): "any",
    # OpenAI-compatible
    ("GET", "/v1/models"): "any",
    ("POST", "/v1/chat/completions"): "read_optional",
    ("POST", "/v1/embeddings"): "any",
    # keys and the audit log
    ("POST", "/api_keys"): "admin",
    ("GET", "/api_keys"): "admin",
    ("POST", "/api_keys/{key_id}/revoke"): "admin",
    ("GET", "/audit"): "admin",
    ("GET", "/audit/export"): "admin",
}


def access_of(method: str, path_template: str) -> Access:
    return POLICY.get((method.upper(), path_template), "admin")

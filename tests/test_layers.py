"""No module imports upward: each part of server/ (and configs/) may import only parts below it, or itself.

A layer's parts never import each other (the embedding code does not know the vector stores), so every part can
be read, tested and replaced on its own. The import statements are read from the source, those inside functions
and under TYPE_CHECKING included.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: dict[str, int] = {
    "server": 0,  # the package itself (__version__)
    "server.errors": 0,
    "server.documents": 0,
    "server.vectorstores": 1,
    "server.embeddings": 1,
    "server.ocr": 1,  # the OCR worker pool; the loaders hand it pages
    "server.loaders": 2,
    "server.splitter": 1,
    "server.db": 1,
    "server.llm": 1,
    "server.retrieval": 2,
    "server.auth": 2,  # API keys, their scopes, and the audit log (registry tables)
    "configs": 3,
    "server.integrations": 3,  # for LangChain apps; nothing in the server imports it
    "server.knowledge_base": 4,
    "server.chat": 5,
    "server.server_configs": 5,
    "server.jobs": 5,
    "server.finetune": 5,  # training runs, and the adapters they registered
    "server.bootstrap_chat": 6,  # the LLM-facing services, wired for bootstrap
    "server.bootstrap": 7,
    "server.llm_worker": 7,
    "server.db.migrations": 7,  # run by the Alembic command line, which needs the settings
    "server.supervisor": 7,  # the launcher: processes, then the plan of what to start, then its summary
    "server.supervisor_plan": 8,
    "server.supervisor_summary": 9,
    "server.api": 10,
    "server.cli": 10,
    "server.job_worker": 10,
}


def _part(module: str) -> str:
    """The most specific entry of LAYERS that `module` belongs to."""
    candidates = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(candidates, key=len)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    return _imports_of(path.read_text(encoding="utf-8"))


def _imports_of(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("server", "configs")}


def _violations() -> list[str]:
    found = []
    for path in sorted([*(ROOT / "server").rglob("*.py"), *(ROOT / "configs").rglob("*.py")]):
        source = _module_name(path)
        own = _part(source)
        for target in sorted(_imports(path)):
            other = _part(target)
            if other != own and LAYERS[other] >= LAYERS[own] and not own.startswith(other + "."):
                found.append(f"{source} ({own}, layer {LAYERS[own]}) imports {target} ({other}, layer {LAYERS[other]})")
    return found


def test_no_module_imports_upward_or_sideways() -> None:
    assert _violations() == []


def test_every_module_has_a_layer_of_its_own() -> None:
    """A new top-level module of server/ must be given its place in LAYERS (not fall back to the package's)."""
    for path in (ROOT / "server").rglob("*.py"):
        module = _module_name(path)
        assert module == "server" or _part(module) != "server", f"add {module} to LAYERS"


def test_the_check_sees_upward_imports() -> None:
    assert LAYERS[_part("server.retrieval.search")] < LAYERS[_part("server.knowledge_base.service")]
    assert _part("server.vectorstores.faiss_store") == "server.vectorstores"
    source = "from server.knowledge_base.search import SearchService\n"
    assert _imports_of(source) == {"server.knowledge_base.search.SearchService"}

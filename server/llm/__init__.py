"""Local chat models for the LLM worker: loading, streaming generation, and a per-model FIFO runner.

Importing this package loads nothing; `load_chat_model(spec)` does, and pulls in torch and transformers.
"""

from server.llm.spec import ModelSpec

__all__ = ["ModelSpec"]

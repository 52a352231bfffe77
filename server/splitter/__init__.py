"""Text splitting: the Chinese-aware recursive splitter and the document-level entry point."""

from server.splitter.documents import split_documents
from server.splitter.recursive import ChineseRecursiveTextSplitter, chunk_length
from server.splitter.title import is_possible_title

SPLITTER_NAME = "ChineseRecursiveTextSplitter"

__all__ = ["SPLITTER_NAME", "ChineseRecursiveTextSplitter", "chunk_length", "is_possible_title", "split_documents"]

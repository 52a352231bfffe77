"""Retrieval beyond one vector search: keyword index, rank fusion, reranking and multi-KB search."""

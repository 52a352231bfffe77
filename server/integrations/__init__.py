"""Zhiku parts for other frameworks (LangChain). Each module imports its framework itself, so nothing here is
imported by the server."""

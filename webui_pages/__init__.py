"""Zhiku Web UI pages and the HTTP API client they use."""

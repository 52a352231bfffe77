"""Zhiku (知库): offline knowledge-base question answering."""

__version__ = "0.1.0"

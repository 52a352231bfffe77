"""A sentence-transformers model run by ONNX Runtime: the tokenizer, the exported transformer, and the pooling.

Only models made of a Transformer, a Pooling and optionally a Normalize module can run this way (all-MiniLM,
bge, m3e, e5, gte…); anything else (a Dense layer, a custom module) is refused with a message to use the torch
runtime. Tokenization and pooling follow the model's own sentence-transformers configuration, so the vectors
match the torch runtime's (cosine 1.000 for fp32; docs/benchmarks.md has the int8 figures).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.embeddings._vectors import normalise_rows
from server.embeddings.base import Vectors
from server.errors import EmbeddingUnavailable

POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len_tokens", "lasttoken")
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_ACCEPTED_MODULES = ("Transformer", "Pooling", "Normalize")


@dataclass(frozen=True)
class SentenceLayout:
    """What the sentence-transformers config files of a model folder say about running it."""

    pooling: str
    max_length: int
    lowercase: bool
    dim: int


def read_layout(model_dir: Path) -> SentenceLayout:
    """The model's pooling, maximum length and casing; raises EmbeddingUnavailable when ONNX cannot run it."""
    modules = _read_json(model_dir / "modules.json", default=[])
    pooling_path = ""
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in _ACCEPTED_MODULES:
            raise EmbeddingUnavailable(
                f"model {model_dir} has a {kind!r} module, which the ONNX runtime does not run; set `runtime: torch`"
            )
        if kind == "Pooling":
            pooling_path = str(module.get("path", ""))
    pooling_config = _read_json(model_dir / pooling_path / "config.json", default={}) if pooling_path else {}
    sentence = _read_json(model_dir / "sentence_bert_config.json", default={})
    config = _read_json(model_dir / "config.json", default={})
    longest = int(config.get("max_position_embeddings", 512))
    max_length = int(sentence.get("max_seq_length") or min(512, longest))
    dim = pooling_config.get("embedding_dimension") or pooling_config.get("word_embedding_dimension")
    dim = int(dim or config.get("hidden_size", 0))
    if dim <= 0:
        raise EmbeddingUnavailable(f"cannot tell the vector size of {model_dir}: config.json has no hidden_size")
    lowercase = bool(sentence.get("do_lower_case", False))
    return SentenceLayout(pooling_mode(pooling_config), max_length, lowercase, dim)


def pooling_mode(config: dict[str, Any]) -> str:
    """The one pooling mode of a Pooling config, new (`pooling_mode`) or old (`pooling_mode_*_token(s)`) keys."""
    mode: Any = config.get("pooling_mode")
    if mode is None:
        modes = [name for key, name in _LEGACY_POOLING_KEYS.items() if config.get(key)]
        mode = modes if len(modes) != 1 else modes[0]
        if not modes:
            mode = "mean"  # sentence-transformers' own default for a Pooling module without a mode
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if not isinstance(mode, str) or mode not in POOLING_MODES:
        raise EmbeddingUnavailable(f"pooling {mode!r} is not supported by the ONNX runtime; set `runtime: torch`")
    return mode


def pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> Vectors:
    """Sentence vectors (batch, dim) from token vectors (batch, length, dim) and the attention mask."""
    weights = mask[..., None].astype(np.float32)
    if mode == "cls":
        return np.asarray(tokens[:, 0], dtype=np.float32)
    if mode == "max":
        return np.where(weights > 0, tokens, -1e9).max(axis=1).astype(np.float32)
    if mode == "lasttoken":
        # The last position holding a real token, for left and right padding alike.
        last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
        return np.asarray(tokens[np.arange(len(tokens)), last], dtype=np.float32)
    summed = (tokens * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    divisor = np.sqrt(counts) if mode == "mean_sqrt_len_tokens" else counts
    return (summed / divisor).astype(np.float32)


class OnnxSentenceEncoder:
    """Encodes texts with an ONNX Runtime session; one instance per model, calls serialised by the caller."""

    def __init__(
        self,
        model_dir: Path,
        onnx_file: Path,
        *,
        providers: Sequence[Any] = ("CPUExecutionProvider",),
        threads: int | None = None,
        batch_size: int = 32,
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.layout = read_layout(model_dir)
        self.batch_size = batch_size
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            # Spinning threads wait for work at full speed: on a shared, loaded machine that steals the cores the
            # other thread needs (measured: 2 spinning threads ran slower than 1 at load 4+).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_file), options, providers=list(providers))
        self._inputs = [item.name for item in self._session.get_inputs()]
        self.dim = self.layout.dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors for `texts`, in order; texts of similar length are batched together to pad less."""
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            out[chosen] = self._encode_batch([texts[index] for index in chosen])
        return out

    def _encode_batch(self, texts: list[str]) -> Vectors:
        if self.layout.lowercase:
            texts = [text.lower() for text in texts]
        encoded = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.layout.max_length, return_tensors="np"
        )
        mask = encoded["attention_mask"].astype(np.int64)
        feed = {name: self._input(encoded, name, mask) for name in self._inputs}
        tokens = self._session.run(None, feed)[0]
        return normalise_rows(pool(tokens, mask, self.layout.pooling))

    @staticmethod
    def _input(encoded: Any, name: str, mask: np.ndarray) -> np.ndarray:
        if name in encoded:
            return np.asarray(encoded[name], dtype=np.int64)
        if name == "token_type_ids":  # a shipped ONNX file may want them when the tokenizer gives none
            return np.zeros_like(mask)
        raise EmbeddingUnavailable(f"the ONNX model needs an input {name!r} that the tokenizer does not make")


def _read_json(path: Path, *, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EmbeddingUnavailable(f"cannot read {path} ({error}); check the model folder") from error

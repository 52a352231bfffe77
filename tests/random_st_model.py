"""A sentence-transformers model folder with random weights, made offline: BERT + pooling + normalize.

No bge or m3e weights exist on this machine, so tests and `bench.embed_runtimes` build a model of the same shape
(bge: CLS pooling; m3e, all-MiniLM: mean pooling) to exercise loading, ONNX export and timing. Its vectors mean
nothing; only their agreement between runtimes and the time they take do.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "of", "and", "to", "is", "it", "how", "do", "i", "install", "hello", "world", "model", "search"]
CJK = list("知识库问答向量检索模型中文的是在有")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class RandomModelShape:
    layers: int = 2
    hidden: int = 32
    heads: int = 2
    intermediate: int = 64
    max_length: int = 128
    pooling: str = "cls"  # bge; "mean" for m3e / all-MiniLM


# bge-base-zh-v1.5 and m3e-base: BERT-base, 12 layers of 768, CLS (bge) or mean (m3e) pooling.
BGE_BASE = RandomModelShape(layers=12, hidden=768, heads=12, intermediate=3072, max_length=512)


def make_random_model(
    folder: Path, shape: RandomModelShape = RandomModelShape(), tokenizer_from: Path | None = None
) -> Path:
    """Write the model into `folder` (seeded: the same weights each time); the tokenizer is a tiny word list
    unless `tokenizer_from` names a model folder whose tokenizer files to copy."""
    import torch
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = _write_tokenizer(folder, tokenizer_from)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=max(512, shape.max_length),
    )
    torch.manual_seed(0)
    BertModel(config).eval().save_pretrained(str(folder))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    _write_json(folder / "modules.json", modules)
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": shape.max_length, "do_lower_case": False})
    pooling = {"embedding_dimension": shape.hidden, "pooling_mode": shape.pooling, "include_prompt": True}
    _write_json(folder / "1_Pooling" / "config.json", pooling)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    return folder


def _write_tokenizer(folder: Path, source: Path | None) -> int:
    """Tokenizer files in `folder`; returns the vocabulary size."""
    if source is not None:
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copy(source / name, folder / name)
        return sum(1 for _ in (folder / "vocab.txt").open(encoding="utf-8"))
    vocab = [*SPECIAL, *WORDS, *CJK, *(chr(code) for code in range(ord("a"), ord("z") + 1))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    _write_json(folder / "tokenizer_config.json", {"tokenizer_class": "BertTokenizer", "do_lower_case": True})
    return len(vocab)


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")

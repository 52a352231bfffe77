"""A tiny random chat model built at test time: a byte-level BPE tokenizer and a 2-layer Qwen2.

Its output is random text. Tests use it to check the worker's protocol, streaming, token counts and
cancellation, never the content. Building it takes well under a second once torch is imported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML, as Qwen models use it.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_ENGLISH = """\
A knowledge base keeps documents, splits them into chunks and stores one vector per chunk.
When a question arrives, the closest chunks are found and handed to the language model as context.
The model reads the context and answers in a few sentences, citing the files it used.
Streaming sends each piece of the answer as soon as it is generated, so the reader waits less.
A worker process loads the model once and serves many requests, one generation at a time.
"""

_CHINESE = """\
知识库保存文档，把它们切分成小段，并为每一段计算一个向量。
用户提问时，系统找到最相近的段落，作为上下文交给大语言模型。
模型阅读上下文，用几句话回答问题，并注明引用的文件。
流式输出在生成每一个片段后立即发送，读者不必等待整段回答。
工作进程只加载一次模型，按顺序为许多请求生成回答。
"""


def corpus() -> list[str]:
    """A few KB of mixed Chinese and English lines for training the tokenizer."""
    lines = (_ENGLISH + _CHINESE).splitlines()
    return [line for line in lines for _ in range(8)]


def build_tokenizer(chat_template: str | None = CHAT_TEMPLATE):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=chat_template,
    )


def build_tiny_model(
    target: Path,
    *,
    chat_template: str | None = CHAT_TEMPLATE,
    positions: int = 8192,
    hidden: int = 64,
    layers: int = 2,
    init_range: float = 0.02,
) -> Path:
    """Write a random Qwen2 (2 layers of hidden size 64 unless told) and its tokenizer into `target`.

    A larger `init_range` gives the embeddings room for confident predictions: a model to fine-tune needs it."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(chat_template)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=positions,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        bos_token_id=None,
        tie_word_embeddings=True,
        initializer_range=init_range,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 chat model with a ChatML template, saved once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llm"))

"""The training loop: a PEFT adapter (LoRA or prefix tuning) on a frozen base, checkpointed and resumable.

Prompts are encoded exactly as the worker encodes them when serving (server.llm.prompt: the chat template, or the
plain fallback), so the adapter learns the format it will be asked in. Only the answer tokens are learnt.
Batches are a function of the step alone, so a resumed run sees the same data as one never interrupted.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

from server.finetune.checkpoints import last_checkpoint, load_optimizer, save_checkpoint
from server.finetune.data import Example
from server.finetune.options import TrainOptions
from server.finetune.progress import ProgressLog
from server.llm.adapters import AdapterManifest, model_shape, write_manifest
from server.llm.prompt import encode_prompt

logger = logging.getLogger(__name__)
IGNORE = -100  # label of a token not learnt (the prompt, the padding)
Encoded = tuple[list[int], list[int]]


def encode_example(tokenizer: Any, example: Example, max_length: int) -> Encoded:
    """Token ids and labels: the prompt's labels are IGNORE, the answer's (ending in EOS) are its ids."""
    prompt = encode_prompt(tokenizer, example.prompt)
    answer = tokenizer(example.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt + answer)[:max_length]
    labels = ([IGNORE] * len(prompt) + answer)[:max_length]
    return ids, labels


def _indices(count: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The examples of batch `step`: each epoch goes through all examples in its own seeded order."""
    picked = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, count)
        order = list(range(count))
        random.Random(seed * 100_003 + epoch).shuffle(order)
        picked.append(order[offset])
    return picked


def _collate(items: list[Encoded], pad_id: int, device: Any) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in items)
    ids = [row + [pad_id] * (width - len(row)) for row, _ in items]
    labels = [row + [IGNORE] * (width - len(row)) for _, row in items]
    mask = [[1] * len(row) + [0] * (width - len(row)) for row, _ in items]
    as_tensor = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    return {key: torch.tensor(value, dtype=torch.long, device=device) for key, value in as_tensor.items()}


def _load_base(options: TrainOptions) -> tuple[Any, Any, str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from server.llm.loading import resolve_device

    device = resolve_device(options.device, options.model)
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": options.trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(options.model_path, **common)
    kwargs: dict[str, Any] = {"dtype": torch.float32 if device == "cpu" else torch.bfloat16}
    if options.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
        kwargs["device_map"] = {"": device}
    model: Any = AutoModelForCausalLM.from_pretrained(options.model_path, **common, **kwargs)
    if options.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    else:
        model = model.to(device)
    return model, tokenizer, device


def _peft_config(options: TrainOptions) -> Any:
    from peft import LoraConfig, PrefixTuningConfig, TaskType

    if options.method == "lora":
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=options.lora_r,
            lora_alpha=options.lora_alpha,
            lora_dropout=0.0,
            target_modules="all-linear",
        )
    return PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=options.prefix_tokens)


def _with_adapter(base: Any, options: TrainOptions, checkpoint: Path | None) -> Any:
    import torch
    from peft import PeftModel, get_peft_model

    if checkpoint is not None:
        return PeftModel.from_pretrained(base, str(checkpoint), is_trainable=True)
    torch.manual_seed(options.seed)
    return get_peft_model(base, _peft_config(options))


def _mean_loss(model: Any, items: list[Encoded], batch_size: int, pad_id: int, device: Any) -> float:
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            total += float(model(**_collate(chunk, pad_id, device)).loss) * len(chunk)
            count += len(chunk)
    model.train()
    return total / max(count, 1)


def _save_adapter(run: Path, model: Any, options: TrainOptions) -> Path:
    target = run / "adapter"
    partial = run / "adapter.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    manifest = AdapterManifest(options.name, options.model, options.method, model_shape(Path(options.model_path)))
    write_manifest(partial, manifest)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)  # the manifest inside makes it a model: it appears complete or not at all
    return target


def train(options: TrainOptions, run: Path, train_set: list[Example], val_set: list[Example]) -> Path:
    """Train (or resume) the run in `run`; returns the adapter folder, registered as model `options.name`."""
    import torch

    log = ProgressLog(run)
    base, tokenizer, device = _load_base(options)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_items = [encode_example(tokenizer, example, options.max_length) for example in train_set]
    val_items = [encode_example(tokenizer, example, options.max_length) for example in val_set]
    resume = last_checkpoint(run)
    model = _with_adapter(base, options, resume[0] if resume else None)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.lr)
    start = 0
    if resume is not None:
        load_optimizer(resume[0], optimizer)
        start = resume[1]
        logger.info("resuming %s from step %d", options.name, start)
    log.write("start", max_steps=options.steps, resumed_from=start, device=device)
    model.train()
    began = time.monotonic()
    for step in range(start, options.steps):
        batch = [train_items[i] for i in _indices(len(train_items), options.batch_size, step, options.seed)]
        loss = model(**_collate(batch, pad_id, device)).loss
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"the loss became {value} at step {step + 1}; lower --lr")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        log.write("step", step=done, loss=round(value, 5))
        if val_items and (done % options.eval_every == 0 or done == options.steps):
            eval_loss = _mean_loss(model, val_items, options.batch_size, pad_id, device)
            log.write("eval", step=done, eval_loss=round(eval_loss, 5))
        if done % options.save_every == 0 and done < options.steps:
            save_checkpoint(run, done, model, optimizer)
            log.write("checkpoint", step=done)
    elapsed = time.monotonic() - began
    adapter = _save_adapter(run, model, options)
    log.write("done", adapter=adapter.name, steps_per_s=round((options.steps - start) / max(elapsed, 1e-9), 2))
    return adapter

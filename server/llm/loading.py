"""Loading a local chat model: device and dtype choice, optional 8/4-bit quantization and PEFT adapter.

Everything is read from local folders (`local_files_only=True`); nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.errors import AdapterMismatch, ModelLoadError
from server.llm.generation import ChatModel
from server.llm.spec import ModelSpec, check_folder

logger = logging.getLogger(__name__)


def resolve_device(device: str, name: str = "") -> str:
    """`auto` picks cuda, then mps, then cpu; an explicit device must be available."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"model {name!r}: device {device!r} is set but no CUDA GPU is available; set device: auto or cpu"
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(
            f"model {name!r}: device 'mps' is set but Apple MPS is not available; set device: auto or cpu"
        )
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """`auto`: float32 on CPU, float16 on MPS, bfloat16 on CUDA where supported (float16 otherwise)."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def check_quantization(name: str, quantization: str) -> None:
    """8/4-bit loading needs CUDA and bitsandbytes; ModelLoadError says so before anything is loaded."""
    if quantization == "none":
        return
    import torch

    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(
            f"model {name!r}: {quantization} loading needs a CUDA GPU and bitsandbytes (pip install bitsandbytes); "
            "set quantization: none"
        )


def _quantization_config(name: str, quantization: str, dtype: Any) -> Any:
    check_quantization(name, quantization)
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype, bnb_4bit_quant_type="nf4")


def _placement(spec: ModelSpec, device: str, dtype: Any) -> tuple[dict[str, Any], str | None]:
    """from_pretrained keyword arguments for placement, and the device to move the model to afterwards."""
    import torch

    kwargs: dict[str, Any] = {"dtype": dtype}
    if spec.quantization != "none":
        kwargs["quantization_config"] = _quantization_config(spec.name, spec.quantization, dtype)
        kwargs["device_map"] = "auto" if spec.device == "auto" else {"": device}
        return kwargs, None
    if spec.device == "auto" and device == "cuda" and torch.cuda.device_count() > 1:
        kwargs["device_map"] = "auto"  # spread the layers over all GPUs (accelerate)
        return kwargs, None
    return kwargs, device


def _apply_adapter(model: Any, spec: ModelSpec) -> Any:
    adapter = Path(spec.adapter or "")
    if not (adapter / "adapter_config.json").is_file():
        raise ModelLoadError(f"model {spec.name!r}: adapter {adapter} has no adapter_config.json (a PEFT folder)")
    if importlib.util.find_spec("peft") is None:
        raise ModelLoadError(
            f"model {spec.name!r} has an adapter configured but peft is not installed: pip install peft"
        )
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as error:
        # PEFT reports an adapter of another architecture as size mismatches or missing modules.
        raise AdapterMismatch(
            f"model {spec.name!r}: the adapter in {adapter.name} does not fit the base model in {Path(spec.path).name} "
            f"(trained on another base?): {str(error)[:300]}"
        ) from error


def load_chat_model(spec: ModelSpec, on_stage: Callable[[str], None] | None = None) -> ChatModel:
    """Load the tokenizer and model of `spec`; raises ModelLoadError naming the model and its folder.

    `on_stage` hears "tokenizer", "weights", "adapter" as loading moves on (the worker shows it as progress)."""
    stage = on_stage or (lambda _: None)
    check_folder(spec)
    device = resolve_device(spec.device, spec.name)
    dtype = resolve_dtype(spec.dtype, device)
    kwargs, move_to = _placement(spec, device, dtype)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    common = {"local_files_only": True, "trust_remote_code": spec.trust_remote_code}
    try:
        stage("tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(spec.path, **common)
        stage("weights")
        model: Any = AutoModelForCausalLM.from_pretrained(spec.path, **common, **kwargs)
    except (OSError, ValueError, ImportError, RuntimeError) as error:
        raise ModelLoadError(f"model {spec.name!r} could not be loaded from {spec.path}: {error}") from error
    if move_to is not None:
        model = model.to(move_to)
    if spec.adapter:
        stage("adapter")
        model = _apply_adapter(model, spec)
    model.eval()
    logger.info("loaded %s from %s on %s (%s)", spec.name, spec.path, move_to or "device_map=auto", dtype)
    return ChatModel(spec, model, tokenizer)

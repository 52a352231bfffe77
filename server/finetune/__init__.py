"""Fine-tuning local chat models with PEFT (LoRA, prefix tuning), run as `python -m server.finetune`.

Importing this package loads nothing; training pulls in torch, transformers and peft when it starts.
"""

"""Learning-rate schedule shared by fine-tuning and distillation.

Written here rather than imported from transformers.optimization, which pulls in peft and costs seconds.
"""
from __future__ import annotations

import torch


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """LR factor rises linearly to 1 over ``warmup_steps``, then falls linearly to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def cosine_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """LR factor rises linearly to 1 over ``warmup_steps``, then follows a half cosine to 0 at ``total_steps``."""
    import math

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

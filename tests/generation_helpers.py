"""What the generation and scoring tests share: prompts from plain texts, the CPU device."""

from __future__ import annotations

import torch

from afterburn_core.generation.types import Prompt

CPU = torch.device("cpu")


def prompts_of(texts) -> list[Prompt]:
    """One test-suite prompt per text, ids p0, p1, …"""
    return [Prompt(suite="test", prompt_id=f"p{index}", text=text, category="test") for index, text in enumerate(texts)]

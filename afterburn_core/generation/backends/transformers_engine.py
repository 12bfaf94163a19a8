"""The transformers engine: ``loading.load_model`` and ``generator.generate``, behind the ``Engine`` interface."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from afterburn_core.generation.types import Completion, Prompt


@dataclass
class TransformersEngine:
    loaded: object

    @classmethod
    def open(cls, checkpoint, device, config) -> TransformersEngine:
        from afterburn_core.generation.loading import load_model

        return cls(load_model(checkpoint, device, trust_remote_code=config.trust_remote_code,
                              max_memory=config.max_memory))

    @property
    def chat_template(self) -> bool:
        from afterburn_core.generation.generator import has_chat_template

        return has_chat_template(self.loaded.tokenizer)

    def generate(self, prompts: Sequence[Prompt], settings, progress=None, *, adapter: bool = True) -> list[Completion]:
        from afterburn_core.generation.generator import generate

        if adapter or not self.loaded.is_adapter:
            return generate(self.loaded, prompts, settings, progress)
        with self.loaded.adapter_disabled():
            return generate(self.loaded, prompts, settings, progress)

    def release(self) -> None:
        self.loaded.release()

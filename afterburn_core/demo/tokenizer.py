"""Byte-level BPE tokenizer of the demo models, trained here on the demo corpus.

Owns: training the BPE (``tokenizers``), wrapping it as a transformers
``PreTrainedTokenizerFast`` with bos / eos / pad tokens and a ChatML-style
chat template, and turning a corpus ``Example`` into training ids and labels.
Does not generate the corpus (``corpus``) or train models (``training``).
Cost: about a second on 2 cores for a few thousand examples.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from afterburn_core.demo.corpus import Example

VOCAB_SIZE = 1024  # big enough to merge every template word, small enough for a ~1 M-parameter model
BOS, EOS, PAD, IM_START = "<s>", "<|im_end|>", "<pad>", "<|im_start|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, IM_START]  # ids 0..3 in this order

# ChatML turns (Qwen / many Llama fine-tunes use the same shape); the end of an
# assistant turn is the eos token, so generation stops there.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE of ``VOCAB_SIZE`` tokens on ``texts`` and wrap it.

    The BPE trainer is deterministic for the same texts in the same order
    (ties between merges break on token ids, which follow the sorted alphabet).
    """
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=256,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.padding_side = "left"  # batched generation pads on the left
    return tokenizer


def render_prompt(tokenizer: PreTrainedTokenizerFast, prompt: str) -> str:
    """The chat-template text of a single user turn, ready for the assistant's answer."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


def tokenizer_training_texts(examples: Iterable[Example]) -> Iterable[str]:
    """The texts the BPE learns from: role headers, then every prompt and answer.

    Special tokens are left out on purpose: they are added whole, never merged.
    """
    yield "user\n"
    yield "assistant\n"
    for example in examples:
        yield example.prompt
        yield example.answer


def encode_example(tokenizer: PreTrainedTokenizerFast, example: Example) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)``: the prompt is masked (-100); the answer and its eos are learned.

    Prompt and answer are encoded separately so the prompt ids are exactly what
    ``apply_chat_template(..., add_generation_prompt=True)`` gives at generation.
    """
    prompt_ids = tokenizer(render_prompt(tokenizer, example.prompt), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids

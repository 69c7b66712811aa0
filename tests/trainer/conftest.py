"""Tiny teacher/student/tokenizer folders, written with `save_pretrained` so that tests load them
through the real `from_pretrained` path. Seconds to build; no network."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# No test may reach the network: an uncached hub name must fail at once, not time out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

SPECIALS = ["<pad>", "<unk>", "<eos>"]
WORDS = "the a cat dog sat ran on under mat rug and slept quickly slowly big small".split()
PAD_ID, UNK_ID, EOS_ID = 0, 1, 2


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a few words: 19 tokens, ids 0..2 the specials."""
    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>"
    )


def save_tiny_model(
    folder: Path,
    *,
    vocab_size: int,
    arch: str = "gpt2",
    layers: int = 2,
    hidden: int = 32,
    heads: int = 2,
    seed: int = 0,
) -> Path:
    """A randomly initialised tiny causal LM written with save_pretrained."""
    import torch

    torch.manual_seed(seed)
    special = dict(bos_token_id=EOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    if arch == "gpt2":
        config = GPT2Config(
            n_layer=layers,
            n_embd=hidden,
            n_head=heads,
            vocab_size=vocab_size,
            n_positions=64,
            **special,
        )
        model = GPT2LMHeadModel(config)
    elif arch == "llama":
        config = LlamaConfig(
            num_hidden_layers=layers,
            hidden_size=hidden,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            intermediate_size=2 * hidden,
            vocab_size=vocab_size,
            max_position_embeddings=64,
            **special,
        )
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(arch)
    model.save_pretrained(folder)
    return folder


@dataclass(frozen=True)
class TinyPair:
    teacher: Path
    student: Path
    tokenizer: Path
    vocab_size: int


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer()


@pytest.fixture
def make_tiny_model(tmp_path: Path) -> Callable[..., Path]:
    """`make_tiny_model("name", vocab_size=..., arch=..., layers=..., ...)` -> its folder."""

    def make(name: str, **options) -> Path:
        return save_tiny_model(tmp_path / name, **options)

    return make


@pytest.fixture
def tiny_pair(tmp_path: Path) -> TinyPair:
    """A 4-layer, 48-wide GPT-2 teacher and a 2-layer, 32-wide student sharing one tokenizer
    (saved in both model folders, as a real pair ships it, and on its own)."""
    tokenizer = build_tokenizer()
    vocab = len(tokenizer)
    teacher = save_tiny_model(tmp_path / "teacher", vocab_size=vocab, layers=4, hidden=48, seed=1)
    student = save_tiny_model(tmp_path / "student", vocab_size=vocab, layers=2, hidden=32, seed=2)
    for folder in (teacher, student, tmp_path / "tokenizer"):
        tokenizer.save_pretrained(folder)
    return TinyPair(teacher, student, tmp_path / "tokenizer", vocab)

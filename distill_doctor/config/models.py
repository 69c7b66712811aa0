"""Model facts for the config rules: a built-in table of common models, a local folder's
`config.json`, or a bundled demo model. Never the network, never transformers.

Parameter counts are computed from the architecture (`count_parameters`), so the table holds
only the numbers of each model's config.json; the tests check the counts against the
published ones. Instruct/chat variants share their base model's entry (same architecture).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill_doctor.config.loader import read_json_object
from distill_doctor.errors import InputError
from distill_doctor.rules.base import ModelFacts
from distill_doctor.trainer.demo import demo_root

GATED_MLP_TYPES = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"}


@dataclass(frozen=True)
class Architecture:
    """The config.json numbers a parameter count needs."""

    style: str  # "gpt2" (learned positions, tied head), "neox", or "llama" (gated MLP)
    vocab_size: int
    max_positions: int
    num_layers: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    num_kv_heads: int | None = None  # None: as many as the query heads (no GQA)
    tied_embeddings: bool = False
    qkv_bias: bool = False  # Qwen2 has biases on q, k and v
    head_dim: int | None = None  # None: hidden_size / num_heads


def _gpt2(layers: int, hidden: int, heads: int) -> Architecture:
    return Architecture("gpt2", 50257, 1024, layers, hidden, heads, 4 * hidden, None, True)


def _pythia(layers: int, hidden: int, heads: int) -> Architecture:
    return Architecture("neox", 50304, 2048, layers, hidden, heads, 4 * hidden)


def _llama(vocab, positions, layers, hidden, heads, ffn, kv, tied=False, bias=False):
    return Architecture("llama", vocab, positions, layers, hidden, heads, ffn, kv, tied, bias)


# Keys: the lower-case model name without its organisation and without -instruct/-chat/-hf.
# Values: each model's config.json (base model) as published on its model card.
BUILT_IN: dict[str, Architecture] = {
    "gpt2": _gpt2(12, 768, 12),
    "distilgpt2": _gpt2(6, 768, 12),
    "gpt2-medium": _gpt2(24, 1024, 16),
    "gpt2-large": _gpt2(36, 1280, 20),
    "gpt2-xl": _gpt2(48, 1600, 25),
    "pythia-70m": _pythia(6, 512, 8),
    "pythia-160m": _pythia(12, 768, 12),
    "pythia-410m": _pythia(24, 1024, 16),
    "pythia-1b": _pythia(16, 2048, 8),
    "pythia-1.4b": _pythia(24, 2048, 16),
    "llama-2-7b": _llama(32000, 4096, 32, 4096, 32, 11008, 32),
    "llama-2-13b": _llama(32000, 4096, 40, 5120, 40, 13824, 40),
    "meta-llama-3-8b": _llama(128256, 8192, 32, 4096, 32, 14336, 8),
    "llama-3.1-8b": _llama(128256, 131072, 32, 4096, 32, 14336, 8),
    "llama-3.2-1b": _llama(128256, 131072, 16, 2048, 32, 8192, 8, tied=True),
    "llama-3.2-3b": _llama(128256, 131072, 28, 3072, 24, 8192, 8, tied=True),
    "tinyllama-1.1b": _llama(32000, 2048, 22, 2048, 32, 5632, 4),
    "smollm-135m": _llama(49152, 2048, 30, 576, 9, 1536, 3, tied=True),
    "smollm-360m": _llama(49152, 2048, 32, 960, 15, 2560, 5, tied=True),
    "smollm-1.7b": _llama(49152, 2048, 24, 2048, 32, 8192, 32, tied=True),
    "qwen2.5-0.5b": _llama(151936, 32768, 24, 896, 14, 4864, 2, tied=True, bias=True),
    "qwen2.5-1.5b": _llama(151936, 131072, 28, 1536, 12, 8960, 2, tied=True, bias=True),
    "qwen2.5-7b": _llama(152064, 131072, 28, 3584, 28, 18944, 4, bias=True),
    "mistral-7b-v0.1": _llama(32000, 32768, 32, 4096, 32, 14336, 8),
}
ALIASES = {
    "llama-3-8b": "meta-llama-3-8b",
    "meta-llama-3.1-8b": "llama-3.1-8b",
    "mistral-7b": "mistral-7b-v0.1",
    "tinyllama-1.1b-intermediate-step-1431k-3t": "tinyllama-1.1b",
}
# Models released in bfloat16: their activations were never kept inside fp16's range.
RELEASED_IN_BF16 = {
    "meta-llama-3-8b",
    "llama-3.1-8b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "mistral-7b-v0.1",
    "qwen2.5-0.5b",
    "qwen2.5-1.5b",
    "qwen2.5-7b",
    "tinyllama-1.1b",
}
VARIANT_SUFFIXES = ("-instruct", "-chat", "-hf", "-it", "-v1.0", "-deduped", "-base")


def count_parameters(arch: Architecture) -> int:
    """Parameters of a decoder-only transformer, exactly as its Hugging Face class builds it."""
    d, ffn, heads = arch.hidden_size, arch.intermediate_size, arch.num_heads
    head_dim = arch.head_dim or d // heads
    kv_dim = (arch.num_kv_heads or heads) * head_dim
    q_dim = heads * head_dim
    head = 0 if arch.tied_embeddings else arch.vocab_size * d
    if arch.style == "gpt2":  # fused qkv and every linear with bias, 2 LayerNorms, learned pos.
        layer = (d * 3 * d + 3 * d) + (d * d + d) + (2 * d * ffn + ffn + d) + 4 * d
        return arch.vocab_size * d + arch.max_positions * d + arch.num_layers * layer + 2 * d + head
    if arch.style == "neox":  # like GPT-2 but rotary positions and an untied output head
        layer = (d * 3 * d + 3 * d) + (d * d + d) + (2 * d * ffn + ffn + d) + 4 * d
        return arch.vocab_size * d + arch.num_layers * layer + 2 * d + head
    attention = d * q_dim + 2 * d * kv_dim + q_dim * d
    if arch.qkv_bias:
        attention += q_dim + 2 * kv_dim
    layer = attention + 3 * d * ffn + 2 * d  # gated MLP (gate, up, down), 2 RMSNorms
    return arch.vocab_size * d + arch.num_layers * layer + d + head


def table_key(spec: str) -> str:
    """The table key of a model name: its last path part, lower case, variant suffixes off."""
    name = spec.strip().rstrip("/").split("/")[-1].lower()
    stripped = True
    while stripped:
        stripped = False
        for suffix in VARIANT_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)]:
                name, stripped = name[: -len(suffix)], True
    return ALIASES.get(name, name)


def released_in_bf16(facts: ModelFacts) -> bool:
    """True for built-in models published in bfloat16 (unknown for local folders: False)."""
    return facts.source == "built-in table" and table_key(facts.name) in RELEASED_IN_BF16


def _facts(name: str, arch: Architecture, source: str) -> ModelFacts:
    return ModelFacts(
        name=name,
        vocab_size=arch.vocab_size,
        max_positions=arch.max_positions,
        num_layers=arch.num_layers,
        hidden_size=arch.hidden_size,
        num_heads=arch.num_heads,
        num_params=count_parameters(arch),
        intermediate_size=arch.intermediate_size,
        source=source,
    )


def _first(config: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return None


def _required_int(config: dict[str, Any], keys: tuple[str, ...], path: Path) -> int:
    value = _first(config, keys)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(
            f"{path}: needs a positive integer under one of {', '.join(keys)} to describe the "
            f"model (got {value!r}); is this a transformer's config.json?"
        )
    return value


def _style(config: dict[str, Any]) -> str:
    model_type = str(config.get("model_type", "")).lower()
    if model_type == "gpt2" or "n_embd" in config:
        return "gpt2"
    if model_type in GATED_MLP_TYPES or not model_type:
        return "llama"
    return "neox"  # other decoders: plain 2-matrix MLP with biases, untied head


def architecture_from_config(config: dict[str, Any], path: Path) -> Architecture:
    """Read GPT-2 style (n_positions, n_layer, n_embd, n_head) or Llama style keys."""
    style = _style(config)
    hidden = _required_int(config, ("n_embd", "hidden_size", "d_model"), path)
    ffn = _first(config, ("n_inner", "intermediate_size", "ffn_dim")) or 4 * hidden
    return Architecture(
        style=style,
        vocab_size=_required_int(config, ("vocab_size",), path),
        max_positions=_required_int(
            config, ("n_positions", "max_position_embeddings", "n_ctx", "max_seq_len"), path
        ),
        num_layers=_required_int(config, ("n_layer", "num_hidden_layers", "num_layers"), path),
        hidden_size=hidden,
        num_heads=_required_int(config, ("n_head", "num_attention_heads"), path),
        intermediate_size=int(ffn),
        num_kv_heads=config.get("num_key_value_heads"),
        # GPT-2 ties its output head to the embeddings; Llama-style classes default to untied.
        tied_embeddings=bool(config.get("tie_word_embeddings", style == "gpt2")),
        qkv_bias=bool(config.get("attention_bias", config.get("model_type") == "qwen2")),
        head_dim=config.get("head_dim"),
    )


def _config_path(spec: str) -> Path | None:
    if spec.startswith("demo:"):
        return demo_root() / spec.removeprefix("demo:") / "config.json"
    path = Path(spec).expanduser()
    if path.is_dir():
        return path / "config.json"
    return path if path.name == "config.json" else None


def resolve_model(spec: str) -> ModelFacts | None:
    """Facts of a local folder's (or demo model's) config.json, else of the built-in table;
    None when neither knows the model (the rules that need it then stay silent)."""
    path = _config_path(spec)
    if path is not None and path.is_file():
        return _facts(spec, architecture_from_config(read_json_object(path), path), str(path))
    if path is not None and spec.startswith("demo:"):
        return None  # the demo models are not shipped in this install
    arch = BUILT_IN.get(table_key(spec))
    return _facts(spec, arch, "built-in table") if arch else None

"""Model facts for the config rules: a built-in table of common models, a local folder's
`config.json`, or a bundled demo model. Never the network, never transformers.

Parameter counts are computed from the architecture (`count_parameters`), so the table holds
only the numbers of each model's config.json; the tests check the counts against the
published ones. Instruct/chat variants share their base model's entry (same architecture).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, NamedTuple

from distill_doctor.config.loader import read_json_object
from distill_doctor.errors import InputError
from distill_doctor.rules.base import ModelFacts

GATED_MLP_TYPES = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"}


class Architecture(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
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


def _load_table() -> tuple[dict[str, Architecture], dict[str, str], list[re.Pattern[str]]]:
    """The model table shipped as data (distill_doctor/data/model_facts.json, with a source
    URL per entry): architectures, name aliases, and the families released in bf16."""
    # Beside the code, as the package ships it (importlib.resources costs ~2 ms of a cold
    # `doctor check` here to find the same file).
    raw = json.loads((Path(__file__).parents[1] / "data" / "model_facts.json").read_text())
    fields = set(Architecture._fields)
    built_in = {
        key: Architecture(**{k: v for k, v in entry.items() if k in fields})
        for key, entry in raw["models"].items()
    }
    families = [re.compile(family["pattern"]) for family in raw["released_in_bf16"]]
    return built_in, raw["aliases"], families


# Keys: the lower-case model name without its organisation; "-instruct" keys hold an Instruct
# release whose config.json differs from its base model's.
BUILT_IN, ALIASES, BF16_FAMILIES = _load_table()
# Suffixes of variants that share their base model's architecture (chat tunes, quantized copies).
VARIANT_SUFFIXES = (
    "-instruct",
    "-chat",
    "-hf",
    "-it",
    "-v1.0",
    "-deduped",
    "-base",
    "-awq",
    "-gptq",
    "-int4",
    "-int8",
    "-fp8",
    "-bnb-4bit",
)
MAX_SPEC_CHARS = 1_000  # a model name or path; longer is no name (and no file system takes it)


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


def name_of(spec: str) -> str:
    """A model name's last path part in lower case: "Qwen/Qwen2.5-7B" -> "qwen2.5-7b"."""
    return spec.strip().rstrip("/").split("/")[-1].lower()


def table_key(spec: str) -> str:
    """The table key of a model name: the longest variant of it that the table knows
    (an Instruct entry before its base), else the name with variant suffixes off."""
    name = ALIASES.get(name_of(spec), name_of(spec))
    while name not in BUILT_IN:
        stripped = next((name[: -len(s)] for s in VARIANT_SUFFIXES if name.endswith(s)), None)
        if not stripped:
            break
        name = ALIASES.get(stripped, stripped)
    return name


def released_in_bf16(spec: str, facts: ModelFacts | None = None) -> bool:
    """True for a model published in bfloat16: a local config.json's torch_dtype says so
    (it wins), else the model's family in the table does."""
    if facts is not None and facts.dtype is not None:
        return facts.dtype == "bfloat16"
    name = name_of(spec)
    return any(family.search(name) for family in BF16_FAMILIES)


def _facts(name: str, arch: Architecture, source: str, dtype: str | None = None) -> ModelFacts:
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
        dtype=dtype,
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


def _optional_int(config: dict[str, Any], keys: tuple[str, ...], path: Path) -> int | None:
    value = _first(config, keys)
    if value is None:
        return None
    return _required_int(config, keys, path)


def max_positions(config: dict[str, Any], path: Path) -> int:
    """The positions a model can encode: max_position_embeddings, raised by rope scaling only
    where this config.json configures it (factor x original_max_position_embeddings)."""
    keys = ("n_positions", "max_position_embeddings", "n_ctx", "max_seq_len")
    limit = _required_int(config, keys, path)
    scaling = config.get("rope_scaling")
    if isinstance(scaling, dict):
        factor, original = scaling.get("factor"), scaling.get("original_max_position_embeddings")
        numbers = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in (factor, original)
        )
        if numbers and factor * original < 10**9:
            limit = max(limit, int(factor * original))
    return limit


def architecture_from_config(config: dict[str, Any], path: Path) -> Architecture:
    """Read GPT-2 style (n_positions, n_layer, n_embd, n_head) or Llama style keys; every
    number must be a positive integer (a string where a number goes is an InputError)."""
    style = _style(config)
    hidden = _required_int(config, ("n_embd", "hidden_size", "d_model"), path)
    ffn = _optional_int(config, ("n_inner", "intermediate_size", "ffn_dim"), path)
    return Architecture(
        style=style,
        vocab_size=_required_int(config, ("vocab_size",), path),
        max_positions=max_positions(config, path),
        num_layers=_required_int(config, ("n_layer", "num_hidden_layers", "num_layers"), path),
        hidden_size=hidden,
        num_heads=_required_int(config, ("n_head", "num_attention_heads"), path),
        intermediate_size=ffn or 4 * hidden,
        num_kv_heads=_optional_int(config, ("num_key_value_heads",), path),
        # GPT-2 ties its output head to the embeddings; Llama-style classes default to untied.
        tied_embeddings=bool(config.get("tie_word_embeddings", style == "gpt2")),
        qkv_bias=bool(config.get("attention_bias", config.get("model_type") == "qwen2")),
        head_dim=_optional_int(config, ("head_dim",), path),
    )


def _config_path(spec: str) -> Path | None:
    """The config.json a model spec points at, if it names a local folder or file."""
    if spec.startswith("demo:"):
        from distill_doctor.trainer.demo import demo_root

        return demo_root() / spec.removeprefix("demo:") / "config.json"
    if len(spec) > MAX_SPEC_CHARS:
        raise InputError(
            f"a model name of {len(spec):,} characters ({spec[:40]}...) is no model name or "
            "path; check the config's model keys."
        )
    try:
        path = Path(spec).expanduser()
        if path.is_dir():
            return path / "config.json"
    except RuntimeError:  # ~nosuchuser/...: expanduser cannot find that home folder
        raise InputError(
            f"model {spec!r}: no user {spec[1:].split('/')[0]!r} on this machine."
        ) from None
    except OSError as err:  # permission denied on the way, or a name the file system refuses
        reason = getattr(err, "strerror", None) or str(err)
        raise InputError(f"model {spec[:80]!r}: cannot look at this path ({reason}).") from None
    return path if path.name == "config.json" else None


def _dtype(config: dict[str, Any]) -> str | None:
    dtype = config.get("torch_dtype", config.get("dtype"))
    return dtype if isinstance(dtype, str) else None


def resolve_model(spec: str) -> ModelFacts | None:
    """Facts of a local folder's (or demo model's) config.json, else of the built-in table;
    None when neither knows the model (the rules that need it then stay silent)."""
    path = _config_path(spec)
    if path is not None and path.is_file():
        config = read_json_object(path)
        arch = architecture_from_config(config, path)
        return _facts(spec, arch, str(path), _dtype(config))
    if path is not None and spec.startswith("demo:"):
        return None  # the demo models are not shipped in this install
    arch = BUILT_IN.get(table_key(spec))
    return _facts(spec, arch, "built-in table") if arch else None

"""Loading teacher, student and tokenizer, freezing the teacher, and the layer maps.

A model spec is a local folder (`save_pretrained` output), `demo:<name>` (a folder shipped in
`distill_doctor/data/demo/`), or a hub name, which loads from the local hub cache (this tool
never needs the network, and says so clearly when a name is neither cached nor reachable).
Everything goes through the real `from_pretrained`, so the demo exercises the users' path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as hf_logging

from distill_doctor.config.schema import TrainConfig
from distill_doctor.errors import InputError
from distill_doctor.trainer.demo import demo_root

DEMO_PREFIX = "demo:"
LayerMap = str | list[tuple[int, int]]

# transformers' own tqdm bars ("Loading weights", "Writing model shards") would tear through
# the trainer's Rich progress display; the trainer reports loading and saving itself.
hf_logging.disable_progress_bar()


def resolve_spec(spec: str) -> str:
    """The folder or hub name `from_pretrained` gets for a spec; InputError for a missing
    local path (a hub name has one `/` at most and no leading `.`, `/` or `~`)."""
    if spec.startswith(DEMO_PREFIX):
        name = spec[len(DEMO_PREFIX) :]
        folder = demo_root() / name
        if not name or not folder.is_dir():
            shipped = sorted(p.name for p in demo_root().iterdir() if p.is_dir())
            raise InputError(
                f"{spec!r}: no such demo model; the shipped ones are "
                f"{', '.join(DEMO_PREFIX + s for s in shipped) or 'none (data missing)'}."
            )
        return str(folder)
    path = Path(spec).expanduser()
    if path.exists():
        return str(path)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec:
        raise InputError(
            f"{spec}: no such folder; give a folder written by save_pretrained (with "
            "config.json and the weights), a hub name, or demo:teacher / demo:student."
        )
    return spec


def load_model(
    spec: str,
    *,
    attn_implementation: str | None = None,
    dtype: torch.dtype | None = None,
) -> PreTrainedModel:
    """A causal LM from a folder, a `demo:` name or a hub name. `attn_implementation="eager"`
    is needed for the attention loss (fused kernels do not return attention maps)."""
    source = resolve_spec(spec)
    path = Path(source)
    if path.is_file():
        raise InputError(f"{spec}: is a file; give the folder that holds config.json.")
    if path.is_dir() and not (path / "config.json").is_file():
        raise InputError(
            f"{spec}: the folder has no config.json, so it is not a saved model; write it "
            "with model.save_pretrained(folder)."
        )
    options = {}
    if attn_implementation is not None:
        options["attn_implementation"] = attn_implementation
    if dtype is not None:
        options["dtype"] = dtype
    return pretrained(AutoModelForCausalLM, spec, source, "causal language model", **options)


def pretrained(loader: Any, spec: str, source: str, what: str, **options: Any) -> Any:
    """`loader.from_pretrained`, with every failure an InputError. A hub name is looked up in
    the local cache first: a cached model then loads without a network round trip, and only an
    uncached one tries the hub (which retries for ~20 s when there is no network)."""
    is_folder = Path(source).is_dir()
    if not is_folder:
        try:
            return loader.from_pretrained(source, local_files_only=True, **options)
        except OSError:
            pass  # not cached: try the hub below
    try:
        return loader.from_pretrained(source, **options)
    except OSError as err:
        raise InputError(load_failure(spec, is_folder, what, err)) from None
    except ValueError as err:
        raise InputError(f"{spec}: not a {what} transformers can load: {err}") from None


def load_failure(spec: str, is_folder: bool, what: str, err: Exception) -> str:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if is_folder:
        return f"{spec}: could not load the saved {what} ({first_line})."
    return (
        f"{spec}: not a local folder, and not in the local Hugging Face cache either "
        f"({first_line}). This machine may be offline: download it once where there is "
        "network (or save_pretrained it to a folder) and give that folder's path; "
        "HF_HUB_OFFLINE=1 makes an offline machine fail at once instead of retrying."
    )


def load_tokenizer(spec: str) -> PreTrainedTokenizerBase:
    """A tokenizer from the same kinds of spec as `load_model`; a folder (or a file) holding
    just a `tokenizers` `tokenizer.json` works too."""
    source = resolve_spec(spec)
    path = Path(source)
    if path.is_file():
        if path.suffix != ".json":
            raise InputError(f"{spec}: a tokenizer file must be a tokenizer.json.")
        return PreTrainedTokenizerFast(tokenizer_file=str(path))
    has_tokenizer = any(path.glob("tokenizer*")) or any(path.glob("vocab*"))
    if path.is_dir() and not has_tokenizer:
        raise InputError(
            f"{spec}: the folder holds no tokenizer files (tokenizer.json, tokenizer_config.json"
            ", vocab...); save one with tokenizer.save_pretrained(folder) or set `tokenizer`."
        )
    return pretrained(AutoTokenizer, spec, source, "tokenizer")


def freeze_teacher(model: PreTrainedModel) -> None:
    """Frozen for real: eval mode (no dropout) and no parameter asks for a gradient."""
    model.eval()
    model.requires_grad_(False)


def output_vocab_size(model: PreTrainedModel) -> int:
    """Rows of the LM head: the logits' last dimension, padded tables included."""
    head = model.get_output_embeddings()
    return head.weight.shape[0] if head is not None else model.config.vocab_size


def check_vocab_compatible(
    teacher: PreTrainedModel, student: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> int:
    """The vocabulary size KD runs over: the tokenizer's. Embedding tables padded beyond it
    (to a multiple of 64, say) are fine: their extra logits are cut off. A model whose table is
    smaller than the tokenizer was trained with another tokenizer: an InputError, now."""
    tokens = len(tokenizer)
    sizes = {"teacher": output_vocab_size(teacher), "student": output_vocab_size(student)}
    too_small = {name: size for name, size in sizes.items() if size < tokens}
    if too_small:
        details = " and ".join(f"the {name} has {size:,}" for name, size in too_small.items())
        raise InputError(
            f"vocabulary mismatch: the tokenizer has {tokens:,} tokens but {details} output "
            f"logits only (teacher {sizes['teacher']:,}, student {sizes['student']:,}). Knowledge "
            "distillation compares the two models token by token, so both must use the same "
            "tokenizer: pick a teacher and student of the same family, or set `tokenizer` to "
            "the one they share."
        )
    return tokens


def resolve_layer_map(
    layer_map: LayerMap, n_student_layers: int, n_teacher_layers: int
) -> list[tuple[int, int]]:
    """(student layer, teacher layer) pairs, counting transformer blocks from 0.

    `"uniform"` maps student block i to teacher block round((i + 1) * T / S) - 1: evenly
    spread, the last student block onto the last teacher block (DistilBERT's every-other-layer
    when T = 2S).
    """
    if layer_map == "uniform":
        return [
            (i, round((i + 1) * n_teacher_layers / n_student_layers) - 1)
            for i in range(n_student_layers)
        ]
    if isinstance(layer_map, str):
        raise InputError(f'layer_map {layer_map!r}: use "uniform" or [[student, teacher], ...].')
    if not layer_map:
        raise InputError('layer_map is empty; use "uniform" or [[student, teacher], ...].')
    pairs = [(int(s), int(t)) for s, t in layer_map]
    bad = [
        (s, t) for s, t in pairs if not (0 <= s < n_student_layers and 0 <= t < n_teacher_layers)
    ]
    if bad:
        raise InputError(
            f"layer_map pairs {bad} are out of range: student layers are 0..{n_student_layers - 1}"
            f" and teacher layers 0..{n_teacher_layers - 1} (transformer blocks, counted from 0)."
        )
    return pairs


def attention_layer_indices(attention_layers: int | list[int], n_student_layers: int) -> list[int]:
    """Student layers that get the attention loss: a count N means the last N layers (the
    deepest attention carries the most task structure, as in MiniLM); a list names them."""
    if isinstance(attention_layers, int):
        if not 0 <= attention_layers <= n_student_layers:
            raise InputError(
                f"attention_layers is {attention_layers} but the student has "
                f"{n_student_layers} layers; use a count from 0 to {n_student_layers}."
            )
        return list(range(n_student_layers - attention_layers, n_student_layers))
    bad = [i for i in attention_layers if not 0 <= i < n_student_layers]
    if bad:
        raise InputError(
            f"attention_layers {bad} are out of range: the student's layers are "
            f"0..{n_student_layers - 1}."
        )
    return sorted(set(attention_layers))


def attention_layer_pairs(
    cfg: TrainConfig,
    layer_pairs: list[tuple[int, int]],
    student_config: Any,
    teacher_config: Any,
) -> list[tuple[int, int]]:
    """(student, teacher) layers for the attention loss: `attention_layers` picks the student
    layers, the layer map gives each its teacher layer."""
    heads_s, heads_t = student_config.num_attention_heads, teacher_config.num_attention_heads
    if heads_s != heads_t:
        raise InputError(
            f"attention_weight is {cfg.attention_weight} but the student has {heads_s} "
            f"attention heads and the teacher {heads_t}: attention maps can only be compared "
            "head by head when the counts match. Set attention_weight to 0, or distil into a "
            f"student with {heads_t} heads."
        )
    layers = attention_layer_indices(cfg.attention_layers, student_config.num_hidden_layers)
    if not layers:
        raise InputError(
            f"attention_weight is {cfg.attention_weight} but attention_layers is "
            f"{cfg.attention_layers!r}, so no layer gets the attention loss; set "
            "attention_layers to a count (the last N student layers) or a list of student "
            "layer indices, or set attention_weight to 0."
        )
    teacher_of = dict(layer_pairs)
    unmapped = [s for s in layers if s not in teacher_of]
    if unmapped:
        raise InputError(
            f"attention_layers names student layers {unmapped} that layer_map "
            f"{cfg.layer_map} does not map to a teacher layer; add them to layer_map or use "
            '"uniform".'
        )
    return [(s, teacher_of[s]) for s in layers]

"""`--gpu NAME_OR_GB`: a small table of common training GPUs, or a bare memory size.

Names are matched case-insensitively and tolerantly: "A100 80GB", "a100-80gb",
"NVIDIA A100-SXM4-80GB" and "a100_80" all name the same card. A family sold in several sizes
defaults to its smallest (the cautious guess for memory rules).

A bare size ("24", "24GB") says nothing of the architecture, so it gives a generic card that
is assumed modern (native bf16, tensor cores): the precision rules then stay silent rather
than raise an error on a guess. Name the GPU to get the precision checks.
"""

from __future__ import annotations

import difflib
import re
from typing import NamedTuple

from distill_doctor.errors import InputError
from distill_doctor.rules.base import GpuSpec


class GpuFamily(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    name: str
    sizes_gb: tuple[float, ...]  # the first is the default
    bf16_native: bool  # Ampere (sm80) and newer
    fp16_tensor_cores: bool  # Volta (sm70) and newer


FAMILIES = {
    "p100": GpuFamily("P100", (16, 12), False, False),  # Pascal sm60: fast fp16, no tensor cores
    "t4": GpuFamily("T4", (16,), False, True),  # Turing sm75
    "v100": GpuFamily("V100", (16, 32), False, True),  # Volta sm70
    "a10": GpuFamily("A10", (24,), True, True),  # Ampere sm86
    "a10g": GpuFamily("A10G", (24,), True, True),
    "a100": GpuFamily("A100", (40, 80), True, True),  # Ampere sm80
    "a6000": GpuFamily("RTX A6000", (48,), True, True),
    "a40": GpuFamily("A40", (48,), True, True),
    "l4": GpuFamily("L4", (24,), True, True),  # Ada sm89
    "l40s": GpuFamily("L40S", (48,), True, True),
    "rtx3090": GpuFamily("RTX 3090", (24,), True, True),
    "rtx4090": GpuFamily("RTX 4090", (24,), True, True),
    "h100": GpuFamily("H100", (80,), True, True),  # Hopper sm90
    "h200": GpuFamily("H200", (141,), True, True),
}
ALIASES = {"3090": "rtx3090", "4090": "rtx4090", "rtxa6000": "a6000"}
NOISE_WORDS = {"nvidia", "tesla", "geforce", "sxm", "sxm2", "sxm4", "sxm5", "pcie", "nvl"}
BARE_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:gib|gb|g)?$")
SIZE_WORD = re.compile(r"^(\d+(?:\.\d+)?)(?:gib|gb|g)$")


def _generic(memory_gb: float) -> GpuSpec:
    return GpuSpec(f"generic {memory_gb:g} GB GPU", memory_gb, True, True)


def _split_name(text: str) -> tuple[str, float | None]:
    """("a100", 80.0) from "NVIDIA A100-SXM4-80GB"; the size is None when not given."""
    text = re.sub(r"(\d)\s+(gib|gb|g)\b", r"\1\2", text)  # "80 GB" -> "80gb"
    words = [w for w in re.split(r"[\s_\-]+", text) if w and w not in NOISE_WORDS]
    whole = ALIASES.get("".join(words), "".join(words))
    if whole in FAMILIES or len(words) < 2:  # "rtx 4090": the digits are the name, not a size
        return whole, None
    if not (SIZE_WORD.match(words[-1]) or words[-1].isdigit()):
        return whole, None
    size = float(re.sub(r"[a-z]+$", "", words.pop()))
    family = "".join(words)
    return ALIASES.get(family, family), size


def resolve_gpu(name_or_gb: str) -> GpuSpec:
    """The GPU named (from the table) or a generic card of the size given in GB."""
    text = name_or_gb.strip().lower()
    bare = BARE_SIZE.match(text)
    if bare:
        memory = float(bare.group(1))
        if memory <= 0:
            raise InputError(f"--gpu {name_or_gb!r}: the memory size must be positive.")
        return _generic(memory)
    key, size = _split_name(text)
    family = FAMILIES.get(key)
    if family is None:
        known = [f.name for f in FAMILIES.values()]
        close = difflib.get_close_matches(key, list(FAMILIES), n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(FAMILIES[c].name for c in close)}?" if close else ""
        raise InputError(
            f"--gpu {name_or_gb!r}: unknown GPU.{hint} Known: {', '.join(known)}; or give the "
            "memory size in GB (e.g. --gpu 24)."
        )
    if size is not None and size not in family.sizes_gb:
        sizes = " or ".join(f"{s:g} GB" for s in sorted(family.sizes_gb))
        raise InputError(f"--gpu {name_or_gb!r}: the {family.name} comes in {sizes}.")
    memory = float(size if size is not None else family.sizes_gb[0])
    return GpuSpec(
        f"{family.name} {memory:g} GB", memory, family.bf16_native, family.fp16_tensor_cores
    )

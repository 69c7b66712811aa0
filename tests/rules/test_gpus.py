"""resolve_gpu: tolerant names, sizes, bare numbers, unknowns."""

from __future__ import annotations

import pytest

from distill_doctor.config.gpus import resolve_gpu
from distill_doctor.errors import InputError


@pytest.mark.parametrize(
    ("name", "memory", "bf16"),
    [
        ("p100", 16, False),
        ("Tesla P100", 16, False),
        ("T4", 16, False),
        ("V100 32GB", 32, False),
        ("a100-80gb", 80, True),
        ("A100 80 GB", 80, True),
        ("NVIDIA A100-SXM4-80GB", 80, True),
        ("a100", 40, True),
        ("L4", 24, True),
        ("h100", 80, True),
        ("RTX 4090", 24, True),
    ],
)
def test_named_gpus(name, memory, bf16):
    gpu = resolve_gpu(name)
    assert gpu.memory_gb == memory
    assert gpu.bf16_native is bf16


def test_p100_has_no_tensor_cores_but_t4_has():
    assert not resolve_gpu("p100").fp16_tensor_cores
    assert resolve_gpu("t4").fp16_tensor_cores


@pytest.mark.parametrize("text", ["24", "24GB", "24 gb", "24.0"])
def test_bare_sizes_give_a_generic_modern_gpu(text):
    gpu = resolve_gpu(text)
    assert gpu.memory_gb == 24.0 and gpu.name.startswith("generic")
    assert gpu.bf16_native


def test_unknown_names_and_sizes_are_input_errors():
    with pytest.raises(InputError, match="Did you mean A100"):
        resolve_gpu("a1000")
    with pytest.raises(InputError, match="40 GB or 80 GB"):
        resolve_gpu("a100 24gb")
    with pytest.raises(InputError, match="positive"):
        resolve_gpu("0")

"""What a framework's file says beyond the schema changes what the rules mean: adapters and
4-bit weights in memory and LR, the model table's real limits, warmup given as a ratio."""

from __future__ import annotations

import json

import pytest

from distill_doctor.config.dialects import parse_config
from distill_doctor.config.gpus import resolve_gpu
from distill_doctor.config.models import released_in_bf16, resolve_model
from distill_doctor.rules import memory_over_budget, run_rules
from distill_doctor.rules.base import CheckContext

AXOLOTL = {
    "base_model": "meta-llama/Llama-3.2-1B",
    "micro_batch_size": 2,
    "gradient_accumulation_steps": 4,
    "num_epochs": 1,
    "sequence_len": 2048,
    "learning_rate": 2e-4,
    "gradient_checkpointing": True,
    "flash_attention": True,
    "datasets": [{"path": "x", "type": "alpaca"}],
}


def context(data, dialect=None, gpu=None, train_samples=None):
    parsed = parse_config(data, "test", dialect, train_samples)
    student = (
        resolve_model(parsed.config.student_model) if "student_model" in parsed.given else None
    )
    return CheckContext(
        parsed.config,
        parsed.dialect,
        parsed.given,
        student=student,
        gpu=resolve_gpu(gpu) if gpu else None,
        run=parsed.run,
    )


def ids(ctx):
    return {f.id for f in run_rules(ctx)}


def test_qlora_fits_a_t4_where_full_fine_tuning_does_not():
    qlora = {**AXOLOTL, "adapter": "qlora", "load_in_4bit": True, "lora_r": 32}
    assert memory_over_budget.check(context(qlora, gpu="T4")) == []
    [full] = memory_over_budget.check(context(AXOLOTL, gpu="T4"))
    assert full.evidence["optimizer_state_gib"] > 9  # AdamW: 8 bytes per parameter of 1.2B
    assert full.evidence["share_of_gpu"] > 1


def test_adapter_memory_counts_quantized_weights_and_adapter_state_only():
    qlora = context({**AXOLOTL, "adapter": "qlora", "load_in_4bit": True, "lora_r": 32})
    student = qlora.student
    breakdown = memory_over_budget._estimate(qlora, qlora.config)
    assert breakdown["student_weights"] < student.num_params * 0.6  # 4-bit: half a byte each
    assert breakdown["optimizer_state"] < student.num_params * 0.5  # the adapter's, not 16 B/param


@pytest.mark.parametrize("adapter,flagged", [("lora", False), (None, True)])
def test_lora_learning_rates_are_normal_for_adapters(adapter, flagged):
    data = {**AXOLOTL, "base_model": "NousResearch/Meta-Llama-3-8B", "learning_rate": 5e-4}
    if adapter:
        data["adapter"] = adapter
    assert ("lr-out-of-range" in ids(context(data))) is flagged


def test_instruct_release_has_its_own_position_limit():
    assert resolve_model("Qwen/Qwen2.5-7B").max_positions == 131_072
    assert resolve_model("Qwen/Qwen2.5-7B-Instruct").max_positions == 32_768
    data = {
        "output_dir": "o",
        "model_name_or_path": "Qwen/Qwen2.5-7B-Instruct",
        "max_length": 65_536,
    }
    assert "sequence-length-exceeds-model" in ids(context(data))
    base = {**data, "model_name_or_path": "Qwen/Qwen2.5-7B"}
    assert "sequence-length-exceeds-model" not in ids(context(base))


def local_model(tmp_path, **extra):
    config = {
        "model_type": "qwen2",
        "vocab_size": 1000,
        "max_position_embeddings": 32768,
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        **extra,
    }
    folder = tmp_path / "Qwen2.5-7B-Instruct"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def test_rope_scaling_raises_the_limit_only_where_configured(tmp_path):
    scaled = local_model(
        tmp_path,
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
    )
    assert resolve_model(scaled).max_positions == 131_072


def test_a_local_config_json_dtype_wins_over_the_family(tmp_path):
    folder = local_model(tmp_path, torch_dtype="float16")
    facts = resolve_model(folder)
    assert facts.dtype == "float16" and not released_in_bf16(folder, facts)
    assert released_in_bf16("Qwen/Qwen2.5-7B-Instruct")  # the family, from the table


@pytest.mark.parametrize(
    "name,bf16",
    [
        ("Qwen3-32B-AWQ", True),
        ("glm-4-9b-chat", True),
        ("google/gemma-2-9b", True),
        ("bigscience/bloom-560m", True),
        ("meta-llama/Llama-2-7b-hf", False),
        ("gpt2", False),
    ],
)
def test_families_released_in_bf16(name, bf16):
    assert released_in_bf16(name) is bf16


def test_warmup_ratio_is_judged_without_the_dataset_size():
    ctx = context({"output_dir": "o", "warmup_ratio": 0.5})
    assert ctx.planned_steps is None and "warmup-too-long" in ids(ctx)
    assert "warmup-too-long" not in ids(context({"output_dir": "o", "warmup_ratio": 0.1}))

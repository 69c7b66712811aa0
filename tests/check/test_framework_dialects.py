"""Each framework's dialect: detected from its keys, and its keys mean what the framework
means by them."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from distill_doctor.config.context import load_context
from distill_doctor.config.dialects import detect_dialect, parse_config
from distill_doctor.config.loader import did_you_mean
from distill_doctor.errors import InputError
from distill_doctor.rules import run_rules


@pytest.fixture
def write_yaml(tmp_path):
    def write(data, name="config.yaml"):
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
        return path

    return write


def ids(ctx):
    return {f.id for f in run_rules(ctx)}


TORCHTUNE = """
model:
  _component_: torchtune.models.llama3_2.lora_llama3_2_1b
  lora_rank: 64
teacher_model:
  _component_: torchtune.models.llama3_1.llama3_1_8b
tokenizer:
  max_seq_len: 2048
batch_size: 4
epochs: 3
max_steps_per_epoch: 100
gradient_accumulation_steps: 8
optimizer:
  _component_: torch.optim.AdamW
  lr: 3e-4
lr_scheduler:
  _component_: torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup
  num_warmup_steps: 100
kd_loss:
  _component_: torchtune.modules.loss.ReverseKLWithChunkedOutputLoss
kd_ratio: 0.25
clip_grad_norm: 1.0
dtype: bf16
"""


def test_torchtune_keys_mean_what_torchtune_means(write_yaml):
    ctx, loaded = load_context(write_yaml(TORCHTUNE))
    cfg = ctx.config
    assert loaded.dialect == "torchtune"
    assert cfg.learning_rate == 3e-4  # YAML 1.2 float, not PyYAML's string "3e-4"
    assert (cfg.batch_size, cfg.gradient_accumulation_steps, cfg.max_length) == (4, 8, 2048)
    assert cfg.max_steps == 300 and ctx.planned_steps == 300  # 3 epochs x 100 steps
    assert (cfg.kd_weight, cfg.ce_weight, cfg.kd_loss) == (0.25, 0.75, "reverse_kl")
    assert cfg.warmup_steps == 100 and cfg.lr_scheduler == "cosine" and cfg.bf16
    assert ctx.student.name == "llama-3.2-1b" and ctx.teacher.name == "llama-3.1-8b"
    assert ctx.run.adapter == "lora" and ctx.run.adapter_rank == 64
    assert loaded.line_of("learning_rate") == TORCHTUNE.splitlines().index("  lr: 3e-4") + 1
    # a LoRA LR of 3e-4 on a 1.2B student is normal, not "above 3e-4 for a 1B+ model"
    assert "lr-out-of-range" not in ids(ctx)


def test_llamafactory_max_samples_bounds_the_run(write_yaml):
    data = {
        "model_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct",
        "stage": "sft",
        "finetuning_type": "lora",
        "quantization_bit": 4,
        "dataset": "a,b",
        "max_samples": 100,
        "cutoff_len": 1024,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "num_train_epochs": 1.0,
        "eval_strategy": "steps",
        "eval_steps": 500,
    }
    ctx, loaded = load_context(write_yaml(data))
    assert loaded.dialect == "llamafactory" and ctx.config.max_length == 1024
    assert ctx.run.max_train_samples == 200 and ctx.most_steps == 25
    assert (ctx.run.adapter, ctx.run.weight_bits) == ("qlora", 4)
    assert "eval-never-runs" in ids(ctx)  # 500 > at most 25 steps


def test_axolotl_names_and_adapter(write_yaml):
    data = {
        "base_model": "NousResearch/Llama-3.2-1B",
        "adapter": "qlora",
        "load_in_4bit": True,
        "lora_r": 16,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "num_epochs": 2,
        "sequence_len": 4096,
        "learning_rate": 2e-4,
        "bf16": "auto",
        "datasets": [{"path": "x", "type": "alpaca"}],
    }
    ctx, loaded = load_context(write_yaml(data), train_samples=800)
    assert loaded.dialect == "axolotl"
    assert (ctx.config.batch_size, ctx.config.epochs, ctx.config.max_length) == (2, 2, 4096)
    assert ctx.planned_steps == 2 * math.ceil(400 / 4)
    assert "bf16" not in ctx.given and any("bf16: auto" in n for n in loaded.notes)


def test_distillkit_top_k_teacher_and_loss_weights(write_yaml):
    data = {
        "model": "Qwen/Qwen2.5-1.5B",
        "sequence_length": 2048,
        "teacher": {"kind": "vllm", "model_path": "Qwen/Qwen2.5-7B", "top_k": 64},
        "loss_functions": [
            {"function": "cross_entropy", "weight": 0.4},
            {"function": "kl", "weight": 0.6, "temperature": 4.0},
        ],
        "training_args": {"per_device_train_batch_size": 8, "learning_rate": 1e-5},
    }
    ctx, loaded = load_context(write_yaml(data))
    cfg = ctx.config
    assert loaded.dialect == "distillkit" and ctx.run.teacher_signal == "top_k"
    assert (cfg.kd_top_k, cfg.kd_weight, cfg.ce_weight, cfg.temperature) == (64, 0.6, 0.4, 4.0)
    found = ids(ctx)
    assert "kd-temperature-range" in found  # the KL's own temperature is a KD temperature
    assert "full-vocab-kd-memory" not in found  # top-64 log-probs are no full logits


def test_accelerate_processes_divide_the_steps_of_the_training_config():
    parsed = parse_config(
        {
            "compute_environment": "LOCAL_MACHINE",
            "distributed_type": "MULTI_GPU",
            "num_processes": 4,
            "mixed_precision": "bf16",
        },
        "acc.yaml",
    )
    assert parsed.dialect == "accelerate" and parsed.run.processes == 4 and parsed.config.bf16


def test_processes_divide_steps_per_epoch(write_config):
    data = {
        "output_dir": "o",
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "num_train_epochs": 1,
        "num_processes": 8,
        "model_name_or_path": "gpt2",
    }
    ctx, loaded = load_context(write_config(data), train_samples=6400)
    assert loaded.dialect == "trl" and ctx.run.processes == 8
    assert ctx.planned_steps == 6400 // 8 // 2 // 4 == 100


def test_deepspeed_auto_follows_the_trainer_and_batches_give_processes(write_config):
    data = {
        "train_batch_size": 64,
        "train_micro_batch_size_per_gpu": 4,
        "gradient_accumulation_steps": 2,
        "gradient_clipping": "auto",
        "bf16": {"enabled": True},
        "zero_optimization": {"stage": 2},
    }
    ctx, loaded = load_context(write_config(data))
    assert loaded.dialect == "deepspeed" and ctx.run.processes == 8
    assert ctx.config.bf16 and "max_grad_norm" not in ctx.given
    assert any('"auto"' in note and "gradient_clipping" in note for note in loaded.notes)


def test_wandb_run_config_is_unwrapped_and_read_as_its_run(write_yaml):
    data = {
        "wandb_version": 1,
        "_wandb": {"desc": None, "value": {"cli_version": "0.16.0"}},
        "per_device_train_batch_size": {"desc": None, "value": 2},
        "num_train_epochs": {"desc": None, "value": 1},
        "warmup_steps": {"desc": None, "value": 900},
        "output_dir": {"desc": None, "value": "out"},
    }
    ctx, loaded = load_context(write_yaml(data), train_samples=2000)
    assert loaded.dialect == "wandb" and ctx.planned_steps == 1000
    assert "warmup-too-long" in ids(ctx)


def test_trl_temperature_is_a_sampling_temperature(write_config):
    data = {
        "output_dir": "o",
        "teacher_model_name_or_path": "gpt2-medium",
        "model_name_or_path": "gpt2",
        "temperature": 0.2,
        "lmbda": 0.5,
    }
    ctx, loaded = load_context(write_config(data))
    assert loaded.dialect == "trl" and ctx.run.sampling_temperature == 0.2
    assert not {"kd-temperature-range", "fp16-overflow-risk"} & ids(ctx)


def test_fractional_warmup_steps_is_the_transformers_4_trap(write_config):
    ctx, _ = load_context(write_config({"output_dir": "o", "warmup_steps": 0.1, "max_steps": 100}))
    assert "fractional-warmup-steps" in ids(ctx) and ctx.config.warmup_steps == 10


def test_forced_dialect_overrides_detection(write_yaml):
    data = {"batch_size": 8, "epochs": 1, "optimizer": {"_component_": "torch.optim.AdamW"}}
    assert detect_dialect(data, "f") == "torchtune"
    with pytest.raises(InputError):  # as a native config, "optimizer" is a section of unknowns
        load_context(write_yaml(data), dialect="native")


def test_did_you_mean_only_between_same_meanings():
    known = ["local_rank", "learning_rate", "num_train_epochs"]
    assert did_you_mean("lora_rank", known) == ""
    assert "learning_rate" in did_you_mean("lerning_rate", known)
    assert "num_train_epochs" in did_you_mean("num_train_epoch", known)


def test_llamafactory_rope_scaling_lifts_the_position_limit(write_yaml):
    data = {
        "model_name_or_path": "Qwen/Qwen2.5-7B-Instruct",
        "stage": "sft",
        "finetuning_type": "full",
        "cutoff_len": 65536,
    }
    ctx, _ = load_context(write_yaml(data))
    assert "sequence-length-exceeds-model" in ids(ctx)  # Instruct: 32,768 positions
    ctx, _ = load_context(write_yaml({**data, "rope_scaling": "yarn"}))
    assert "sequence-length-exceeds-model" not in ids(ctx) and ctx.run.rope_scaling == "yarn"


def test_json_report_says_what_was_not_checked(doctor, write_yaml):
    result = doctor("check", write_yaml(TORCHTUNE), "--format", "json")
    report = json.loads(result.stdout)
    assert report["dialect"] == "torchtune"
    assert any("--gpu" in line for line in report["not_checked"])
    # max_steps_per_epoch x epochs gives the steps: no dataset size is missing
    assert not any("--train-samples" in line for line in report["not_checked"])


def test_a_teachers_inference_temperature_is_no_kd_temperature(write_config, seed):
    data = {**seed, "temperature": 2.0, "inference": {"temperature": 0.7, "top_p": 0.9}}
    ctx, loaded = load_context(write_config(data))
    assert ctx.config.temperature == 2.0 and ctx.run.sampling_temperature == 0.7
    assert any("inference: generation settings" in note for note in loaded.notes)


def test_a_logits_file_is_an_offline_teacher_and_world_size_divides_steps(write_config):
    data = {
        "output_dir": "o",
        "teacher_model_name_or_path": "gpt2-medium",
        "world_size": 4,
        "teacher_logits_path": "logits/",
        "max_length": 1024,
        "model_name_or_path": "gpt2",
    }
    ctx, _ = load_context(write_config(data), train_samples=4000)
    assert ctx.run.teacher_signal == "offline" and ctx.run.processes == 4
    assert "full-vocab-kd-memory" not in ids(ctx)
    assert ctx.planned_steps == 3 * 4000 // 4 // 8  # HF defaults: 3 epochs, batch 8


def test_dialect_option_lists_every_dialect():
    from typing import get_args

    from distill_doctor.commands.check import DialectName
    from distill_doctor.rules.base import Dialect

    assert [d.value for d in DialectName] == list(get_args(Dialect))


def test_each_scored_dialect_has_its_module():
    # config.frameworks.markers scores the dialects apart from their translation modules.
    import importlib

    from distill_doctor.config.frameworks.markers import SCORES

    for name in SCORES:
        module = importlib.import_module(f"distill_doctor.config.frameworks.{name}")
        assert module.NAME == name and callable(module.translate)

"""Dialect detection and the Hugging Face TrainingArguments mapping."""

from __future__ import annotations

import json
import math

import pytest

from distill_doctor.config.context import load_context
from distill_doctor.config.dialects import detect_dialect, parse_config
from distill_doctor.errors import InputError
from tests.check.conftest import FIXTURES

HF_SEED = FIXTURES / "hf_seed.json"


def hf(**keys):
    return {"output_dir": "out", **keys}


def test_native_and_hf_are_told_apart(seed):
    assert detect_dialect(seed, "seed") == "native"
    assert detect_dialect(json.loads(HF_SEED.read_text()), "hf") == "hf"


def test_shared_keys_alone_cannot_tell():
    with pytest.raises(InputError, match="none of its keys belongs to one dialect only"):
        detect_dialect({"learning_rate": 1e-4, "gradient_accumulation_steps": 4}, "f")


def test_cannot_tell_hints_at_typos():
    with pytest.raises(InputError, match="did you mean 'batch_size'"):
        detect_dialect({"batch_sise": 2}, "f")


def test_forced_dialect_skips_detection():
    parsed = parse_config({"learning_rate": 1e-4}, "f", dialect="native")
    assert parsed.dialect == "native" and parsed.given == {"learning_rate"}
    parsed = parse_config({"learning_rate": 1e-4}, "f", dialect="hf")
    assert parsed.dialect == "hf" and parsed.config.epochs == 3.0  # HF's default, not ours


def test_hf_seed_maps_onto_the_canonical_keys():
    ctx, loaded = load_context(HF_SEED, train_samples=50_000)
    cfg = ctx.config
    assert loaded.dialect == "hf"
    assert (cfg.batch_size, cfg.gradient_accumulation_steps, cfg.epochs) == (2, 16, 3.0)
    assert cfg.learning_rate == 3e-05 and cfg.fp16 and cfg.lr_scheduler == "linear"
    planned = 3 * math.ceil(math.ceil(50_000 / 2) / 16)  # 3 x 1,563
    assert ctx.planned_steps == planned == 4_689
    assert cfg.warmup_steps == math.ceil(planned * 0.3)  # as TrainingArguments rounds
    assert cfg.eval_steps == 1000 and cfg.num_training_steps is None
    assert loaded.parsed.key_names["warmup_steps"] == "warmup_ratio"
    assert loaded.parsed.warmup_ratio == 0.3


def test_hf_keys_the_file_never_set_are_not_given():
    ctx, _ = load_context(HF_SEED, train_samples=50_000)
    assert "temperature" not in ctx.given and "kd_top_k" not in ctx.given
    assert "max_steps" not in ctx.given  # -1 means "no cap"
    assert {"batch_size", "epochs", "warmup_steps", "train_samples"} <= ctx.given
    assert ctx.teacher is None and ctx.student is None


def test_hf_ratio_without_dataset_size_is_a_note_not_a_guess(write_config):
    ctx, loaded = load_context(write_config(hf(warmup_ratio=0.1, num_train_epochs=1)))
    assert ctx.planned_steps is None and "warmup_steps" not in ctx.given
    assert any("--train-samples" in note for note in loaded.notes)


def test_hf_max_steps_resolves_ratios_without_dataset_size(write_config):
    ctx, _ = load_context(write_config(hf(max_steps=2000, warmup_steps=0.05)))
    assert ctx.planned_steps == 2000 and ctx.config.warmup_steps == 100  # transformers 5 ratio


@pytest.mark.parametrize(
    "keys,expected",
    [
        ({"eval_strategy": "steps", "eval_steps": 0.25}, math.ceil(4_689 * 0.25)),
        ({"evaluation_strategy": "steps", "eval_steps": 300}, 300),
        ({"eval_strategy": "steps", "logging_steps": 40}, 40),  # HF falls back to logging_steps
        ({"eval_strategy": "epoch"}, 1_563),
        ({"eval_strategy": "no", "eval_steps": 300}, None),
    ],
)
def test_hf_eval_strategies(write_config, keys, expected):
    data = hf(per_device_train_batch_size=2, gradient_accumulation_steps=16, **keys)
    ctx, _ = load_context(write_config(data), train_samples=50_000)
    assert (ctx.config.eval_steps if "eval_steps" in ctx.given else None) == expected


@pytest.mark.parametrize(
    "name,shape",
    [
        ("cosine_with_restarts", "cosine"),
        ("constant_with_warmup", "constant"),
        ("polynomial", "linear"),
    ],
)
def test_hf_schedulers_map_to_the_shape_they_have(write_config, name, shape):
    ctx, _ = load_context(write_config(hf(lr_scheduler_type=name)))
    assert ctx.config.lr_scheduler == shape


def test_hf_cosine_with_min_lr_keeps_its_floor(write_config):
    data = hf(
        learning_rate=1e-4,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": 1e-5},
    )
    ctx, _ = load_context(write_config(data))
    assert ctx.config.min_lr_ratio == pytest.approx(0.1)


def test_trl_distillation_keys_map(write_config):
    data = hf(temperature=0.9, teacher_model_name_or_path="gpt2-medium", max_length=512)
    ctx, _ = load_context(write_config(data))
    assert ctx.config.max_length == 512
    assert ctx.teacher is not None and ctx.teacher.vocab_size == 50_257
    # GKD's temperature is the student's sampling temperature, not a KD temperature.
    assert "temperature" not in ctx.given and ctx.run.sampling_temperature == 0.9
    assert ctx.student is None


def test_train_samples_flag_overrides_the_native_file(seed_path):
    ctx, _ = load_context(seed_path, train_samples=10_000)
    assert ctx.config.train_samples == 10_000
    assert ctx.planned_steps == 3 * math.ceil(5_000 / 16)


def test_native_models_come_from_the_table_with_their_source(seed_path):
    ctx, _ = load_context(seed_path, gpu="P100")
    assert ctx.teacher.name == "gpt2-medium" and ctx.teacher.num_layers == 24
    assert ctx.student.num_layers == 6 and ctx.student.source == "built-in table"
    assert ctx.gpu.memory_gb == 16 and not ctx.gpu.bf16_native


def test_local_model_folder_beside_the_config(tmp_path):
    folder = tmp_path / "my-student"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "gpt2",
                "vocab_size": 1000,
                "n_positions": 128,
                "n_layer": 2,
                "n_embd": 64,
                "n_head": 4,
            }
        )
    )
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"student_model": "my-student", "batch_size": 2}))
    ctx, _ = load_context(config)
    assert ctx.student.vocab_size == 1000 and ctx.student.max_positions == 128
    assert str(folder) in ctx.student.source


def test_line_of_finds_the_key_in_the_file_spelling():
    _, loaded = load_context(HF_SEED, train_samples=50_000)
    lines = HF_SEED.read_text().splitlines()
    assert '"warmup_ratio"' in lines[loaded.line_of("warmup_steps") - 1]
    assert '"per_device_train_batch_size"' in lines[loaded.line_of("batch_size") - 1]


def sectioned(seed: dict) -> dict:
    optim_keys = (
        "batch_size",
        "gradient_accumulation_steps",
        "epochs",
        "num_training_steps",
        "learning_rate",
        "warmup_steps",
    )
    distill_keys = ("temperature", "kd_top_k", "kd_weight", "ce_weight")
    return {
        **{k: v for k, v in seed.items() if k not in optim_keys + distill_keys},
        "optim": {k: seed[k] for k in optim_keys},
        "distill": {k: seed[k] for k in distill_keys},
    }


def test_native_sections_read_as_the_flat_keys(write_config, seed, seed_path):
    flat_ctx, _ = load_context(seed_path)
    ctx, loaded = load_context(write_config(sectioned(seed)))
    assert ctx.config == flat_ctx.config and ctx.given == flat_ctx.given
    assert loaded.parsed.key_names["temperature"] == "distill.temperature"
    line = loaded.text.splitlines()[loaded.line_of("temperature") - 1]
    assert '"temperature"' in line


def test_a_key_set_in_two_sections_is_an_error(write_config):
    data = {"a": {"batch_size": 2}, "b": {"batch_size": 4}}
    with pytest.raises(InputError, match="batch_size is set twice, as a.batch_size and as b"):
        load_context(write_config(data))


def test_unknown_key_in_a_section_names_its_path(write_config):
    data = {"optim": {"batch_size": 2, "warmup_step": 10}}
    with pytest.raises(InputError, match=r"optim.warmup_step: unknown key \(did you mean"):
        load_context(write_config(data))


def test_hf_objects_are_not_native_sections():
    data = {"output_dir": "o", "lr_scheduler_kwargs": {"batch_size": 1}}
    assert detect_dialect(data, "f") == "hf"


def test_known_hf_keys_cover_the_installed_training_arguments():
    # The list is data so that `doctor check` never imports transformers; this keeps it honest.
    transformers = pytest.importorskip("transformers")
    import dataclasses

    from distill_doctor.config.hf_keys import TRAINING_ARGUMENTS_KEYS

    fields = {f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init}
    assert fields - TRAINING_ARGUMENTS_KEYS == set()


def test_nproc_divides_the_steps_per_epoch(doctor):
    one = doctor("check", "configs/seed_broken.json", "--format", "json")
    two = doctor("check", "configs/seed_broken.json", "--nproc", "2", "--format", "json")
    steps = [
        next(f for f in json.loads(r.stdout)["findings"] if f["id"] == "scheduler-steps-mismatch")[
            "evidence"
        ]["optimizer_steps"]
        for r in (one, two)
    ]
    assert steps == [4689, 2346]  # each of 2 processes sees half of the 50,000 samples

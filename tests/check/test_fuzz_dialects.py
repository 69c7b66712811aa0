"""YAML text and the frameworks' dialects, fuzzed like the JSON loader: any file either checks
or ends in an InputError (exit 2 with its message), never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill_doctor.config.context import load_context
from distill_doctor.config.frameworks import axolotl, markers
from distill_doctor.errors import InputError
from distill_doctor.rules import run_rules

FRAMEWORK_KEYS = sorted(
    markers.TORCHTUNE
    | markers.LLAMAFACTORY
    | markers.AXOLOTL
    | markers.ACCELERATE
    | markers.DEEPSPEED
    | set(axolotl.RENAMES)
    | {
        "epochs",
        "batch_size",
        "kd_ratio",
        "training_args",
        "loss_functions",
        "teacher",
        "model",
        "optimizer",
        "lr_scheduler",
        "tokenizer",
        "kd_loss",
        "fp16",
        "bf16",
        "eval_steps",
        "eval_strategy",
        "model_name_or_path",
        "dataset",
        "temperature",
        "num_processes",
        "per_device_train_batch_size",
        "num_train_epochs",
        "output_dir",
        "warmup_ratio",
    }
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["auto", "bf16", "fp16", "lora", "qlora", "cosine", "steps", "kl", "", "a,b"]),
)
COMPONENTS = st.fixed_dictionaries(
    {
        "_component_": st.sampled_from(
            ["torchtune.models.qwen2.lora_qwen2_0_5b", "torch.optim.AdamW", "x", "llama3_2_1b"]
        )
    },
    optional={
        "lr": SCALARS,
        "lora_rank": SCALARS,
        "max_seq_len": SCALARS,
        "num_warmup_steps": SCALARS,
    },
)
VALUES = st.recursive(
    st.one_of(SCALARS, COMPONENTS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "value",
                    "desc",
                    "enabled",
                    "function",
                    "weight",
                    "top_k",
                    "kind",
                    "model_path",
                    "lr",
                    "params",
                ]
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
CONFIGS = st.dictionaries(st.sampled_from(FRAMEWORK_KEYS), VALUES, min_size=1, max_size=8)


def check_text(text: str, suffix: str = ".yaml") -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            ctx, _ = load_context(path)
        except InputError as err:
            assert str(err).strip()
            return
        run_rules(ctx)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=CONFIGS, dialect_noise=st.booleans())
def test_any_framework_shaped_config_checks_or_is_an_input_error(data, dialect_noise):
    text = yaml.safe_dump(data, allow_unicode=True)
    check_text(text + ("\nextra_unknown_key: 1\n" if dialect_noise else ""))


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_text_checks_or_is_an_input_error(text):
    check_text(text)


@settings(max_examples=100, deadline=None)
@given(
    head=st.sampled_from(["a: ", "- ", "{a: ", "&x [", "a: *x\n", "? ", "!!map {", "<<: "]),
    body=st.text(alphabet="[]{}:,-&*!|>'\"\n #?%@`", max_size=200),
)
def test_yaml_syntax_soup_checks_or_is_an_input_error(head, body):
    check_text(head + body)

"""Any JSON object, in either dialect, either checks or is an InputError: never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from distill_doctor.config.dialects import parse_config
from distill_doctor.config.hf import SAME_MEANING
from distill_doctor.config.schema import config_keys
from distill_doctor.errors import InputError
from distill_doctor.rules import run_rules
from distill_doctor.rules.base import CheckContext

HF_SPECIAL = [
    "max_steps",
    "warmup_steps",
    "warmup_ratio",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "eval_strategy",
    "evaluation_strategy",
    "eval_steps",
    "logging_steps",
    "output_dir",
]
NATIVE_KEYS = sorted(config_keys())
HF_KEYS = sorted(set(SAME_MEANING) | set(HF_SPECIAL))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 100_000),
    st.floats(-2, 1e5, allow_nan=False),
    st.sampled_from(["", "linear", "cosine_with_min_lr", "steps", "epoch", "no", "gpt2"]),
)
# Mostly plausible values, so that the mapping and the rules run, not only the validation.
PLAUSIBLE = st.one_of(st.integers(1, 5000), st.floats(1e-6, 0.99), st.booleans())
VALUES = st.one_of(
    PLAUSIBLE,
    PLAUSIBLE,
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["min_lr", "min_lr_rate"]), SCALARS),
)
CONFIGS = st.one_of(
    st.dictionaries(st.sampled_from(NATIVE_KEYS), VALUES, max_size=5),
    st.dictionaries(st.sampled_from(HF_KEYS), VALUES, max_size=5),
    st.dictionaries(st.sampled_from(NATIVE_KEYS + HF_KEYS + ["no_such_key"]), VALUES, max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(
    data=CONFIGS,
    dialect=st.sampled_from([None, "native", "hf"]),
    train_samples=st.one_of(st.none(), st.integers(1, 10**6)),
)
def test_any_config_checks_or_raises_input_error(data, dialect, train_samples):
    try:
        parsed = parse_config(data, "fuzz.json", dialect, train_samples)
    except InputError as err:
        assert str(err).startswith("fuzz.json") or "dialect" in str(err)
        return
    run_rules(CheckContext(parsed.config, parsed.dialect, parsed.given))

"""Whatever a parser hands over, the suite never raises and its evidence survives JSON."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from distill_doctor.detectors import run_detectors
from distill_doctor.detectors.base import RunFacts

KEYS = [
    "step",
    "lr",
    "loss",
    "loss_ce",
    "loss_kd",
    "grad_norm",
    "checksum",
    "eval_loss",
    "eval_kd",
    "eval_ppl",
    "ppl",
    "mem_used_bytes",
    "mem_total_bytes",
    "steps_per_s",
    "tokens_per_s",
    "planned_steps",
    "vocab_size",
    "warning",
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["nan", "inf", "1e400", "0.5", "", "x", "non-finite value (nan)"]),
)
RECORDS = st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8), max_size=150)
FACTS = st.builds(
    RunFacts,
    planned_steps=st.one_of(st.none(), st.integers(-5, 10**6)),
    vocab_size=st.one_of(st.none(), st.integers(-5, 10**6)),
    mem_total_bytes=st.one_of(st.none(), st.integers(-5, 10**11)),
)


@settings(max_examples=300, deadline=None)
@given(RECORDS, FACTS)
def test_random_records_never_raise(records, facts):
    for finding in run_detectors(records, facts):
        json.dumps(finding.to_dict(), allow_nan=False)

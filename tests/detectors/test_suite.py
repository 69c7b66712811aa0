"""The whole suite: registry, healthy replays, every fault, the seed's own symptoms."""

import random
import subprocess
import sys

import pytest
from streams import OPTIONAL_KEYS, SEED_NAN_WARNING, StreamSpec, healthy_stream, stream

from distill_doctor.detectors import DETECTORS, DetectorSuite, run_detectors
from distill_doctor.detectors.base import RunFacts
from distill_doctor.findings import Severity
from distill_doctor.registry import lookup

IDS = [
    "lr-zero",
    "nonfinite-loss",
    "params-frozen",
    "eval-frozen",
    "loss-flat",
    "loss-spike",
    "loss-divergence",
    "grad-explosion",
    "grad-vanishing",
    "loss-above-chance",
    "perplexity-overflow",
    "memory-pressure",
    "throughput-drop",
    "eval-regression",
    "grad-nonfinite",
    "overfitting",
    "all-labels-masked",
    "memory-growth",
    "kd-signal-dead",
]
# Only a distributed run's records carry what these need (DD250-DD259).
RANK_IDS = ["rank-desync", "straggler-rank", "nonfinite-rank"]


def test_every_detector_is_registered_as_a_stream_rule():
    assert [cls.DOC.id for cls in DETECTORS] == IDS + RANK_IDS
    codes = [cls.DOC.code for cls in DETECTORS]
    assert codes == sorted(set(codes)) and all(c.startswith("DD2") for c in codes)
    for cls in DETECTORS:
        assert lookup(cls.DOC.id) is cls.DOC and lookup(cls.DOC.code) is cls.DOC
        assert cls.DOC.kind == "stream" and cls.DOC.why and cls.DOC.fix


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("steps", [50, 400, 5000])
def test_healthy_replay_has_no_warnings(seed, steps):
    rng = random.Random(seed * 7919 + steps)
    spec = StreamSpec(
        steps=steps,
        seed=seed,
        log_every=rng.choice([1, 5, 25]),
        eval_every=rng.choice([50, 200]),
        noise=rng.choice([0.01, 0.03, 0.06]),
        peak_lr=rng.choice([1e-5, 5e-5, 3e-4]),
        drop=frozenset(k for k in OPTIONAL_KEYS if rng.random() < 0.3),
        with_facts_records=rng.random() < 0.5,
    )
    findings = run_detectors(healthy_stream(spec))
    assert [f for f in findings if f.severity is not Severity.INFO] == []


# fault -> (detector id, step injected, earliest and latest step the finding may name)
FAULTS = {
    "lr_zero": ("lr-zero", 100, 100, 100),
    "nan_loss": ("nonfinite-loss", 123, 123, 123),
    "clamped_nan": ("nonfinite-loss", 77, 77, 77),
    "nan_warning": ("nonfinite-loss", 250, 250, 250),
    "frozen_params": ("params-frozen", 300, 300, 300),
    "eval_frozen": ("eval-frozen", 300, 300, 300),
    "loss_flat": ("loss-flat", 600, 500, 700),
    "loss_spike": ("loss-spike", 500, 500, 500),
    "loss_divergence": ("loss-divergence", 600, 560, 640),
    "grad_explosion": ("grad-explosion", 400, 400, 400),
    "grad_vanishing": ("grad-vanishing", 400, 400, 400),
    "ce_above_chance": ("loss-above-chance", 1, 1, 1),
    "ppl_from_total": ("perplexity-overflow", 300, 300, 300),
    "memory_pressure": ("memory-pressure", 250, 250, 250),
    "throughput_drop": ("throughput-drop", 700, 700, 700),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_suite_finds_each_fault_where_it_began(fault):
    detector_id, at, low, high = FAULTS[fault]
    findings = run_detectors(stream(2000, faults={fault: at}))
    hits = [f for f in findings if f.id == detector_id]
    assert len(hits) == 1, findings
    assert low <= hits[0].step <= high


def seed_records() -> list[dict]:
    """The seed's symptoms (EMERGENCY_FIX_README.md) as a parser would hand them over."""
    records: list[dict] = [{"step": 0, "planned_steps": 4687}]
    for step in range(10, 3001, 10):
        records.append({"step": step, "lr": 0.0, "loss": 21.5 + 0.1 * ((step // 10) % 2)})
        if step == 120:
            records.append({"step": step, "warning": SEED_NAN_WARNING})
        if step % 1000 == 0:
            records.append(
                {
                    "step": step,
                    "eval_loss": 101.40,
                    "eval_kd": 21.14,
                    "eval_feature": 40.79,
                    "eval_attention": 0.49,
                }
            )
            records.append({"step": step, "loss": 20.0, "ppl": 485165195.0})
    return records


def test_seed_symptoms_give_the_seed_diagnosis():
    findings = run_detectors(seed_records())
    by_id = {f.id: f for f in findings}
    assert {"lr-zero", "eval-frozen", "nonfinite-loss", "perplexity-overflow"} <= set(by_id)
    assert by_id["lr-zero"].step == 10 and by_id["lr-zero"].evidence["share_left"] > 0.99
    assert by_id["eval-frozen"].step == 1000 and by_id["eval-frozen"].evidence["value"] == 101.4
    assert by_id["nonfinite-loss"].step == 120
    assert by_id["perplexity-overflow"].evidence["matches"] == "loss"
    assert "not of eval_loss 101.4" in by_id["perplexity-overflow"].message
    assert all(f.severity is not Severity.INFO for f in findings)
    assert [f.id for f in findings].count("loss-flat") == 1  # LR 0: flat from the start


def test_suite_update_and_finish_match_run_detectors():
    records = stream(1000, faults={"lr_zero": 300}, with_facts_records=False)
    suite = DetectorSuite(RunFacts(planned_steps=1000))
    live = [f for r in records for f in suite.update(r)] + suite.finish()
    assert live == run_detectors(records, RunFacts(planned_steps=1000))
    assert [f.id for f in live] == ["lr-zero"]


def test_junk_values_disable_checks_without_raising():
    junk = [
        {
            "step": "x",
            "loss": "abc",
            "lr": None,
            "grad_norm": [1],
            "eval_loss": {},
            "ppl": True,
            "checksum": "n/a",
            "mem_used_bytes": -1,
            "warning": 3,
        }
    ] * 30
    junk += [{}, {"step": 5}, {"loss": 2.0}, {"step": 6, "loss": "2.5"}]
    run_detectors(junk, RunFacts(planned_steps=0, vocab_size=0, mem_total_bytes=0))


def test_importing_detectors_loads_no_torch():
    code = "import sys, distill_doctor.detectors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

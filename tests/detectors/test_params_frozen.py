from streams import run_one, stream

from distill_doctor.detectors.params_frozen import ParamsFrozen


def test_fires_at_first_unchanged_step():
    [finding] = run_one(ParamsFrozen, stream(1000, faults={"frozen_params": 300}))
    assert finding.step == 300
    assert finding.evidence["first_step"] == 300 and finding.evidence["last_step"] == 302
    assert finding.evidence["lr"] > 0


def test_float_noise_counts_as_unchanged_but_real_updates_do_not():
    noise = [{"step": s, "lr": 1e-5, "checksum": 5000.0 * (1 + (s % 2) * 1e-12)} for s in range(9)]
    assert [f.step for f in run_one(ParamsFrozen, noise)] == [1]
    moving = [{"step": s, "lr": 1e-5, "checksum": 5000.0 + s * 1e-4} for s in range(50)]
    assert run_one(ParamsFrozen, moving) == []


def test_zero_lr_or_repeated_step_is_not_frozen():
    no_lr = [{"step": s, "lr": 0.0, "checksum": 1.0} for s in range(20)]
    assert run_one(ParamsFrozen, no_lr) == []
    # Several records of one optimizer step (micro-batches) share a checksum legitimately.
    same_step = [{"step": 7, "lr": 1e-4, "checksum": 3.0} for _ in range(20)]
    assert run_one(ParamsFrozen, same_step) == []


def test_decay_tail_is_not_judged():
    tail = [{"step": 0, "lr": 1e-4, "checksum": 1.0}]
    tail += [{"step": s, "lr": 1e-8, "checksum": 2.0} for s in range(1, 20)]
    assert run_one(ParamsFrozen, tail) == []


def test_healthy_and_missing_checksum_are_silent():
    assert run_one(ParamsFrozen, stream(2000)) == []
    no_checksum = stream(500, faults={"frozen_params": 100}, drop={"checksum"})
    assert run_one(ParamsFrozen, no_checksum) == []

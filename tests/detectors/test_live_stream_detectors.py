"""all-labels-masked, memory-growth, kd-signal-dead: the watchdog's stream detectors."""

from __future__ import annotations

from streams import run_one, stream

from distill_doctor.detectors.all_labels_masked import AllLabelsMasked
from distill_doctor.detectors.kd_signal_dead import KdSignalDead
from distill_doctor.detectors.memory_growth import MemoryGrowth
from distill_doctor.findings import Severity

MIB = 2**20


def test_one_masked_batch_is_a_warning_at_its_step():
    records = [{"step": s, "valid_tokens": 0 if s == 7 else 900} for s in range(1, 50)]
    [finding] = run_one(AllLabelsMasked, records)
    assert (finding.step, finding.severity) == (7, Severity.WARNING)


def test_many_masked_batches_escalate_once_to_an_error():
    records = [{"step": s, "all_masked_batches": s // 5} for s in range(1, 100)]
    findings = run_one(AllLabelsMasked, records)
    assert [f.severity for f in findings] == [Severity.WARNING, Severity.ERROR]
    assert findings[1].evidence["masked_batches"] >= 3


def test_cumulative_counter_sees_masked_batches_between_sparse_logs():
    records = [{"step": 10, "all_masked_batches": 0}, {"step": 20, "all_masked_batches": 2}]
    [finding] = run_one(AllLabelsMasked, records)
    assert finding.step == 20 and finding.evidence["masked_batches"] == 2


def test_steady_leak_is_found_with_its_rate():
    records = [{"step": s, "mem_rss_bytes": 700 * MIB + s * 40 * MIB} for s in range(1, 40)]
    [finding] = run_one(MemoryGrowth, records)
    assert finding.evidence["series"] == "mem_rss_bytes"
    assert finding.evidence["bytes_per_step"] == 40 * MIB
    assert finding.step == 6  # judged from the first record after the warm-up allocations


def test_gpu_leak_projects_when_memory_runs_out():
    records = [
        {"step": s, "mem_allocated_bytes": 2e9 + s * 1e8, "mem_total_bytes": 16e9}
        for s in range(1, 30)
    ]
    [finding] = run_one(MemoryGrowth, records)
    assert finding.evidence["series"] == "mem_allocated_bytes"
    assert 130 < finding.evidence["full_at_step"] < 150


def test_plateau_and_allocator_noise_are_not_a_leak():
    noisy = [
        {"step": s, "mem_rss_bytes": 900 * MIB + (s % 3) * 30 * MIB + min(s, 5) * 50 * MIB}
        for s in range(1, 300)
    ]
    assert run_one(MemoryGrowth, noisy) == []
    jump = [{"step": s, "mem_rss_bytes": (900 + 200 * (s >= 20)) * MIB} for s in range(1, 40)]
    assert run_one(MemoryGrowth, jump) == []  # an eval's buffers, allocated once
    small = [{"step": s, "mem_rss_bytes": 900 * MIB + s * MIB} for s in range(1, 40)]
    assert run_one(MemoryGrowth, small) == []  # +1 MiB/step is not worth a stop in 12 steps


def test_kd_near_zero_from_the_start_is_dead():
    records = [{"step": s, "loss_kd": 3e-7, "loss_ce": 4.2} for s in range(1, 20)]
    [finding] = run_one(KdSignalDead, records)
    assert finding.step == 1 and finding.evidence["last_step"] == 5


def test_live_kd_or_a_kd_that_only_later_shrinks_is_fine():
    assert run_one(KdSignalDead, stream(200)) == []
    late = [{"step": s, "loss_kd": 2.0 if s < 10 else 1e-9, "loss_ce": 4.0} for s in range(40)]
    assert run_one(KdSignalDead, late) == []

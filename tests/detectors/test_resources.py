from streams import MEM_TOTAL, run_one, stream

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.memory_pressure import MemoryPressure
from distill_doctor.detectors.throughput_drop import DROP_FRACTION, ThroughputDrop


def test_memory_pressure_sustained():
    [finding] = run_one(MemoryPressure, stream(1000, faults={"memory_pressure": 250}))
    assert finding.step == 250
    assert finding.evidence["fraction"] == 0.97 and finding.evidence["total_bytes"] == MEM_TOTAL


def test_memory_blip_is_ignored_and_total_from_facts():
    blip = [{"step": s, "mem_used_bytes": 15.8e9 if s == 5 else 11e9} for s in range(20)]
    assert run_one(MemoryPressure, blip, RunFacts(mem_total_bytes=16e9)) == []
    full = [{"step": s, "mem_used_bytes": 15.7e9} for s in range(20)]
    [finding] = run_one(MemoryPressure, full, RunFacts(mem_total_bytes=16e9))
    assert finding.step == 0 and round(finding.evidence["fraction"], 3) == 0.981


def test_memory_without_total_is_silent():
    assert run_one(MemoryPressure, stream(300, drop={"mem_total_bytes"})) == []


def test_throughput_drop_sustained():
    [finding] = run_one(ThroughputDrop, stream(1000, faults={"throughput_drop": 700}))
    assert finding.step == 700
    assert finding.evidence["metric"] == "steps_per_s"
    assert finding.evidence["ratio"] < DROP_FRACTION and 1.8 < finding.evidence["median"] < 2.2


def test_throughput_falls_back_to_tokens_per_s():
    records = stream(1000, faults={"throughput_drop": 700}, drop={"steps_per_s"})
    [finding] = run_one(ThroughputDrop, records)
    assert finding.step == 700 and finding.evidence["metric"] == "tokens_per_s"


def test_slow_evals_are_not_a_drop():
    speeds = [0.2 if s % 100 in (0, 1) else 2.0 for s in range(1000)]
    records = [{"step": s, "steps_per_s": v} for s, v in enumerate(speeds)]
    assert run_one(ThroughputDrop, records) == []


def test_healthy_and_missing_are_silent():
    for cls in (MemoryPressure, ThroughputDrop):
        assert run_one(cls, stream(3000)) == []
    no_speed = stream(1000, faults={"throughput_drop": 700}, drop={"steps_per_s", "tokens_per_s"})
    assert run_one(ThroughputDrop, no_speed) == []


def test_throughput_advice_follows_the_device():
    slow = stream(1000, faults={"throughput_drop": 700})
    [on_cpu] = run_one(ThroughputDrop, [{"step": 0, "device": "cpu"}, *slow])
    assert "GPU" not in on_cpu.fix and "OMP_NUM_THREADS" in on_cpu.fix
    assert on_cpu.evidence["device"] == "cpu"
    [on_gpu] = run_one(ThroughputDrop, slow, RunFacts(device="cuda:0"))
    assert "clocks" in on_gpu.fix and "OMP_NUM_THREADS" not in on_gpu.fix
    [unknown] = run_one(ThroughputDrop, slow)  # a log that does not say: both, named as such
    assert "on a GPU" in unknown.fix and "on a CPU" in unknown.fix

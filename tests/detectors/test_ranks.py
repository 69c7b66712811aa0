"""The distributed run's detectors: rank-desync, straggler-rank, nonfinite-rank, fed records
shaped like rank 0's under torchrun (`distill_doctor.trainer.distributed.combine_rows`)."""

import json

from streams import run_one, stream

from distill_doctor.detectors.nonfinite_rank import NonfiniteRank
from distill_doctor.detectors.rank_desync import RankDesync
from distill_doctor.detectors.straggler_rank import CONFIRM_RECORDS, StragglerRank


def ranks_stream(steps=40, world=8, **faults) -> list[dict]:
    """Healthy 8-rank records; faults: desync_at, straggler=(rank, from_step), nan=(rank, step)."""
    records = []
    for step in range(1, steps + 1):
        record = {
            "step": step,
            "loss": 2.0,
            "checksum": 1234.5,
            "world_size": world,
            "rank_checksum_spread": 0.0,
            # healthy ranks: 0.90..0.97 s, the slowest is a different rank each step
            "rank_step_s_max": 0.97,
            "rank_step_s_median": 0.93,
            "rank_step_s_argmax": step % world,
        }
        if faults.get("desync_at") is not None and step >= faults["desync_at"]:
            record.update(rank_checksum_spread=0.01, rank_checksum_outlier=3)
        rank, start = faults.get("straggler", (None, None))
        if rank is not None and step >= start:
            record.update(rank_step_s_max=2.1, rank_step_s_argmax=rank)
        rank, at = faults.get("nan", (None, None))
        if rank is not None and step == at:
            record.update(loss=float("nan"), nonfinite_ranks=str(rank))
        records.append(record)
    return records


def test_healthy_ranks_are_silent():
    for cls in (RankDesync, StragglerRank, NonfiniteRank):
        assert run_one(cls, ranks_stream()) == []


def test_single_process_streams_are_silent():
    for cls in (RankDesync, StragglerRank, NonfiniteRank):
        assert run_one(cls, stream(2000, faults={"nan_loss": 100})) == []


def test_desync_is_reported_once_with_the_outlier_rank():
    [finding] = run_one(RankDesync, ranks_stream(desync_at=12))
    assert finding.id == "rank-desync" and finding.code == "DD250" and finding.step == 12
    assert finding.evidence["outlier_rank"] == 3 and finding.evidence["world_size"] == 8
    assert "rank 3 is furthest" in finding.message and "over 8 ranks" in finding.message
    json.dumps(finding.to_dict())


def test_desync_tolerance_scales_with_the_checksum():
    # a 1e-9 relative wobble (a different reduction order) is not a desync
    wobble = [{"step": s, "checksum": 5e6, "rank_checksum_spread": 5e-3} for s in range(1, 9)]
    assert run_one(RankDesync, wobble) == []
    wrong = [{"step": s, "checksum": 5e6, "rank_checksum_spread": 50.0} for s in range(1, 9)]
    assert [f.step for f in run_one(RankDesync, wrong)] == [1]


def test_straggler_needs_the_same_rank_several_records_in_a_row():
    [finding] = run_one(StragglerRank, ranks_stream(straggler=(5, 20)))
    assert finding.id == "straggler-rank" and finding.step == 20
    assert finding.evidence["rank"] == 5 and finding.evidence["records"] == CONFIRM_RECORDS
    assert "Rank 5 takes 2.1 s per step, the other ranks a median of 0.93 s (2.3x, 8 ranks)" in (
        finding.message
    )
    # slow for fewer records than the confirmation: a checkpoint save, not a straggler
    blip = ranks_stream(steps=20 + CONFIRM_RECORDS - 2, straggler=(5, 20))
    assert run_one(StragglerRank, blip) == []


def test_straggler_that_moves_between_ranks_restarts_the_count():
    records = ranks_stream(steps=30)
    for record in records[10:30]:
        slow_rank = 1 if (record["step"] // 3) % 2 else 6  # alternates every 3 records
        record.update(rank_step_s_max=2.1, rank_step_s_argmax=slow_rank)
    assert run_one(StragglerRank, records) == []


def test_two_ranks_one_far_slower():
    two = [  # with two ranks the median of the others is the other rank
        {"step": s, "rank_step_s_max": 0.35, "rank_step_s_median": 0.2, "rank_step_s_argmax": 1}
        for s in range(1, 10)
    ]
    assert [f.evidence["rank"] for f in run_one(StragglerRank, two)] == [1]
    close = [{**r, "rank_step_s_max": 0.24} for r in two]  # 20% slower: healthy jitter
    assert run_one(StragglerRank, close) == []


def test_nonfinite_on_one_rank_names_it():
    [finding] = run_one(NonfiniteRank, ranks_stream(nan=(6, 17)))
    assert finding.id == "nonfinite-rank" and finding.step == 17
    assert finding.evidence["ranks"] == "6"
    assert "rank 6 only (1 of 8 ranks) at step 17" in finding.message


def test_nonfinite_on_every_rank_is_left_to_nonfinite_loss():
    records = [
        {"step": 1, "loss": float("nan"), "world_size": 2, "nonfinite_ranks": "0,1"},
        {"step": 2, "loss": float("nan"), "nonfinite_ranks": "junk"},
    ]
    assert run_one(NonfiniteRank, records) == []

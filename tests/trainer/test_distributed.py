"""The distributed plumbing in one process: how ranks shard a global micro-batch, how rank 0's
Record folds every rank's numbers in, the resume and --inject checks. The launched ranks are
in test_torchrun.py."""

import math

import pytest
import torch
from train_helpers import tiny_config, write_corpus

from distill_doctor.errors import InputError
from distill_doctor.trainer import loop
from distill_doctor.trainer.data import IGNORE_INDEX, Blocks, epoch_batches
from distill_doctor.trainer.distributed import Distributed, check_resume, is_collective_failure
from distill_doctor.trainer.faults import DESYNC_DELTA, Faults, check_faults
from distill_doctor.trainer.rank_record import combine_rows, rank_row


def numbered_blocks(n: int) -> Blocks:
    ids = torch.arange(n).repeat_interleave(4).view(n, 4)  # row i is all i
    return Blocks(ids, torch.ones_like(ids), ids.clone())


@pytest.mark.parametrize(("world", "batch_size", "examples"), [(2, 2, 15), (3, 2, 20), (4, 1, 6)])
def test_ranks_split_the_micro_batches_one_process_would_see(world, batch_size, examples):
    blocks = numbered_blocks(examples)
    for indices in epoch_batches(examples, batch_size * world, seed=0, epoch=1):
        parts = [
            Distributed(rank=r, world_size=world).local_batch(blocks, indices) for r in range(world)
        ]
        learned = [int(i) for p in parts for i in p["labels"][:, 0] if i != IGNORE_INDEX]
        assert sorted(learned) == sorted(indices)  # each example once, on exactly one rank
        assert all(len(p["labels"]) <= batch_size for p in parts)


def test_a_rank_left_without_examples_runs_a_masked_one():
    blocks = numbered_blocks(5)
    part = Distributed(rank=2, world_size=3).local_batch(blocks, [4])  # one example, 3 ranks
    assert part["input_ids"].shape == (1, 4) and (part["labels"] == IGNORE_INDEX).all()


def row(loss=1.0, checksum=10.0, seconds=0.1, mem=None) -> list[float]:
    """A rank's row as `rank_row` makes it from that rank's record (CPU: no memory)."""
    record = {"loss": loss, "loss_ce": 2 * loss, "tokens_per_s": 100.0, "checksum": checksum}
    if mem is not None:
        record.update(mem_used_bytes=mem[0], mem_total_bytes=mem[1])
    return rank_row(record, seconds)


def test_rank_zero_record_sums_shares_and_names_the_odd_ranks():
    record = {"step": 7, "loss": 0.5, "loss_ce": 1.0, "tokens_per_s": 100.0, "checksum": 10.0}
    rows = [
        row(0.5, 10.0, 0.10, (3e9, 8e9)),
        row(0.25, 10.0, 0.12, (5e9, 8e9)),
        row(math.nan, 10.5, 0.50, (4e9, 8e9)),
        row(0.25, 10.0, 0.11, (2e9, 8e9)),
    ]
    out = combine_rows(record, rows)
    assert math.isnan(out["loss"]) and out["nonfinite_ranks"] == "2"
    assert out["tokens_per_s"] == 400.0 and out["world_size"] == 4
    assert out["rank_checksum_spread"] == 0.5 and out["rank_checksum_outlier"] == 2
    assert out["rank_step_s_max"] == 0.5 and out["rank_step_s_argmax"] == 2
    assert out["rank_step_s_median"] == 0.11  # of the other ranks: 0.10, 0.11, 0.12
    assert (out["mem_used_bytes"], out["mem_total_bytes"], out["rank_mem_argmax"]) == (5e9, 8e9, 1)
    assert "loss_kd" not in out  # a component this run does not have stays absent

    healthy = combine_rows(record, [row(0.5), row(0.25)])
    assert healthy["loss"] == 0.75 and healthy["loss_ce"] == 1.5
    assert healthy["rank_checksum_spread"] == 0.0
    assert "rank_checksum_outlier" not in healthy and "nonfinite_ranks" not in healthy
    assert "mem_used_bytes" not in healthy  # CPU ranks report no device memory


def test_a_single_process_is_left_alone(tiny_pair, tmp_path):
    here = Distributed()
    record = {"step": 1, "loss": 1.0}
    assert here.combine(record) is record and here.gather_objects("x") == ["x"]
    assert here.sum_int(5) == 5 and here.broadcast_object(tmp_path) == tmp_path
    run = loop.setup(
        tiny_config(tiny_pair, write_corpus(tmp_path / "d.txt", documents=40)), torch.device("cpu")
    )
    assert run.trained is run.student and run.dist.world_size == 1


def test_a_checkpoint_resumes_on_as_many_ranks_as_wrote_it(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt", documents=40)
    loop.train(tiny_config(tiny_pair, data, max_steps=1), tmp_path / "run", [])
    [checkpoint] = (tmp_path / "run/checkpoints").iterdir()
    check_resume(checkpoint, Distributed())
    with pytest.raises(InputError, match=r"written by 1 rank\(s\); this run has 4"):
        check_resume(checkpoint, Distributed(rank=0, world_size=4))
    trainer_state = torch.load(checkpoint / "trainer_state.pt", weights_only=True)
    assert "rng_per_rank" not in trainer_state  # one process: the file is as it always was


def test_inject_names_are_checked_and_act_on_the_last_rank_only():
    with pytest.raises(InputError, match="no such fault; known faults: rank-desync, straggler"):
        check_faults(["nan"], world_size=2)
    with pytest.raises(InputError, match="needs several ranks"):
        check_faults(["rank-desync"], world_size=1)
    check_faults(["rank-desync", "straggler"], world_size=2)

    model = torch.nn.Linear(2, 2)
    before = model.weight.detach().clone()
    Faults(("rank-desync",), rank=0, world_size=2).before_step(model, 1)
    assert torch.equal(model.weight, before)  # rank 0 stays the healthy reference
    last = Faults(("rank-desync",), rank=1, world_size=2)
    for steps_done in range(4):
        last.before_step(model, steps_done)
    assert (model.weight - before).abs().sum().item() == pytest.approx(DESYNC_DELTA)  # once


def test_collective_failures_are_told_from_other_errors():
    lost = RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer")
    assert is_collective_failure(lost)
    assert not is_collective_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))

"""torch.distributed for the trainer: one process per device under `torchrun`, DDP on the
student, a frozen teacher replica per rank, and the numbers of every rank in rank 0's Record.
One process (no `torchrun`, or a world of 1) gets `Distributed()` and every method is a no-op:
the loop runs the same code either way.

What a rank does (docs/distributed.md says it for users):
  * data: an epoch's permutation, seeded by (seed, epoch) exactly as in one process, is cut
    into GLOBAL micro-batches of batch_size x world_size examples; rank r takes every
    world_size-th example of each, as `DistributedSampler` does. N ranks therefore see the
    batches one process with N x batch_size sees. A rank left with no example (an epoch's last,
    short micro-batch) runs a fully masked one: DDP needs every rank in every backward.
  * loss: the valid-token count is all-reduced before the first micro-batch, so a rank's loss
    is its share of the GLOBAL per-token mean and the shares sum to it. DDP averages gradients;
    the backward multiplies by world_size so that the average is that sum. Only the
    micro-batch that steps synchronises gradients (`no_sync` on the others).
  * numbers: after each optimizer step one `all_gather` of a few floats per rank gives the
    global loss, tokens/s, the worst rank's memory and per-rank fields (`rank_record`).
    Evaluation is sharded the same way, and the ranks' per-token means combined.
  * stops: once per optimizer step the ranks all-reduce their stop flags: a stop asked on any
    rank (a signal, the watchdog) stops every rank after the same step.
  * files: rank 0 alone prints, logs and writes the checkpoint (once, with every rank's RNG
    state); every rank reads the checkpoint on resume.
  * failure: collectives time out; a rank that dies or hangs makes the others raise `RankLost`
    instead of hanging.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from distill_doctor.errors import InputError
from distill_doctor.records import Record
from distill_doctor.trainer import checkpoint as ckpt
from distill_doctor.trainer.data import IGNORE_INDEX, Blocks
from distill_doctor.trainer.evaluate import perplexity
from distill_doctor.trainer.hooks import TrainControl
from distill_doctor.trainer.rank_record import combine_rows, rank_row


class RankLost(Exception):
    """A collective failed: another rank died, or hung past the collective timeout."""


def is_collective_failure(err: BaseException) -> bool:
    """gloo and NCCL report a lost peer or a timeout as a RuntimeError naming themselves."""
    text = str(err)
    return isinstance(err, dist.DistError) or "gloo" in text or "NCCL" in text


@dataclass
class Distributed:
    """This process's place in the job. `Distributed()` is a single process."""

    rank: int = 0
    world_size: int = 1
    cuda: bool = False  # NCCL: collectives take CUDA tensors, the timer uses CUDA events
    _timer: list[Any] = field(default_factory=list)  # start and end of the compute window

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _tensor(self, values: list[float]) -> torch.Tensor:
        device = torch.device("cuda", torch.cuda.current_device()) if self.cuda else "cpu"
        return torch.tensor(values, dtype=torch.float64, device=device)

    # --- model and data ---------------------------------------------------------------

    def wrap(self, student: torch.nn.Module) -> torch.nn.Module:
        """DDP around the student; it broadcasts rank 0's weights now, so every rank starts
        from the same ones whatever it loaded. A causal LM's buffers are constants (rotary
        frequencies, masks): no broadcast before each forward, which would also make the
        fast ranks wait inside the compute window that finds stragglers."""
        if not self.enabled:
            return student
        ddp = torch.nn.parallel.DistributedDataParallel
        # torch 2.13 renamed the option; 2.1-2.12 know only the old name
        name = "forward_sync_buffers"
        if name not in inspect.signature(ddp).parameters:
            name = "broadcast_buffers"
        device_ids = [torch.cuda.current_device()] if self.cuda else None
        return ddp(student, device_ids=device_ids, **{name: False})

    def local_batch(self, blocks: Blocks, global_indices: list[int]) -> dict[str, torch.Tensor]:
        """This rank's part of a global micro-batch (every world_size-th example)."""
        mine = global_indices[self.rank :: self.world_size]
        if mine:
            return blocks.batch(mine)
        batch = blocks.batch(global_indices[:1])  # nothing left for this rank: learn nothing
        return {**batch, "labels": torch.full_like(batch["labels"], IGNORE_INDEX)}

    def micro_batch(self, model: torch.nn.Module, steps: bool) -> contextlib.AbstractContextManager:
        """Around a micro-batch's forward and backward: gradients are synchronised only on the
        micro-batch whose optimizer step follows."""
        if self.enabled and not steps:
            return model.no_sync()
        return contextlib.nullcontext()

    def average_gradients(self, module: torch.nn.Module) -> None:
        """DDP covers the student; the loss's learned projections (outside DDP) are averaged
        here, the same way, before the optimizer steps."""
        if not self.enabled:
            return
        for param in module.parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad)
                param.grad /= self.world_size

    def sum_int(self, value: int) -> int:
        if not self.enabled:
            return value
        total = self._tensor([value])
        dist.all_reduce(total)
        return int(total.item())

    # --- the per-rank compute time ------------------------------------------------------

    def start_compute(self) -> None:
        """After the step's first collective: the ranks start level."""
        if self.enabled:
            self._timer[:] = [self._now()]

    def end_compute(self) -> None:
        """Before the backward that synchronises gradients, where a fast rank waits."""
        if self.enabled:
            self._timer.append(self._now())

    def _now(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)  # no host sync: read after the step
        event.record()
        return event

    def compute_seconds(self) -> float:
        if len(self._timer) != 2:
            return math.nan
        start, end = self._timer
        if self.cuda:
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        return end - start

    # --- numbers, stops, objects --------------------------------------------------------

    def combine(self, record: Record) -> Record:
        """Rank 0's record from every rank's (each rank gets the same result)."""
        if not self.enabled:
            return record
        mine = self._tensor(rank_row(record, self.compute_seconds()))
        rows = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(rows, mine)
        return combine_rows(record, [r.tolist() for r in rows])

    def combine_eval(self, results: dict[str, float], tokens: int) -> dict[str, float]:
        """The ranks' eval means (each over its `tokens` valid tokens) as one mean per metric
        over all of them, and the perplexity of the combined CE."""
        if not self.enabled:
            return results
        names = sorted(k for k in results if k != "ppl")
        mine = self._tensor([tokens] + [results[name] * tokens for name in names])
        dist.all_reduce(mine)
        total, *sums = mine.tolist()
        combined = {name: value / max(total, 1) for name, value in zip(names, sums, strict=True)}
        return {**combined, "ppl": perplexity(combined["ce"])}

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any (one all-reduce under torchrun)."""
        if not self.enabled:
            return flag
        value = self._tensor([1.0 if flag else 0.0])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def agree_stop(self, control: TrainControl) -> bool:
        """True on every rank when any rank asked to stop; each rank's control then holds the
        first reason by rank order (its own, if it had one)."""
        if not self.enabled:
            return control.should_stop
        flag = self._tensor([1.0 if control.should_stop else 0.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() == 0:
            return False
        reasons = self.gather_objects(control.stop_reason)
        control.request_stop(next(reason for reason in reasons if reason))
        return True

    def gather_objects(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


# --- the process group --------------------------------------------------------------------


def current() -> Distributed:
    """This process's place, from torch.distributed's own state."""
    if not (dist.is_available() and dist.is_initialized()):
        return Distributed()
    return Distributed(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        cuda=dist.get_backend() == "nccl",
    )


def launched_world_size() -> int:
    """The world `torchrun` (or any launcher setting WORLD_SIZE) started; 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextlib.contextmanager
def process_group(device: str, timeout_s: float) -> Iterator[Distributed]:
    """Join the launcher's process group (NCCL on CUDA, gloo on CPU) for the block; a
    collective failure inside becomes `RankLost`. Without a launcher: a single process."""
    if launched_world_size() <= 1:
        yield Distributed()
        return
    if not dist.is_available():
        raise InputError("this torch build has no torch.distributed; run a single process.")
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    here = current()
    try:
        yield here
    except RuntimeError as err:
        if not is_collective_failure(err):
            raise
        # torchrun is terminating the job: say why before its SIGTERM ends this rank mid-line
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        first_line = str(err).strip().splitlines()[0][:300]
        raise RankLost(
            f"rank {here.rank} of {here.world_size} lost contact with the other ranks "
            f"({first_line}): a rank died, or hung past the {timeout_s:g} s collective "
            "timeout (--dist-timeout)."
        ) from None
    dist.destroy_process_group()  # not after a failure: tearing down a broken NCCL group hangs


# --- checkpoints --------------------------------------------------------------------------


def save_checkpoint(
    here: Distributed, root: Path, state: ckpt.TrainState, modules: dict[str, Any], keep: int
) -> None:
    """Every rank hands rank 0 its RNG state; rank 0 alone writes the one checkpoint."""
    state.world_size = here.world_size
    rng_states = here.gather_objects(ckpt.rng_state())
    if here.is_main:
        ckpt.save_checkpoint(root, state, modules, keep, rng_states if here.enabled else None)


def check_resume(folder: Path, here: Distributed) -> None:
    """A checkpoint resumes on as many ranks as wrote it: the global batch, the data order and
    the per-rank RNG states all depend on the world size."""
    written_by = ckpt.read_state(folder).world_size
    if written_by == here.world_size:
        return
    how = (
        "plain `doctor train --resume RUN_DIR`"
        if written_by == 1
        else f"`torchrun --nproc-per-node {written_by} -m distill_doctor train --resume RUN_DIR`"
        f" (or {written_by} ranks over several nodes)"
    )
    raise InputError(
        f"{folder} was written by {written_by} rank(s); this run has {here.world_size}. Resume "
        f"it on {written_by} rank(s): {how}; or start a new run."
    )

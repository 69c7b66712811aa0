"""What the live watchdog costs per optimizer step on the bundled demo model.

One process, one set-up run, the same loop code: blocks of steps alternate between plain
(the trainer's own record only) and watched (the record through the `TrainerWatchdog`: the
update/weight sample, every stream detector, the call counters, the teacher probe), so that
drift on a busy machine hits both alike. Two figures:
  overhead_pct  median watched step time / median plain step time - 1 (the goal: <= 2%)
  direct_pct    time spent inside the watchdog's hooks / mean step time (less noisy)

    python benchmarks/overhead.py [--rounds 10] [--block 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from distill_doctor.config.loader import read_json_object  # noqa: E402
from distill_doctor.config.schema import TrainConfig  # noqa: E402
from distill_doctor.trainer import loop  # noqa: E402
from distill_doctor.trainer.checkpoint import TrainState  # noqa: E402
from distill_doctor.trainer.demo import demo_config_path  # noqa: E402
from distill_doctor.trainer.hooks import Observers, TrainControl  # noqa: E402
from distill_doctor.trainer.step_metrics import step_record  # noqa: E402
from distill_doctor.watchdog.core import Watchdog  # noqa: E402
from distill_doctor.watchdog.policy import Policy  # noqa: E402
from distill_doctor.watchdog.trainer_observer import TrainerWatchdog  # noqa: E402


class Timed:
    """Wraps an observer and sums the seconds spent in it."""

    def __init__(self, observer) -> None:
        self.observer, self.seconds = observer, 0.0

    def __getattr__(self, name):
        method = getattr(self.observer, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = read_json_object(demo_config_path())
    config.update(device="cpu", max_steps=10_000, warmup_steps=10)
    cfg = TrainConfig(**config)
    run = loop.setup(cfg, torch.device("cpu"))
    control, state = TrainControl(), TrainState()
    watched = Timed(TrainerWatchdog(Watchdog(policy=Policy())))
    info = {
        "planned_steps": run.planned,
        "preflight": [],
        "resumed_from_step": None,
        "run_dir": ".",
    }
    watched.on_setup(run)
    watched.on_run_start(info, control)
    hooks = {"plain": Observers([]), "watched": Observers([watched])}
    groups = iter(loop.epoch_groups(run, 0, 0))
    times: dict[str, list[float]] = {"plain": [], "watched": []}
    watchdog_seconds = 0.0
    for _ in range(args.rounds):
        for mode in ("plain", "watched"):
            for _ in range(args.block):
                started = time.perf_counter()
                before = watched.seconds
                metrics = loop.accumulated_step(
                    run, next(groups), state, lambda m, h=hooks[mode]: h.allow_update(m, control)
                )
                state.step += 1
                record = step_record(run, metrics, state, 1.0, 0)
                hooks[mode].on_record(record)
                times[mode].append(time.perf_counter() - started)
                if mode == "watched":
                    watchdog_seconds += watched.seconds - before
    plain, watched_ms = statistics.median(times["plain"]), statistics.median(times["watched"])
    result = {
        "steps_per_mode": len(times["plain"]),
        "plain_step_ms": round(1000 * plain, 2),
        "watched_step_ms": round(1000 * watched_ms, 2),
        "overhead_pct": round(100 * (watched_ms / plain - 1), 2),
        "watchdog_ms_per_step": round(1000 * watchdog_seconds / len(times["watched"]), 3),
        "direct_pct": round(100 * watchdog_seconds / sum(times["watched"]), 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"plain step {result['plain_step_ms']} ms, watched {result['watched_step_ms']} ms "
        f"(median of {result['steps_per_mode']} each, interleaved): overhead "
        f"{result['overhead_pct']}%; inside the watchdog {result['watchdog_ms_per_step']} ms "
        f"per step = {result['direct_pct']}% of a step (goal <= 2%)"
    )


if __name__ == "__main__":
    main()

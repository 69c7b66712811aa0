"""Does the watchdog catch each injected fault, how fast, and does it stay quiet on healthy
runs? Every `--inject` fault runs once on the bundled demo (real models, real data) under the
live watchdog with `--on-error abort`; then healthy runs with 10 seeds count false alarms.

Per fault: detected (its expected id among the findings), the id, the fault's onset step, the
step the finding names, the optimizer steps from onset to detection, and whether the run
stopped there. Goals: every fault caught; LR 0 / a wrong schedule predicted before step 1;
NaN flagged at its step; zero findings on the healthy seeds.

    python benchmarks/detection.py [--steps 40] [--seeds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from distill_doctor.config.loader import read_json_object  # noqa: E402
from distill_doctor.config.schema import TrainConfig  # noqa: E402
from distill_doctor.trainer import loop  # noqa: E402
from distill_doctor.trainer.demo import demo_config_path  # noqa: E402
from distill_doctor.trainer.faults import CAUGHT_AS, FAULTS, Faults  # noqa: E402
from distill_doctor.watchdog.core import Watchdog  # noqa: E402
from distill_doctor.watchdog.policy import Action, Policy  # noqa: E402
from distill_doctor.watchdog.trainer_observer import TrainerWatchdog  # noqa: E402

ONSET_STEP = 10  # nan-loss and all-masked-batch happen here; the others from the start
# A fault that needs gradient accumulation to exist gets it (same effective batch).
OVERRIDES = {"scheduler-per-microbatch": {"gradient_accumulation_steps": 4, "batch_size": 2}}


def demo_config(steps: int, seed: int, **overrides) -> TrainConfig:
    base = read_json_object(demo_config_path())
    # Short runs: warmup and eval cadence scaled to them, so the pre-flight stays quiet.
    base.update(max_steps=steps, warmup_steps=max(1, steps // 20), eval_steps=steps // 2)
    base.update(seed=seed, device="cpu", eval_max_batches=4, **overrides)
    return TrainConfig(**base)


def watched(
    cfg: TrainConfig, fault: str | None, on_error: Action
) -> tuple[Watchdog, object, float]:
    watchdog = Watchdog(policy=Policy(on_error=on_error))
    faults = Faults.parse([f"{fault}@{ONSET_STEP}"] if fault else [])
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = loop.train(cfg, Path(folder) / "run", [TrainerWatchdog(watchdog)], faults=faults)
        return watchdog, result, time.perf_counter() - started


def onset(fault: str) -> int:
    return ONSET_STEP if fault in ("nan-loss", "all-masked-batch") else 0


def fault_rows(steps: int) -> list[dict]:
    rows = []
    for fault in FAULTS:
        cfg = demo_config(steps, 0, **OVERRIDES.get(fault, {}))
        watchdog, result, seconds = watched(cfg, fault, Action.ABORT)
        expected = CAUGHT_AS[fault]
        hits = [f for f in watchdog.findings if f.id in expected]
        first = hits[0] if hits else None
        rows.append(
            {
                "fault": fault,
                "detected": first is not None,
                "id": first.id if first else None,
                "expected": "|".join(expected),
                "onset_step": onset(fault),
                "detected_at_step": first.step if first else None,
                "steps_to_detect": (first.step or 0) - onset(fault) if first else None,
                "stopped_at_step": result.state.step,
                "other_findings": sorted({f.id for f in watchdog.findings} - set(expected)),
                "seconds": round(seconds, 1),
            }
        )
    return rows


def healthy_rows(steps: int, seeds: int) -> list[dict]:
    rows = []
    for seed in range(seeds):
        watchdog, result, seconds = watched(demo_config(steps, seed), None, Action.WARN)
        rows.append(
            {
                "seed": seed,
                "false_alarms": len(watchdog.findings),
                "ids": [f.id for f in watchdog.findings],
                "steps": result.state.step,
                "seconds": round(seconds, 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    faults, healthy = fault_rows(args.steps), healthy_rows(args.steps, args.seeds)
    summary = {
        "faults_caught": sum(r["detected"] for r in faults),
        "faults": len(faults),
        "healthy_runs": len(healthy),
        "false_alarms": sum(r["false_alarms"] for r in healthy),
    }
    if args.json:
        print(json.dumps({"summary": summary, "faults": faults, "healthy": healthy}, indent=2))
        return
    print(f"{'fault':<26}{'caught as':<34}{'onset':>6}{'found':>6}{'delay':>6}{'stopped':>8}")
    for r in faults:
        found = r["id"] or f"MISSED ({r['expected']})"
        at, delay = r["detected_at_step"], r["steps_to_detect"]
        print(
            f"{r['fault']:<26}{found:<34}{r['onset_step']:>6}{'-' if at is None else at:>6}"
            f"{'-' if delay is None else delay:>6}{r['stopped_at_step']:>8}"
        )
    for r in healthy:
        print(f"healthy seed {r['seed']}: {r['false_alarms']} findings {r['ids']}")
    print(
        f"caught {summary['faults_caught']}/{summary['faults']} faults; "
        f"{summary['false_alarms']} false alarms over {summary['healthy_runs']} healthy runs"
    )


if __name__ == "__main__":
    main()

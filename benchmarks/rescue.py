"""What `--on-error adjust` saves: each repairable fault on the bundled demo, three times with
the same config and seed: healthy (no fault), adjusted (the fault, repaired in place) and
unrepaired (the fault, the watchdog only warning). The final held-out eval loss of each;
`ratio` = adjusted / healthy (goal <= 1.05 for the schedule, NaN and masked-batch faults; no
crash for any) beside `unrepaired_ratio`, what the repair bought; the repairs made and the
extra wall time of the adjusted run.

    python benchmarks/rescue.py [--steps 60] [--json]
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
from distill_doctor.trainer.faults import Faults  # noqa: E402
from distill_doctor.watchdog.core import Watchdog  # noqa: E402
from distill_doctor.watchdog.policy import Action, Policy  # noqa: E402
from distill_doctor.watchdog.trainer_observer import TrainerWatchdog  # noqa: E402

FAULTS = [
    "scheduler-per-microbatch",
    "scheduler-too-long",
    "nan-loss",
    "all-masked-batch",
    "lr-too-high",
    "memory-leak",
]
ONSET_STEP = 10
OVERRIDES = {"scheduler-per-microbatch": {"gradient_accumulation_steps": 4, "batch_size": 2}}


class ActionCount:
    def __init__(self) -> None:
        self.actions: list[dict] = []

    def on_action(self, event: dict) -> None:
        self.actions.append(event)


def demo_config(steps: int, **overrides) -> TrainConfig:
    base = read_json_object(demo_config_path())
    base.update(max_steps=steps, warmup_steps=max(1, steps // 20), eval_steps=steps)
    base.update(device="cpu", eval_max_batches=8, save_steps=max(1, steps // 6), **overrides)
    return TrainConfig(**base)


def final_eval(cfg: TrainConfig, fault: str | None, on_error: Action) -> dict:
    actions = ActionCount()
    watchdog = Watchdog(policy=Policy(on_error=on_error), sinks=[actions])
    faults = Faults.parse([f"{fault}@{ONSET_STEP}"] if fault else [])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        try:
            result = loop.train(
                cfg,
                Path(folder) / "run",
                [TrainerWatchdog(watchdog)],
                faults=faults,
                extra_state={"watchdog": watchdog},
            )
        except Exception as error:  # noqa: BLE001 - a crash is a result here
            return {"eval": None, "crashed": f"{type(error).__name__}: {error}", "seconds": 0}
    return {
        "eval": result.evals.get("after", {}).get("loss"),
        "crashed": None if result.status == "completed" else result.status,
        "seconds": time.perf_counter() - started,
        "repairs": [f"{a['action']}:{a['finding']}@{a['step']}" for a in actions.actions],
    }


def ratio(run: dict, healthy: dict) -> float | None:
    if run["eval"] is None or healthy["eval"] is None:
        return None
    return round(run["eval"] / healthy["eval"], 4)


def rows(steps: int) -> list[dict]:
    healthy: dict[str, dict] = {}
    out = []
    for fault in FAULTS:
        overrides = OVERRIDES.get(fault, {})
        cfg = demo_config(steps, **overrides)
        key = json.dumps(overrides, sort_keys=True)
        if key not in healthy:
            healthy[key] = final_eval(cfg, None, Action.WARN)
        base = healthy[key]
        adjusted = final_eval(cfg, fault, Action.ADJUST)
        unrepaired = final_eval(cfg, fault, Action.WARN)

        out.append(
            {
                "fault": fault,
                "healthy_eval": base["eval"],
                "adjusted_eval": adjusted["eval"],
                "ratio": ratio(adjusted, base),
                "unrepaired_eval": unrepaired["eval"],
                "unrepaired_ratio": ratio(unrepaired, base),
                "repairs": adjusted.get("repairs", []),
                "crashed": adjusted["crashed"],
                "extra_seconds": round(adjusted["seconds"] - base["seconds"], 1),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = rows(args.steps)
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print(f"{'fault':<26}{'healthy':>9}{'adjusted':>10}{'ratio':>7}{'unrepaired':>11}  repairs")
    for r in table:

        def show(value, spec=".4f"):
            return "-" if value is None else format(value, spec)

        print(
            f"{r['fault']:<26}{show(r['healthy_eval']):>9}{show(r['adjusted_eval']):>10}"
            f"{show(r['ratio'], '.3f'):>7}{show(r['unrepaired_ratio'], '.3f'):>11}  "
            f"{', '.join(r['repairs']) or '-'}{'  CRASHED ' + r['crashed'] if r['crashed'] else ''}"
        )


if __name__ == "__main__":
    main()

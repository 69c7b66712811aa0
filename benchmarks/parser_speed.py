"""Speed and memory of the postmortem's parsers on the three big inputs of issue 8:
  - a tqdm log redrawn with `\\r` at every step (200 MB; a `loss=` postfix per redraw, read by
    seed-text) and a Hugging Face stdout log (bars with `{'loss': ...}` dicts, hf-stdout):
    MB/s of the parser alone and of the whole postmortem (parse + detectors), wall and CPU;
  - a 1,000,000-record JSONL log: seconds of the parser alone;
  - a 200 MB trainer_state.json: peak RSS of the streamed parser against `json.load` of the
    same file (each in a fresh process).
CPU figures are printed beside wall ones: on a shared machine the wall clock also counts the
time other processes held the CPU.

    python benchmarks/parser_speed.py [--size-mb 200] [--records 1000000] [--dir /tmp] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path


def tqdm_log(path: Path, size: int, hf: bool) -> None:
    """One bar redrawn at every step; HF style prints a dict every 500 steps."""
    if path.exists() and path.stat().st_size >= size:
        return
    total, step, written = 10**6, 0, 0
    with open(path, "w") as out:
        while written < size:
            parts = []
            for _ in range(5000):
                step += 1
                loss = 2 + math.exp(-step / 20000) + 0.01 * math.sin(step)
                bar = f"{step * 100 // total:3d}%|{'#' * (step * 10 // total):<10}| {step}/{total}"
                if hf:
                    parts.append(f"{bar} [01:{step % 60:02d}<2:10:00,  7.60it/s]")
                    if step % 500 == 0:
                        parts[-1] += f"\n{{'loss': {loss:.4f}, 'learning_rate': 1e-05}}\n"
                else:
                    parts.append(f"Epoch 1: {bar} [01:00<2:10:00, 7.6it/s, loss={loss:.4f}]")
            text = "\r".join(parts) + "\r"
            out.write(text)
            written += len(text)
        out.write("\n")


def jsonl_log(path: Path, records: int) -> None:
    if path.exists():
        return
    with open(path, "w") as out:
        for step in range(records):
            loss = 2 + 3 * math.exp(-step / (records / 4))
            out.write(f'{{"step": {step}, "loss": {loss:.5f}, "lr": 3e-4, "grad_norm": 1.0}}\n')


def trainer_state(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size >= size:
        return
    entries = size // 150
    history = [
        {"epoch": s / 1e5, "grad_norm": 1.0, "learning_rate": 1e-4, "loss": 3.0, "step": s}
        for s in range(1, entries + 1)
    ]
    state = {"global_step": entries, "log_history": history, "max_steps": entries}
    path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")


def worker(kind: str, path: Path) -> dict[str, float]:
    """One measurement in this process: wall and CPU seconds, records, peak RSS."""
    from distill_doctor.postmortem.analysis import analyze
    from distill_doctor.postmortem.formats import detect
    from distill_doctor.postmortem.parsers import ParseOptions
    from distill_doctor.postmortem.skipped import Skipped

    wall, cpu = time.perf_counter(), time.process_time()
    if kind == "parse":
        records = sum(1 for _ in detect(path).parse(path, Skipped("b"), ParseOptions()))
    elif kind == "analyze":
        records = analyze([path]).records
    else:  # "json.load": the whole file at once, as before streaming
        records = len(json.loads(path.read_bytes())["log_history"])
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "records": records,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return
    size = args.size_mb * 1024 * 1024
    result: dict[str, object] = {}
    for name, hf in (("tqdm_redraws", False), ("hf_stdout_redraws", True)):
        path = args.dir / f"{name}_{args.size_mb}mb.log"
        tqdm_log(path, size, hf)
        mb = path.stat().st_size / 1e6
        for kind in ("parse", "analyze"):
            m = measure(kind, path)
            result[f"{name}_{kind}"] = {
                "mb_per_s_wall": round(mb / m["wall_s"], 1),
                "mb_per_s_cpu": round(mb / m["cpu_s"], 1),
                "records": m["records"],
            }
    jsonl = args.dir / f"jsonl_{args.records}.jsonl"
    jsonl_log(jsonl, args.records)
    m = measure("parse", jsonl)
    result["jsonl_parse"] = {
        "records": m["records"],
        "wall_s": round(m["wall_s"], 2),
        "cpu_s": round(m["cpu_s"], 2),
    }
    state = args.dir / f"state_{args.size_mb}mb" / "trainer_state.json"
    state.parent.mkdir(exist_ok=True)
    trainer_state(state, size)
    streamed, whole = measure("parse", state), measure("json.load", state)
    result["trainer_state"] = {
        "file_mb": round(state.stat().st_size / 1e6, 1),
        "streamed_peak_rss_mb": round(streamed["peak_rss_mb"], 1),
        "json_load_peak_rss_mb": round(whole["peak_rss_mb"], 1),
        "streamed_cpu_s": round(streamed["cpu_s"], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:<28} " + ", ".join(f"{k}={v}" for k, v in value.items()))  # type: ignore[union-attr]


if __name__ == "__main__":
    main()

"""`doctor postmortem` beside the two log linters on PyPI that do the same job, `losslint`
(0.4.1) and `trainproof` (0.22.0), on the real-log corpus (tests/real_logs) and on a
1,000,000-record JSONL log. A peer that is not installed is left out of the table:

    pip install 'distill_doctor[peers]'      # or: pip install losslint trainproof
    python benchmarks/vs_peers.py [--records 1000000] [--dir /tmp] [--json]

Each tool is scored the same way (see benchmarks/real_logs.py): files read, sick runs with a
warning or error finding, healthy runs with an error finding, findings per file; then the
wall time of each command line on the big JSONL file.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

from real_logs import CORPUS, Outcome, load_manifest, ours, score

_LEVELS = {"error": "error", "fail": "error", "warning": "warning", "warn": "warning"}


def _worst(levels: list[str]) -> str | None:
    mapped = {_LEVELS.get(level.lower(), "info") for level in levels}
    return next((s for s in ("error", "warning", "info") if s in mapped), None)


def _run(command: list[str]) -> tuple[str, float]:
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    return out.stdout, time.perf_counter() - start


def losslint(path: Path) -> Outcome:
    stdout, seconds = _run(["losslint", "check", str(path), "--format", "json"])
    try:
        document = json.loads(stdout)
    except ValueError:
        return Outcome(read=False, seconds=seconds)
    findings = document.get("findings", [])
    return Outcome(
        read=any(run.get("points", 0) > 0 for run in document.get("runs", [])),
        findings=len(findings),
        ids=sorted({f.get("check", "?") for f in findings}),
        worst=_worst([f.get("severity", "info") for f in findings]),
        seconds=seconds,
    )


def trainproof(path: Path) -> Outcome:
    stdout, seconds = _run(["trainproof", "doctor", str(path), "--json"])
    try:
        document = json.loads(stdout)
    except ValueError:
        return Outcome(read=False, seconds=seconds)
    reports = document.get("reports", [])
    findings = [f for report in reports for f in report.get("findings", [])]
    return Outcome(
        read=any(report.get("num_records", 0) > 0 for report in reports),
        findings=len(findings),
        ids=sorted({f.get("id", "?") for f in findings}),
        worst=_worst([f.get("level", "info") for f in findings]),
        seconds=seconds,
    )


PEERS = {"losslint": losslint, "trainproof": trainproof}


def million_jsonl(folder: Path, records: int) -> Path:
    """A healthy, slowly decaying run with loss, lr and grad_norm at every step."""
    path = folder / f"run_{records}.jsonl"
    if not path.exists():
        with open(path, "w") as out:
            for step in range(records):
                loss = 2 + 3 * math.exp(-step / (records / 4)) + 0.05 * math.sin(step / 7)
                out.write(
                    f'{{"step": {step}, "loss": {loss:.5f}, "lr": 3e-4, '
                    f'"grad_norm": {1 + 0.2 * math.cos(step / 11):.4f}}}\n'
                )
    return path


def timed_big_file(path: Path, tools: list[str]) -> dict[str, float]:
    commands = {
        "doctor": [sys.executable, "-m", "distill_doctor", "postmortem", str(path)],
        "losslint": ["losslint", "check", str(path)],
        "trainproof": ["trainproof", "doctor", str(path)],
    }
    return {tool: round(_run(commands[tool])[1], 2) for tool in tools}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    installed = [name for name in PEERS if shutil.which(name)]
    entries = load_manifest()
    table = {"doctor": score(entries, [ours(e) for e in entries], strict=False)}
    for name in installed:
        outcomes = [PEERS[name](CORPUS / e["file"]) for e in entries]
        table[name] = score(entries, outcomes, strict=False)
    big = million_jsonl(args.dir, args.records)
    seconds = timed_big_file(big, ["doctor", *installed])
    if args.json:
        print(json.dumps({"corpus": table, "big_jsonl_seconds": seconds}, indent=2))
        return
    if not installed:
        print("losslint and trainproof are not installed: pip install losslint trainproof")
    print(f"{'tool':<12} {'read':>7} {'caught':>8} {'false alarms':>13} {'findings/file':>14}")
    for name, row in table.items():
        print(
            f"{name:<12} {row['read']:>3}/{row['files']:<3} {row['caught']:>4}/{row['sick']:<3}"
            f" {row['false_alarms']:>9}/{row['healthy']:<3} {row['findings_per_file']:>14}"
        )
    print(f"\n{args.records:,}-record JSONL, wall seconds of the command line:")
    for name, value in seconds.items():
        print(f"  {name:<12} {value:>8}")


if __name__ == "__main__":
    main()

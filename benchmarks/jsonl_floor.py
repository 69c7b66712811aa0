"""The JSON-lines parser against the standard library's decoder (issue 8): `doctor
postmortem`'s read of a 1,000,000-record JSONL log beside the per-line decoding that any
parser built on `json` pays. The parser now decodes blocks of lines with orjson, so it runs
under that former floor (a ratio below 1).

In one process, on the HF-style log of `detector_throughput.py` (generated once, reused), and
alternating so that a busy machine slows all of them alike, it times:
  - json.loads per line: the standard library's decoder on each line, nothing else (the
    floor that is usually quoted);
  - the decoder's scanner per line: `json.loads` without its per-call Python overhead, which
    the parser calls directly (the real floor);
  - the jsonl parser: those records, each turned into a `Record` (names mapped, numbers
    checked, the step found), the skips counted;
  - parse only: the parser behind the postmortem's source plumbing (format detection, the
    per-source count, the merge), as `detector_throughput.py` times it.
and prints the median CPU seconds of each and the parser's ratio to each floor.

    python benchmarks/jsonl_floor.py [--records 1000000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detector_throughput import generate  # noqa: E402  (the same log, generated once)


def json_loads_per_line(path: Path) -> int:
    lines = 0
    with open(path, encoding="utf-8") as file:
        for line in file:
            json.loads(line)
            lines += 1
    return lines


def scanner_per_line(path: Path) -> int:
    scan = json.JSONDecoder().scan_once
    lines = 0
    with open(path, encoding="utf-8") as file:
        for line in file:
            scan(line, 0)
            lines += 1
    return lines


def jsonl_parser(path: Path) -> int:
    from distill_doctor.postmortem.parsers import ParseOptions, jsonl
    from distill_doctor.postmortem.skipped import Skipped

    return sum(1 for _ in jsonl.parse(path, Skipped(str(path)), ParseOptions()))


def parse_only(path: Path) -> int:
    from distill_doctor.postmortem.analysis import open_sources
    from distill_doctor.postmortem.parsers import ParseOptions

    return sum(1 for _ in open_sources([path], ParseOptions())[1])


TIMED = {
    "json_loads_per_line": json_loads_per_line,
    "scanner_per_line": scanner_per_line,
    "jsonl_parser": jsonl_parser,
    "parse_only": parse_only,
}


def measure(path: Path, repeat: int) -> dict[str, float]:
    cpu: dict[str, list[float]] = {name: [] for name in TIMED}
    for _ in range(repeat):
        for name, run in TIMED.items():
            start = time.process_time()
            run(path)
            cpu[name].append(time.process_time() - start)
    result = {f"{name}_cpu_s": round(statistics.median(s), 3) for name, s in cpu.items()}
    for floor in ("json_loads_per_line", "scanner_per_line"):
        for name in ("jsonl_parser", "parse_only"):
            ratio = statistics.median(cpu[name]) / statistics.median(cpu[floor])
            result[f"{name}_vs_{floor}"] = round(ratio, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    path = args.dir / f"hf_{args.records}.jsonl"
    generate(path, args.records)
    result = {"records": args.records, "repeat": args.repeat, **measure(path, args.repeat)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.records:,} HF-style JSON lines, median CPU of {args.repeat} alternating runs")
    for name in TIMED:
        print(f"  {name.replace('_', ' '):22s} {result[f'{name}_cpu_s']:6.2f} s")
    for name in ("jsonl_parser", "parse_only"):
        print(
            f"  {name.replace('_', ' ')}: {result[f'{name}_vs_scanner_per_line']}x the scanner, "
            f"{result[f'{name}_vs_json_loads_per_line']}x json.loads"
        )


if __name__ == "__main__":
    main()

"""`doctor check` on real public configs: read / right / missed / false per file.

    python benchmarks/real_configs.py            # a table
    python benchmarks/real_configs.py --json     # the same as JSON

The configs and what a careful engineer flags in each (written before the tool read them) are
in tests/check/real_configs/MANIFEST.yaml. Each file is checked as a user would, with
`doctor check FILE` in a subprocess: read means exit 0 or 1 (2 is "could not read"), right
an expected finding that was raised, missed one that was not, false a warning or error nobody
expected.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "tests" / "check" / "real_configs"


def check(entry: dict) -> dict:
    path = CONFIGS / entry["file"]
    command = [sys.executable, "-m", "distill_doctor", "check", str(path), "--format", "json"]
    command += [str(arg) for arg in entry.get("args", [])]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    seconds = time.perf_counter() - start
    expected = set(entry["expected"])
    read = done.returncode in (0, 1)
    report = json.loads(done.stdout) if read else {}
    raised = {f["id"] for f in report.get("findings", []) if f["severity"] != "info"}
    return {
        "file": entry["file"],
        "read": read,
        "dialect": report.get("dialect"),
        "dialect_right": report.get("dialect") == entry["dialect"],
        "right": sorted(expected & raised),
        "missed": sorted(expected - raised),
        "false": sorted(raised - expected),
        "seconds": round(seconds, 2),
        "error": "" if read else done.stderr.strip()[:200],
    }


def totals(rows: list[dict]) -> dict:
    expected = sum(len(r["right"]) + len(r["missed"]) for r in rows)
    return {
        "files": len(rows),
        "read": sum(r["read"] for r in rows),
        "dialect_right": sum(r["dialect_right"] for r in rows),
        "right": sum(len(r["right"]) for r in rows),
        "missed": sum(len(r["missed"]) for r in rows),
        "false": sum(len(r["false"]) for r in rows),
        "expected": expected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    manifest = yaml.safe_load((CONFIGS / "MANIFEST.yaml").read_text())
    rows = [check(entry) for entry in manifest["configs"]]
    summary = totals(rows)
    if args.json:
        print(json.dumps({"configs": rows, "totals": summary}, indent=2))
        return
    print(f"{'file':<52} {'read':<5} {'dialect':<13} {'right':<24} {'missed':<24} false")
    for r in rows:
        dialect = (r["dialect"] or "-") + ("" if r["dialect_right"] else "!")
        print(
            f"{r['file']:<52} {'yes' if r['read'] else 'NO':<5} {dialect:<13} "
            f"{','.join(r['right']) or '-':<24} {','.join(r['missed']) or '-':<24} "
            f"{','.join(r['false']) or '-'}"
        )
    print(
        f"\nread {summary['read']}/{summary['files']}, dialect right "
        f"{summary['dialect_right']}/{summary['files']}, findings right {summary['right']}/"
        f"{summary['expected']}, missed {summary['missed']}, false {summary['false']}"
    )


if __name__ == "__main__":
    main()

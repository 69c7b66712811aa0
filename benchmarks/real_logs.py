"""`doctor postmortem` on the real-log corpus (tests/real_logs, see its manifest.json): how many
files it reads, its recall on the sick runs, its false alarms on the healthy ones, and the
findings per file, beside the diagnosis written for each file before the tool ran on it.

    python benchmarks/real_logs.py [--json]

recall (strict): sick runs where the report names an id the manifest expects.
recall (any):    sick runs with any warning or error finding (how the peers are scored).
false alarms:    healthy runs with an error finding (warnings on them are counted apart).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "real_logs"


@dataclass
class Outcome:
    """One tool's answer on one file."""

    read: bool
    findings: int = 0
    ids: list[str] = field(default_factory=list)
    worst: str | None = None  # error, warning, info or None
    seconds: float = 0.0


def load_manifest() -> list[dict]:
    return json.loads((CORPUS / "manifest.json").read_text())["logs"]


def ours(entry: dict) -> Outcome:
    """`doctor postmortem FILE --format json`, in process."""
    import time

    from typer.testing import CliRunner

    from distill_doctor.cli import app

    args = ["postmortem", str(CORPUS / entry["file"]), *entry.get("options", [])]
    start = time.perf_counter()
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    seconds = time.perf_counter() - start
    try:
        document = json.loads(result.stdout)
    except ValueError:
        return Outcome(read=False, seconds=seconds)
    findings = document["findings"]
    severities = {f["severity"] for f in findings}
    worst = next((s for s in ("error", "warning", "info") if s in severities), None)
    return Outcome(
        read=document["records"] > 0,
        findings=len(findings),
        ids=sorted({f["id"] for f in findings}),
        worst=worst,
        seconds=seconds,
    )


def score(entries: list[dict], outcomes: list[Outcome], strict: bool) -> dict[str, object]:
    """Read, recall, false alarms and findings per file of one tool over the corpus."""
    sick = [(e, o) for e, o in zip(entries, outcomes, strict=True) if e["expected"] == "sick"]
    healthy = [(e, o) for e, o in zip(entries, outcomes, strict=True) if e["expected"] == "healthy"]

    def caught(entry: dict, outcome: Outcome) -> bool:
        if strict:
            return bool(set(outcome.ids) & set(entry["expect_any"]))
        return outcome.worst in ("error", "warning")

    return {
        "files": len(entries),
        "read": sum(o.read for o in outcomes),
        "sick": len(sick),
        "caught": sum(caught(e, o) for e, o in sick),
        "healthy": len(healthy),
        "false_alarms": sum(o.worst == "error" for _, o in healthy),
        "warnings_on_healthy": sum(o.worst == "warning" for _, o in healthy),
        "findings_per_file": round(sum(o.findings for o in outcomes) / max(1, len(outcomes)), 2),
        "missed": [e["file"] for e, o in sick if not caught(e, o)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    entries = load_manifest()
    outcomes = [ours(e) for e in entries]
    strict, lenient = score(entries, outcomes, strict=True), score(entries, outcomes, False)
    if args.json:
        rows = [
            {
                "file": e["file"],
                "expected": e["expected"],
                "expect_any": e["expect_any"],
                **asdict(o),
            }
            for e, o in zip(entries, outcomes, strict=True)
        ]
        print(json.dumps({"strict": strict, "any": lenient, "files": rows}, indent=2))
        return
    print(f"{'file':<62} {'expected':<8} {'found':<44} n")
    for entry, outcome in zip(entries, outcomes, strict=True):
        found = ", ".join(outcome.ids) if outcome.read else "NOT READ"
        print(f"{entry['file']:<62} {entry['expected']:<8} {found[:44]:<44} {outcome.findings}")
    print()
    print(f"read: {strict['read']}/{strict['files']} files")
    print(f"recall (strict, expected id): {strict['caught']}/{strict['sick']} sick runs")
    print(f"recall (any warning/error):   {lenient['caught']}/{lenient['sick']} sick runs")
    print(
        f"false alarms: {strict['false_alarms']}/{strict['healthy']} healthy runs with an error"
        f" ({strict['warnings_on_healthy']} with a warning)"
    )
    print(f"findings per file: {strict['findings_per_file']}")
    print("missed (strict): " + (", ".join(strict["missed"]) or "none"))


if __name__ == "__main__":
    main()

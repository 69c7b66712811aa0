"""Issue 9's hostile and careless inputs, each run as a user would run it: a `doctor`
subprocess (a shell for pipes and process substitution) with a timeout and a memory cap.

Prints one row per input: the exit code (and the codes a clean answer may have), seconds, the
peak resident memory of the process and its children (ru_maxrss from wait4; it counts this
script's own pages at the fork, a floor the summary gives), whether a Python
traceback appeared, and a verdict: `clean`, or what went wrong (a traceback, a timeout, an
unexpected exit code, or a post-condition such as "the input file was rewritten"). `--json`
prints the same rows as JSON. The script itself never hangs: every child has a deadline
(SIGKILL to its process group after it), and background trainers are stopped in a `finally`.

    python benchmarks/hostile_inputs.py [--only TEXT] [--timeout 60] [--mem-gb 8]
                                        [--big-mb 200] [--json]

The trainer inputs use the bundled demo models (offline) on a tiny corpus, a few steps each.
Run as root, "a folder the user cannot enter" and "a read-only place" cannot be made (root
passes permission checks): those rows then say so in the verdict instead of testing anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "postmortem" / "fixtures"
DOCTOR = [sys.executable, "-m", "distill_doctor"]
ANY = frozenset({0, 1, 2})  # every documented outcome: only a traceback or a hang fails
WORDS = "the a cat dog sat ran on under mat rug and slept quickly slowly big small".split()
TRACEBACK = "Traceback (most recent call last)"
AS_ROOT = os.geteuid() == 0


Check = Callable[[str], "str | None"]  # the output -> what went wrong, or None


@dataclass
class Case:
    """One hostile input: a command template (see `Workspace.command`), the exit codes a
    clean answer may have, and optionally: `setup(ws, run_dir)` before it; `check(ws,
    run_dir)`, armed before it, returning a Check run after it; limits (`nofile`, `fsize`:
    `ulimit -n`, `ulimit -f`); a `background` command running meanwhile; `run`: the run
    directory the setup makes (default: a fresh copy of the trained run when the command
    names RUN)."""

    section: str
    name: str
    command: str
    expect: set[int] | frozenset[int]
    setup: Callable[[Workspace, Path], None] | None = None
    check: Callable[[Workspace, Path], Check] | None = None
    nofile: int | None = None
    fsize: int | None = None
    background: str | None = None
    note: str = ""
    run: str | None = None


@dataclass
class Row:
    section: str
    input: str
    exit: int | None
    expected: list[int]
    seconds: float
    peak_mb: float
    traceback: bool
    verdict: str
    output_kb: float = 0.0
    detail: str = field(default="")


def doctor(*args: str) -> list[str]:
    return [*DOCTOR, *args]


def with_limits(argv: list[str] | str, mem_bytes: int, nofile: int | None, fsize: int | None):
    """The command run by bash after `ulimit`s, as a user would type them: -v caps the address
    space, -n the open files, -f the size of any file written (a "full disk": writes past it
    fail with EFBIG). Not a preexec_fn: a forked copy of this script would count in the
    child's peak memory; bash is spawned small and then execs the command."""
    limits = [f"ulimit -v {mem_bytes // 1024}"]
    if nofile is not None:
        limits.append(f"ulimit -n {nofile}")
    if fsize is not None:
        limits.append(f"ulimit -f {fsize // 1024}")  # bash counts in 1024-byte blocks
    prefix = "; ".join(limits) + "; "
    if isinstance(argv, str):
        return ["bash", "-c", prefix + argv]
    return ["bash", "-c", prefix + 'exec "$@"', "bash", *argv]


class Captured:
    """What a child printed: the first and last parts (a child may print megabytes) and the
    total size. Read from a pipe by a thread: a pipe, unlike a file, is not cut short by the
    `ulimit -f` that stands in for a full disk."""

    HEAD, TAIL = 256 * 1024, 1024 * 1024

    def __init__(self, stream) -> None:
        self.head, self.tail, self.size = bytearray(), bytearray(), 0
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        while chunk := stream.read1(65536):
            self.size += len(chunk)
            room = self.HEAD - len(self.head)
            self.head += chunk[:room]
            self.tail += chunk[room:] if room > 0 else chunk
            del self.tail[: -self.TAIL]

    def text(self) -> str:
        self.thread.join(timeout=10)
        gap = "\n[...]\n" if self.size > len(self.head) + len(self.tail) else ""
        return (bytes(self.head) + gap.encode() + bytes(self.tail)).decode("utf-8", "replace")


def run_child(
    argv: list[str] | str, cwd: Path, timeout: float, mem_bytes: int, case: Case | None = None
) -> tuple[int | None, float, float, str, int]:
    """(exit code or None on timeout, seconds, peak RSS in MB, output, output bytes)."""
    nofile, fsize = (case.nofile, case.fsize) if case else (None, None)
    started = time.perf_counter()
    process = subprocess.Popen(
        with_limits(argv, mem_bytes, nofile, fsize),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a timeout kills it and its children
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "OMP_NUM_THREADS": "1"},
    )
    output = Captured(process.stdout)
    code: int | None = None
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # rusage of this child alone
        if pid:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.perf_counter() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    process.returncode = -signal.SIGKILL if code is None else code  # reaped by wait4 above
    text = output.text()
    process.stdout.close()
    return code, seconds, usage.ru_maxrss / 1024, text, output.size


# --- fixtures -------------------------------------------------------------------------------


def corpus_text(documents: int = 300) -> str:
    rng = random.Random(0)
    words = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))  # noqa: E731
    return "\n\n".join(words() for _ in range(documents))


def write_trainer_state(path: Path, megabytes: int) -> None:
    """An HF `trainer_state.json` of about `megabytes` MB (a long log_history), written in
    chunks so that this script stays small too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        file.write('{"global_step": 0, "log_history": [')
        step, written = 0, 0
        while written < megabytes * 1_000_000:
            entries = (
                {
                    "epoch": s / 1000,
                    "grad_norm": 1.0,
                    "learning_rate": 5e-5,
                    "loss": 2 + 1 / s,
                    "step": s,
                }  # fmt: skip
                for s in range(step + 1, step + 10_001)
            )
            chunk = ",".join(map(json.dumps, entries))
            file.write(("," if step else "") + chunk)
            written, step = written + len(chunk), step + 10_000
        file.write("]}")


def lightning_csv() -> str:
    """A Lightning metrics.csv whose epoch column is empty: 143 rows of step losses."""
    rows = ["epoch,step,train_loss_step,train_loss_epoch"]
    return "\n".join(rows + [f",{i},{2.0 - i / 200:.4f}," for i in range(1, 144)]) + "\n"


def events_with(finding: dict) -> str:
    finding_line = json.dumps({"type": "finding", "step": 3, **finding})
    return (FIXTURES / "events_healthy.jsonl").read_text() + finding_line + "\n"


DEEP = "[" * 100_000 + "]" * 100_000
BAD_MODEL_CONFIG = {"model_type": "gpt2", "n_layer": "twelve", "n_embd": "big", "vocab_size": 9}
FILES = {  # name in the workspace: its text
    "corpus.txt": corpus_text(),
    "long-eval.log": "[Eval] " + "x" * 80_000 + "\n",
    "long-loss.log": "loss=1.0" + " 1" * 40_000 + "\n",
    "deep.json": '{"a": ' + DEEP + "}",
    "deep-first.jsonl": DEEP + "\n" + (FIXTURES / "events_healthy.jsonl").read_text(),
    "digits.json": '{"batch_size": ' + "9" * 5000 + "}",
    "epochs-inf.json": '{"epochs": Infinity}',
    "temp-1e300.json": '{"temperature": 1e300}',
    "long-name.json": json.dumps({"teacher_model": "m" * 5000}),
    "tilde-user.json": json.dumps({"teacher_model": "~nosuchuser/x"}),
    "badmodel/config.json": json.dumps(BAD_MODEL_CONFIG),
    "locked/in.json": (FIXTURES / "seed_config.json").read_text(),
    "severity.jsonl": events_with({"id": "x", "severity": "catastrophic", "message": "m"}),
    "evidence.jsonl": events_with({"id": "x", "severity": "error", "evidence": [1, 2]}),
    "epochs-1e300.json": '{"epochs": 1e300}',
    "lr-inf.json": '{"learning_rate": Infinity}',
    "top-k.json": '{"kd_top_k": 1000000000000000000}',
    "dup.json": '{"batch_size": 8, "batch_size": 2}',
    "lightning/metrics.csv": lightning_csv(),
}


class Workspace:
    """The temporary folder every input lives in, and the trained demo run they share."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def build(self, big_mb: int, timeout: float, mem_bytes: int) -> None:
        for name, text in FILES.items():
            (self / name).parent.mkdir(parents=True, exist_ok=True)
            (self / name).write_text(text, encoding="utf-8")
        shutil.copy(FIXTURES / "seed_config.json", self / "in.json")
        shutil.copy(FIXTURES / "seed_broken.log", self / "sick.log")
        (self / "model-cfg.json").write_text(json.dumps({"teacher_model": str(self / "badmodel")}))
        with (self / "unknown-keys.json").open("w") as file:  # 9.7 MB, streamed: see `floor`
            file.write('{"batch_size": 8')
            file.writelines(f', "k{i}": {i}' for i in range(700_000))
            file.write("}")
        write_trainer_state(self / "big/trainer_state.json", big_mb)
        (self / "many").mkdir()
        for i in range(1100):
            shutil.copy(FIXTURES / "events_healthy.jsonl", self / f"many/run{i:04d}.jsonl")
        os.mkfifo(self / "fifo.log")
        (self / "readonly").mkdir()
        (self / "readonly").chmod(0o555)
        (self / "locked").chmod(0)
        argv = [*DOCTOR, *self.train_args(), "--max-steps", "2", "--run-dir", str(self / "base")]
        code, _, _, text, _ = run_child(argv, self.root, timeout, mem_bytes)
        if code != 0:
            raise SystemExit(f"could not train the base run (exit {code}):\n{text[-3000:]}")

    def train_args(self) -> list[str]:
        return [
            "train", "--data", str(self / "corpus.txt"), "--set", "max_length=32",
            "--set", "batch_size=4", "--set", "eval_max_batches=1", "--set", "eval_steps=1000",
            "--set", "save_steps=1", "--set", "keep_last=3", "--set", "epochs=100",
            "--set", "warmup_steps=0",  # a 2-step run: the demo's 40 would be a pre-flight error
        ]  # fmt: skip

    def command(self, template: str) -> list[str] | str:
        """A row's command: `doctor` expands to the CLI (`doctor train` of a new run: with
        the tiny run's options), `W/` to the workspace. Pipes, <( ) and globs run in bash."""
        text = template.replace("W/", f"{self.root}/")
        if "--resume" not in text:
            text = text.replace("doctor train", f"doctor {shlex.join(self.train_args())}")
        text = text.replace("doctor", shlex.join(DOCTOR), 1)
        return text if any(c in text for c in "|<*") else shlex.split(text)


# --- setup and checks around an input ---------------------------------------------------------


def fresh_run(ws: Workspace, name: str) -> Path:
    shutil.rmtree(ws / name, ignore_errors=True)
    return Path(shutil.copytree(ws / "base", ws / name))


def tear(victim: str) -> Callable[[Workspace, Path], None]:
    def setup(_ws: Workspace, run_dir: Path) -> None:
        path = run_dir / "checkpoints/step-000002" / victim
        with path.open("r+b") as file:
            file.truncate(path.stat().st_size // 2)

    return setup


def hard_link(ws: Workspace, _run_dir: Path) -> None:
    (ws / "hl.json").unlink(missing_ok=True)
    os.link(ws / "in.json", ws / "hl.json")


def early_sigterm(ws: Workspace, run_dir: Path) -> None:
    """A fresh run SIGTERMed as soon as its config.json appears, before any checkpoint: the
    state the issue calls a dead end."""
    shutil.rmtree(run_dir, ignore_errors=True)
    argv = [*DOCTOR, *ws.train_args(), "--max-steps", "50", "--run-dir", str(run_dir)]
    process = subprocess.Popen(argv, cwd=ws.root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "config.json").exists() and process.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def unchanged(name: str) -> Callable[[Workspace, Path], Check]:
    """A check (armed at setup) that a file still holds the bytes it had before the command:
    `W/name` in the workspace, else `name` in the input's run directory."""

    def arm(ws: Workspace, run_dir: Path) -> Check:
        path = ws / name[2:] if name.startswith("W/") else run_dir / name
        before = path.read_bytes()
        return lambda _output: None if path.read_bytes() == before else f"{name} was rewritten"

    return arm


def checkpoints_intact(ws: Workspace, run_dir: Path) -> Check:
    def check(_output: str) -> str | None:
        names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
        return None if names == ["step-000001", "step-000002"] else f"checkpoints: {names}"

    return check


def says(words: str) -> Callable[[Workspace, Path], Check]:
    def arm(_ws: Workspace, _run_dir: Path) -> Check:
        return lambda output: None if words in " ".join(output.split()) else f"no {words!r}"

    return arm


def quiet(_ws: Workspace, _run_dir: Path) -> Check:
    return lambda output: f"printed {len(output):,} chars" if len(output) > 100_000 else None


def warns_duplicate(_ws: Workspace, _run_dir: Path) -> Check:
    said = ("duplicate", "set twice")  # `doctor check` says "'batch_size' is set twice (8, then 2)"
    return lambda output: (
        None if any(w in output.lower() for w in said) else "no duplicate-key warning"
    )


# --- the inputs -------------------------------------------------------------------------------

DATA, HANG, ERR, ALSO = "data loss", "hangs", "errors", "also"
RUN = "W/run"  # a fresh copy of the trained 2-step run (checkpoints at steps 1 and 2)
ROOT_NOTE = "as root: permissions do not apply" if os.geteuid() == 0 else ""
CASES = [
    Case(DATA, "check in.json --fix --output hl.json (a hard link of in.json)",
         "doctor check W/in.json --fix --output W/hl.json", ANY,
         setup=hard_link, check=unchanged("W/in.json")),
    Case(DATA, "train --resume RUN --student OTHER",
         f"doctor train --resume {RUN} --student W/base/student", {2},
         check=unchanged("config.json")),
    Case(DATA, "train --resume RUN --set feature_weight=0.5",
         f"doctor train --resume {RUN} --set feature_weight=0.5", {2},
         check=unchanged("config.json")),
    Case(DATA, "cat sick.log | postmortem /dev/stdin",
         "cat W/sick.log | doctor postmortem /dev/stdin", {1}),
    Case(DATA, "postmortem <(cat sick.log)", "doctor postmortem <(cat W/sick.log)", {1}),
    Case(DATA, "cat sick.log | postmortem -", "cat W/sick.log | doctor postmortem -", {1}),
    Case(DATA, "train --resume RUN (newest model.safetensors truncated)",
         f"doctor train --resume {RUN} --max-steps 3", {0}, setup=tear("model.safetensors")),
    Case(DATA, "train --resume RUN (newest trainer_state.pt truncated)",
         f"doctor train --resume {RUN} --max-steps 3", {0}, setup=tear("trainer_state.pt")),
    Case(HANG, "check /dev/zero", "doctor check /dev/zero", {2}),
    Case(HANG, "check /dev/urandom", "doctor check /dev/urandom", {2}),
    Case(HANG, "postmortem FIFO (no writer)", "doctor postmortem W/fifo.log", {2}),
    Case(HANG, "postmortem a log line of [Eval] + 80 KB", "doctor postmortem W/long-eval.log", ANY),
    Case(HANG, "postmortem a log line of loss=1.0 + 80 KB", "doctor postmortem W/long-loss.log",
         ANY),
    Case(HANG, "postmortem trainer_state.json of BIG MB",
         "doctor postmortem W/big/trainer_state.json", ANY),
    Case(HANG, "check a 9.7 MB config with 700k unknown keys", "doctor check W/unknown-keys.json",
         {1, 2}, check=quiet),
    Case(HANG, "train --data /dev/zero", "doctor train --data /dev/zero --run-dir W/run-zero", {2}),
    Case(ERR, "check config nested 100,000 deep", "doctor check W/deep.json", {2}),
    Case(ERR, "postmortem --config nested 100,000 deep",
         "doctor postmortem W/sick.log --config W/deep.json", {2}),
    Case(ERR, "postmortem log whose first line is nested 100,000 deep",
         "doctor postmortem W/deep-first.jsonl", ANY),
    Case(ERR, "check config with an integer of 5,000 digits", "doctor check W/digits.json", ANY),
    Case(ERR, "check config with epochs: Infinity", "doctor check W/epochs-inf.json", ANY),
    Case(ERR, "check config with temperature: 1e300", "doctor check W/temp-1e300.json", ANY),
    Case(ERR, "check config whose model's config.json has a string for a number",
         "doctor check W/model-cfg.json", ANY),
    Case(ERR, "check config with a 5,000-character model name", "doctor check W/long-name.json",
         ANY),
    Case(ERR, "check config with teacher_model ~nosuchuser/x", "doctor check W/tilde-user.json",
         ANY),
    Case(ERR, "check ~nosuchuser/x", "doctor check '~nosuchuser/x'", {2}),
    Case(ERR, "check a file in a folder the user cannot enter", "doctor check W/locked/in.json",
         ANY if ROOT_NOTE else {2}, note=ROOT_NOTE),
    Case(ERR, "check --fix --output /dev/full", "doctor check W/in.json --fix --output /dev/full",
         {2}),
    Case(ERR, "check --fix --output /sys/x.json",
         "doctor check W/in.json --fix --output /sys/x.json", {2}),
    Case(ERR, "check --fix --output /proc/x.json",
         "doctor check W/in.json --fix --output /proc/x.json", {2}),
    Case(ERR, "check --fix --output into a read-only folder",
         "doctor check W/in.json --fix --output W/readonly/x.json", ANY if ROOT_NOTE else {2},
         note=ROOT_NOTE),
    Case(ERR, "postmortem events.jsonl with a finding of unknown severity",
         "doctor postmortem W/severity.jsonl", ANY),
    Case(ERR, "postmortem events.jsonl with a non-object evidence",
         "doctor postmortem W/evidence.jsonl", ANY),
    Case(ERR, "postmortem 1,100 files with ulimit -n 1024", "doctor postmortem W/many/*.jsonl", ANY,
         nofile=1024),
    Case(ERR, "train --run-dir /proc/x", "doctor train --max-steps 1 --run-dir /proc/x", {2}),
    Case(ERR, "train --run-dir FILE/x (under a regular file)",
         "doctor train --max-steps 1 --run-dir W/in.json/x", {2}),
    Case(ERR, "train --set device=cuda (exit 0 where there is CUDA)",
         "doctor train --max-steps 1 --set device=cuda --run-dir W/run-cuda", {0, 2}),
    Case(ERR, "train --resume RUN, disk full at the checkpoint (ulimit -f 1 MB)",
         f"doctor train --resume {RUN} --max-steps 3", {2}, check=checkpoints_intact,
         fsize=1 << 20),
    Case(ERR, "train --resume RUN on a full disk (ulimit -f 1 KB)",
         f"doctor train --resume {RUN} --max-steps 3", {2}, check=checkpoints_intact, fsize=1024),
    Case(ERR, "train --resume RUN on a full disk (ulimit -f 0: not even a temp file)",
         f"doctor train --resume {RUN} --max-steps 3", {2}, check=checkpoints_intact, fsize=0),
    Case(ERR, "two train --resume RUN at once (the second)",
         f"doctor train --resume {RUN} --max-steps 100000", {2},
         background=f"doctor train --resume {RUN} --max-steps 100000",
         check=says("another `doctor train`")),
    Case(ERR, "train --resume RUN after a SIGTERM before its first checkpoint",
         "doctor train --resume W/run-early --max-steps 50", {0}, setup=early_sigterm,
         run="W/run-early"),
    Case(ALSO, "check config with epochs: 1e300 (flag it: 1 or 2)",
         "doctor check W/epochs-1e300.json", {1, 2}),
    Case(ALSO, "check config with learning_rate: Infinity (1 or 2)", "doctor check W/lr-inf.json",
         {1, 2}),
    Case(ALSO, "check config with kd_top_k: 10**18 (1 or 2)", "doctor check W/top-k.json", {1, 2}),
    Case(ALSO, "check config with a duplicate key (warn)", "doctor check W/dup.json", ANY,
         check=warns_duplicate),
    Case(ALSO, "postmortem Lightning CSV, empty epoch column, 143 loss rows",
         "doctor postmortem W/lightning/metrics.csv", {0, 1}),
    Case(ALSO, 'train --resume RUN --max-steps 1 from step 2 ("2/1")',
         f"doctor train --resume {RUN} --max-steps 1", {2}, check=unchanged("config.json")),
]  # fmt: skip


@contextlib.contextmanager
def running(argv: list[str] | str | None, cwd: Path, started: Path) -> Iterator[None]:
    """A background process for the duration of an input, once `started` (its run's
    events.jsonl) shows its run event; stopped with SIGTERM (then SIGKILL) afterwards."""
    if argv is None:
        yield
        return
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if started.exists() and started.read_text().count('"type": "run"') >= 2:
                break  # the trained run's event, then the resumed one's
            time.sleep(0.1)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_case(case: Case, ws: Workspace, timeout: float, mem_bytes: int) -> Row:
    expected = sorted(case.expect)
    run_dir = ws / case.run.removeprefix("W/") if case.run else ws / RUN.removeprefix("W/")
    try:
        if case.run is None and RUN + " " in case.command:
            fresh_run(ws, run_dir.name)
        if case.setup:
            case.setup(ws, run_dir)
        check = case.check(ws, run_dir) if case.check else None
    except Exception as err:  # a fixture that cannot be made here is reported, not fatal
        return Row(case.section, case.name, None, expected, 0, 0, False, f"setup failed: {err}")
    background = ws.command(case.background) if case.background else None
    with running(background, ws.root, run_dir / "events.jsonl"):
        argv = ws.command(case.command)
        code, seconds, peak, text, size = run_child(argv, ws.root, timeout, mem_bytes, case)
    traceback = TRACEBACK in text
    problems = []
    if code is None:
        problems.append(f"timeout after {timeout:g}s")
    elif code not in case.expect:
        problems.append(f"exit {code}")
    if traceback:
        problems.append("traceback")
    if check is not None and code is not None and (failed := check(text)):
        problems.append(failed)
    verdict = ", ".join(problems) or "clean"
    if case.note:
        verdict += f" ({case.note})"
    last_line = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    return Row(case.section, case.name, code, expected, round(seconds, 2), round(peak, 1),
               traceback, verdict, round(size / 1024, 1), last_line[:200])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the inputs whose name contains this text")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per input")
    parser.add_argument("--mem-gb", type=float, default=8.0, help="address-space cap per input")
    parser.add_argument("--big-mb", type=int, default=200, help="size of the big trainer_state")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    mem_bytes = int(args.mem_gb * (1 << 30))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hostile-") as temp:
        ws = Workspace(Path(temp))
        try:
            ws.build(args.big_mb, args.timeout, mem_bytes)
            floor = run_child(["true"], ws.root, args.timeout, mem_bytes)[2]
            for case in CASES:
                if args.only and args.only not in case.name:
                    continue
                case.name = case.name.replace("BIG", str(args.big_mb))
                rows.append(run_case(case, ws, args.timeout, mem_bytes))
                if not args.json:
                    print_row(rows[-1], first=len(rows) == 1)
        finally:
            for folder in ("locked", "readonly"):  # so that the temp folder can be removed
                with contextlib.suppress(OSError):
                    (ws / folder).chmod(0o755)
    clean = sum(row.verdict.startswith("clean") for row in rows)
    if args.json:
        summary = {"inputs": len(rows), "clean": clean, "timeout_s": args.timeout,
                   "peak_mb_floor": round(floor, 1)}  # fmt: skip
        print(json.dumps({**summary, "rows": [row.__dict__ for row in rows]}, indent=1))
        return
    print(f"\n{clean} of {len(rows)} inputs clean (timeout {args.timeout:g} s, address space "
          f"{args.mem_gb:g} GB each; peak MB includes a {floor:.0f} MB floor: `true` run the "
          "same way, which counts this script's pages at the fork)")  # fmt: skip
    for row in rows:
        if not row.verdict.startswith("clean"):
            print(f"  NOT CLEAN  {row.input}: {row.verdict} · {row.detail}")


def print_row(row: Row, first: bool) -> None:
    if first:
        print(
            f"{'input':72s} {'exit':>4s} {'want':>6s} {'s':>6s} {'peak MB':>8s} {'tb':>3s}  verdict"
        )
    want = ",".join(map(str, row.expected))
    code = "-" if row.exit is None else str(row.exit)
    tb = "yes" if row.traceback else "no"
    print(f"{row.input[:72]:72s} {code:>4s} {want:>6s} {row.seconds:6.1f} {row.peak_mb:8.1f} "
          f"{tb:>3s}  {row.verdict}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

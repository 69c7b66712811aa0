"""Follow the logs of a run while it writes them: the record stream of `doctor watch`.

A target is one log file, `-` (a pipe), or a folder, looked through again every SCAN_SECONDS
for logs that appear: a bundled-trainer run's events.jsonl (which then stands for the
folder), TensorBoard event files, any file a postmortem parser recognises (HF stdout saved by
`tee`, tqdm and plain prints, JSON lines, Lightning's metrics.csv), and the checkpoints'
`trainer_state.json` of a Hugging Face output_dir.

Each followed log has a reader thread that runs the postmortem's own parser over its bytes as
they are written (`tail.GrowingInput`), so a parser keeps its state between writes (a tqdm
bar's count, an HF dict cut by a warning) and holds a partial last line until its end comes.
Records of several logs are merged by step as the postmortem merges them, except that a log
with nothing new holds no other back. A checkpoint's trainer_state.json is read once, when it
is complete: for the plan, and for its metrics only where no log streams them. Nothing here
prints: the caller gets `Update`s."""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from distill_doctor import records as R
from distill_doctor.errors import InputError
from distill_doctor.postmortem.formats import DOCUMENT_SUFFIXES, RUN_LOG, detect, sniff
from distill_doctor.postmortem.inputs import SNIFF_BYTES, check_regular, is_stream_name
from distill_doctor.postmortem.parsers import ParseOptions, hf_state
from distill_doctor.postmortem.runs import _NOT_LOGS as NOT_LOGS  # weights, archives, code
from distill_doctor.postmortem.skipped import Skipped
from distill_doctor.watchdog import board, run_plan
from distill_doctor.watchdog.tail import POLL_SECONDS, GrowingInput, Tail

SCAN_SECONDS = 1.0  # a new file in a followed folder is picked up within this
MAX_DEPTH = 4  # output_dir/runs/<date>/events.out.tfevents.*; lightning_logs/version_0/...
MAX_FOLLOWED = 64  # files followed at once (one thread each); more is not one run
MAX_HELD = 10_000  # records held back for the merge before order gives way to memory
QUEUE_UPDATES = 10_000
_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


@dataclass
class Update:
    """What the follow saw. kind: record, plan (facts for `RunPlan`), checkpoint (step),
    notice (a line for the user), error (the target is not a log: text)."""

    kind: str
    record: dict[str, object] = field(default_factory=dict)
    facts: dict[str, float | int | None] = field(default_factory=dict)
    step: int | None = None
    text: str = ""
    source: _Source | None = None


class _Source:
    """One followed log and its reader thread."""

    def __init__(self, follower: Follower, name: str, path: Path | None, fd: int | None) -> None:
        self.follower = follower
        self.name = name
        self.path = path
        self.fd = fd
        self.tail = Tail(follower.stop, path, fd)
        self.skipped = Skipped(name)
        self.last_step: int | None = None  # the highest step it gave
        self.thread = threading.Thread(target=self._run, name=f"follow {name}", daemon=True)

    @property
    def quiet(self) -> bool:
        return self.tail.quiet or not self.thread.is_alive()

    def _put(self, update: Update) -> None:
        update.source = self
        while not self.follower.stop.is_set():
            try:
                self.follower.queue.put(update, timeout=POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _plan(self, facts: dict[str, float | int | None]) -> None:
        self._put(Update("plan", facts=facts))

    def _run(self) -> None:
        try:
            while not self.follower.stop.is_set():
                seen = self.last_step
                for record in self._records():
                    step = record.get(R.STEP)
                    if seen is not None and isinstance(step, int) and step <= seen:
                        continue  # already given before the file was replaced
                    if isinstance(step, int):
                        self.last_step = max(step, self.last_step or 0)
                    self._put(Update("record", record=record))
                change, self.tail = self.tail.change, Tail(self.follower.stop, self.path, self.fd)
                if change is None:
                    return
                done = f" (steps up to {self.last_step} already read)" if self.last_step else ""
                self._put(Update("notice", text=f"{self.name} was {change}; reading it anew{done}"))
        except Exception as error:  # noqa: BLE001 - one bad log must not end the watch
            self._put(Update("notice", text=f"{self.name}: stopped reading it ({error!r})"))

    def _records(self) -> Iterator[dict[str, object]]:
        if self.path is not None and "tfevents" in self.path.name:
            yield from board.records(self.tail, self.skipped, self.follower.options, self._plan)
            return
        found = self._sniffed()
        if found is None:
            return
        parser, head = found
        suffix = self.path.suffix if self.path is not None else ""
        source = GrowingInput(self.name, self.tail, head, suffix)
        yield from parser.parse(source, self.skipped, self.follower.options)

    def _sniffed(self) -> tuple[ModuleType, bytes] | None:
        """The parser for the log, once its complete lines show its format: waits for them
        (a log may start empty, or with pages of warnings)."""
        head = b""
        while len(head) < SNIFF_BYTES:
            more = self.tail.read()
            head += more
            lines = head[: head.rfind(b"\n") + 1]
            if more and lines.strip():
                probe = GrowingInput(
                    self.name, self.tail, lines, self.path.suffix if self.path else ""
                )
                forced = self.follower.format_in
                parser = detect(probe, forced) if forced else sniff(probe)
                if parser is not None:
                    return parser, head
            if self.tail.ended or self.tail.change or self.follower.stop.is_set():
                return None
            if not more:
                self.tail.quiet = True
                self.tail.wait()
        self._put(Update("error", text=f"{self.name}: not a training log this tool recognises"))
        return None


class Follower:
    """The logs of one run, followed: `updates()` hands out what came, merged by step."""

    def __init__(
        self, target: str, options: ParseOptions | None = None, format_in: str | None = None
    ) -> None:
        self.target = target
        self.options = options or ParseOptions()
        self.format_in = format_in
        self.stop = threading.Event()
        # Bounded: a reader far ahead of the detectors (a long history) waits for them.
        self.queue: queue.Queue[Update] = queue.Queue(maxsize=QUEUE_UPDATES)
        self.found: list[Update] = []  # what the folder scans found (this thread never waits)
        self.sources: list[_Source] = []
        self.held: dict[_Source, deque[dict[str, object]]] = {}
        self.known: set[Path] = set()  # followed, or looked at and not a log (by its path)
        self.files: set[tuple[int, int] | None] = set()  # (device, inode) of followed files
        self.unsniffed: dict[Path, int] = {}  # candidates not yet recognised: size when seen
        self.checkpoint = -1  # the newest checkpoint whose trainer_state.json was read
        self.scanned = 0.0
        self.given_step: int | None = None  # the highest step handed out
        self.root: Path | None = None
        self._open_target()

    # --- what is followed ---------------------------------------------------------------

    def _open_target(self) -> None:
        if is_stream_name(self.target):
            if self.target in ("-", "/dev/stdin") and sys.stdin.isatty():
                raise InputError(
                    "stdin is a terminal: pipe a run's output in (`python train.py 2>&1 | "
                    "doctor watch -`) or name its log file or output folder."
                )
            fd = sys.stdin.fileno() if self.target in ("-", "/dev/stdin") else _open_fd(self.target)
            self._follow(
                _Source(self, "<stdin>" if fd == sys.stdin.fileno() else self.target, None, fd)
            )
            return
        path = Path(self.target)
        check_regular(path)
        if path.is_dir():
            if self.format_in is not None:
                raise InputError(
                    "--format-in names the format of one log: give the log file (or `-`), "
                    "not a folder."
                )
            self.root = path
            self._scan()
            return
        if path.suffix.lower() in DOCUMENT_SUFFIXES and self.format_in is None:
            raise InputError(
                f"{path}: a document (Markdown or similar), not a training log. If it really is "
                "a log, name its format with --format-in."
            )
        if path.name == "trainer_state.json":
            raise InputError(
                f"{path}: a checkpoint's state is rewritten, not appended to; watch the run's "
                "output folder (it follows every new checkpoint and its TensorBoard events)."
            )
        self._follow(_Source(self, str(path), path, None))

    def _follow(self, source: _Source) -> None:
        if len(self.sources) >= MAX_FOLLOWED:
            return
        if source.path is not None:
            self.known.add(source.path)
            self.files.add(_file_id(source.path))
            self.files.discard(None)
        self.sources.append(source)
        self.held[source] = deque()
        source.thread.start()
        if source.path is not None and self.root is not None:
            shown = source.path.relative_to(self.root)
            self.found.append(Update("notice", text=f"following {shown}"))

    @property
    def is_stream(self) -> bool:
        return self.root is None and self.sources[0].fd is not None

    @property
    def ended(self) -> bool:
        """A pipe's writer closed it and everything it wrote has been handed out."""
        return (
            self.is_stream
            and not self.sources[0].thread.is_alive()
            and self.queue.empty()
            and not self.held[self.sources[0]]
        )

    def _scan(self) -> None:
        """New logs and new checkpoints under the folder."""
        self.scanned = time.monotonic()
        assert self.root is not None
        if (self.root / RUN_LOG).is_file():
            if self.root / RUN_LOG not in self.known:
                self._follow(_Source(self, RUN_LOG, self.root / RUN_LOG, None))
            return
        checkpoints: list[tuple[int, Path]] = []
        for path in _walk(self.root, 0, checkpoints):
            if path in self.known:
                continue
            if _file_id(path) in self.files:  # a followed log renamed (rotated): read already
                self.known.add(path)
                continue
            if "tfevents" in path.name:
                self._follow(_Source(self, str(path.relative_to(self.root)), path, None))
            elif path.name != "trainer_state.json":
                self._consider(path)
        newest = max(checkpoints, default=None)
        if newest is not None and newest[0] > self.checkpoint:
            self._read_checkpoint(*newest)

    def _consider(self, path: Path) -> None:
        """Follow a file once its head shows a log format; look again only when it grew, and
        never again past 64 KiB of something else (a README, a tokenizer's merges.txt)."""
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size == self.unsniffed.get(path, -1) or size == 0:
            return
        self.unsniffed[path] = size
        try:
            parser = sniff(path)
        except InputError:
            return
        if parser is not None and parser is not hf_state:
            del self.unsniffed[path]
            self._follow(_Source(self, str(path.relative_to(self.root)), path, None))
        elif size >= SNIFF_BYTES or parser is hf_state:
            del self.unsniffed[path]
            self.known.add(path)

    def _read_checkpoint(self, number: int, state: Path) -> None:
        """A new checkpoint's trainer_state.json, once complete: the plan; its metrics only
        where no log streams them (their steps past those already given)."""
        try:
            with open(state, "rb") as file:
                complete = file.read().rstrip().endswith(b"}")
        except OSError:
            return
        if not complete:
            return  # being written: the next scan reads it
        self.checkpoint = number
        self.found.append(Update("plan", facts=run_plan.checkpoint_state_facts(state)))
        if not any(s.path is not None for s in self.sources):
            for record in hf_state.parse(state, Skipped(str(state)), self.options):
                step = record.get(R.STEP)
                if isinstance(step, int) and step > (self.given_step or 0):
                    self.found.append(Update("record", record=record))
        self.found.append(Update("checkpoint", step=number, text=str(state.parent)))

    # --- what came ----------------------------------------------------------------------

    def updates(self, timeout: float) -> list[Update]:
        """What came within `timeout` seconds (less when something comes), records merged
        by step across the logs."""
        if self.root is not None and time.monotonic() - self.scanned >= SCAN_SECONDS:
            self._scan()
        quiet = {source: source.quiet for source in self.sources}  # before the queue: see _release
        return self._take(timeout) + self._release(quiet)

    def rescan(self) -> list[Update]:
        """Look at the folder now (a checkpoint the run's log says is written); what that
        found. Records it gave wait for the next `updates()`."""
        if self.root is None:
            return []
        self._scan()
        return self._take(None)

    @property
    def last_data(self) -> float | None:
        """When a followed log last grew (or was found); None before any log is found: a
        run that has not started writing is waited for."""
        return max((source.tail.grew_at for source in self.sources), default=None)

    @property
    def caught_up(self) -> bool:
        """Every log was read to its end at least once, and all it gave was handed out."""
        return (
            all(source.quiet for source in self.sources)
            and self.queue.empty()
            and not self.found
            and not any(self.held.values())
        )

    def _take(self, timeout: float | None) -> list[Update]:
        """Drain the queue (waiting up to `timeout` for a first update): records are held
        for the merge, the rest handed out."""
        came, self.found = self.found, []
        try:
            if timeout is not None and not came:
                came.append(self.queue.get(timeout=timeout))
            while True:
                came.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        out: list[Update] = []
        for update in came:
            if update.kind == "record" and update.source is not None:
                self.held[update.source].append(update.record)
            else:
                out.append(update)
        return out

    def _release(self, quiet: dict[_Source, bool]) -> list[Update]:
        """The held records in step order, as far as no log that is still reading (not
        quiet when last looked at, so every record it had was already in the queue) may
        yet give a lower step."""
        out: list[Update] = []
        while True:
            heads = [s for s in self.sources if self.held[s]]
            if not heads:
                return out
            reading = [s for s in self.sources if not self.held[s] and not quiet.get(s, True)]
            if reading and max(len(self.held[s]) for s in heads) < MAX_HELD:
                return out
            first = min(heads, key=lambda s: _step(self.held[s][0]))
            record = self.held[first].popleft()
            step = record.get(R.STEP)
            if isinstance(step, int):
                self.given_step = max(step, self.given_step or 0)
            out.append(Update("record", record=record, source=first))

    def close(self) -> None:
        self.stop.set()
        for source in self.sources:
            source.thread.join(timeout=1.0)
            source.tail.close()


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _step(record: dict[str, object]) -> int:
    step = record.get(R.STEP)
    return step if isinstance(step, int) else 0


def _open_fd(name: str) -> int:
    try:
        return os.open(name, os.O_RDONLY)
    except OSError as err:
        raise InputError(f"{name}: cannot be read ({err.strerror}).") from None


def _walk(folder: Path, depth: int, checkpoints: list[tuple[int, Path]]) -> Iterator[Path]:
    """Files under a folder that may be logs; checkpoint folders are not entered (only their
    trainer_state.json is noted), nor hidden ones."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            found = _CHECKPOINT.match(entry.name)
            if found:
                state = path / "trainer_state.json"
                if state.is_file():
                    checkpoints.append((int(found.group(1)), state))
            elif depth < MAX_DEPTH:
                yield from _walk(path, depth + 1, checkpoints)
            continue
        suffix = path.suffix.lower()
        if not entry.is_file(follow_symlinks=False) or suffix in NOT_LOGS:
            continue
        if suffix in DOCUMENT_SUFFIXES or (
            suffix == ".json" and entry.name != "trainer_state.json"
        ):
            continue  # prose, or one JSON document (a config): never a growing log
        yield path

"""Which files are one run: `doctor postmortem runs/` or several unrelated files give one
verdict per run, and only the files of one run are merged.

The rule, for the files of one folder (files in different folders are never one run):
  - TensorBoard event files of a folder are one run (TensorBoard's own definition);
  - a file whose first records log a training loss leads a run; two such files are two runs
    (two `train.log` copies, or two trainer_state.json of other runs, do not merge);
  - files without a training loss (an eval-only log, an LR log) join the folder's one leader,
    or form a run of their own when there are none or several.
A stream (stdin) is a run of its own. `--same-run` merges everything, as the user says.

A folder given on the command line is walked: its events.jsonl stands for the folder, the
newest `checkpoint-N/trainer_state.json` for the checkpoints (each holds the history of the
ones before), and files that no format recognises (weights, READMEs) are passed over, as are
`.json` files other than trainer_state.json (configs: one document, never a log)."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from distill_doctor import records as R
from distill_doctor.errors import InputError
from distill_doctor.postmortem.formats import RUN_LOG, detect, sniff
from distill_doctor.postmortem.inputs import (
    LogInput,
    StreamInput,
    check_regular,
    is_stream_name,
    open_stream,
)
from distill_doctor.postmortem.parsers import ParseOptions, tensorboard
from distill_doctor.postmortem.skipped import Skipped

PEEK_RECORDS = 64  # records read to see whether a file logs a training loss
MAX_WALKED_FILES = 100_000
# Never logs: skipped in a walk without reading them.
_NOT_LOGS = frozenset(
    ".safetensors .bin .pt .pth .ckpt .npy .npz .h5 .onnx .gguf .msgpack .model .png .jpg "
    ".jpeg .gif .svg .pdf .gz .zip .tar .tgz .xz .bz2 .zst .pkl .pickle .arrow .parquet .so "
    ".pyc .py .ipynb .yaml .yml .toml .cfg .ini .lock".split()
)
_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


# NamedTuples, not dataclasses: see rules.base (their file lists grow in place; nothing else
# changes once they are made).
class Run(NamedTuple):
    name: str
    files: list[LogInput]


class _Unit(NamedTuple):
    """Files that stand or fall together: one log, or one folder's TensorBoard files."""

    folder: str
    files: list[LogInput]
    parser: ModuleType


def _walk(root: Path) -> list[Path]:
    """The log files under a folder, in path order (see the module's rules)."""
    if (root / RUN_LOG).is_file():
        return [root / RUN_LOG]
    found: list[Path] = []
    newest_state: dict[Path, tuple[int, Path]] = {}
    has_run_log: dict[Path, bool] = {}

    def under_run_log(path: Path) -> bool:
        """Whether a folder between the file and the root holds an events.jsonl."""
        for folder in path.parents:
            if folder not in has_run_log:
                has_run_log[folder] = (folder / RUN_LOG).is_file()
            if has_run_log[folder]:
                return True
            if folder == root:
                return False
        return False

    for path in sorted(root.rglob("*")):
        if len(found) > MAX_WALKED_FILES:
            raise InputError(f"{root}: over {MAX_WALKED_FILES:,} files; name the run folders.")
        relative = path.relative_to(root).parts
        if any(part.startswith(".") for part in relative) or path.suffix.lower() in _NOT_LOGS:
            continue
        if not path.is_file() or path.is_symlink():
            continue
        if path.suffix.lower() == ".json" and path.name != "trainer_state.json":
            continue  # one JSON document: a config, a tokenizer; JSON-lines logs are .jsonl
        if path.name == RUN_LOG:
            found.append(path)
            continue
        if under_run_log(path):
            continue
        checkpoint = _CHECKPOINT.match(path.parent.name)
        if path.name == "trainer_state.json" and checkpoint:
            number = int(checkpoint.group(1))
            run_folder = path.parent.parent
            if number >= newest_state.get(run_folder, (-1, path))[0]:
                newest_state[run_folder] = (number, path)
            continue
        found.append(path)
    for run_folder, (_, state) in newest_state.items():
        if not (run_folder / "trainer_state.json").is_file():
            found.append(state)
    return sorted(found)


def _units(paths: list[Path], streams: list[StreamInput], format_in: str | None) -> list[_Unit]:
    units: list[_Unit] = [_Unit("", [s], detect(s, format_in)) for s in streams]
    boards: dict[str, _Unit] = {}
    for path in paths:
        walked = path.is_dir()
        for file in _walk(path) if walked else [path]:
            if walked and format_in is None:
                parser = sniff(file)
                if parser is None:
                    continue
            else:
                parser = detect(file, format_in)
            folder = str(_run_folder(file))
            if parser is tensorboard:
                if folder in boards:
                    boards[folder].files.append(file)
                    continue
                boards[folder] = _Unit(folder, [file], parser)
                units.append(boards[folder])
                continue
            units.append(_Unit(folder, [file], parser))
        if walked and not any(u.folder.startswith(str(path)) for u in units):
            raise InputError(
                f"{path}: a folder with no log this tool recognises (an {RUN_LOG}, TensorBoard "
                "event files, a trainer_state.json, metrics.csv or a training log); give the "
                "log files themselves."
            )
    return units


def _run_folder(file: Path) -> Path:
    """A checkpoint's trainer_state.json belongs to the run folder above the checkpoint."""
    if file.name == "trainer_state.json" and _CHECKPOINT.match(file.parent.name):
        return file.parent.parent
    return file.parent


def _logs_training(unit: _Unit, options: ParseOptions) -> bool:
    if unit.parser is tensorboard or isinstance(unit.files[0], StreamInput):
        return True
    records = unit.parser.parse(unit.files[0], Skipped("peek"), options)
    for count, record in enumerate(records):
        if R.LOSS in record:
            return True
        if count >= PEEK_RECORDS:
            break
    return False


def _name(files: list[LogInput]) -> str:
    """A run's name: its one file, or the folder its files share."""
    if len(files) == 1:
        return str(files[0])
    folders = {str(f.parent) if isinstance(f, Path) else str(f) for f in files}
    return f"{folders.pop()} ({len(files)} files)" if len(folders) == 1 else f"{len(files)} files"


def group_runs(
    paths: list[Path], options: ParseOptions, format_in: str | None = None, same_run: bool = False
) -> list[Run]:
    """The runs the paths hold, each with its files, in the order given."""
    streams, files = [], []
    for path in paths:
        if is_stream_name(str(path)):
            streams.append(open_stream(path))
            continue
        check_regular(path)
        files.append(path)
    units = _units(files, streams, format_in)
    if same_run or len(units) == 1:
        every = [f for unit in units for f in unit.files]
        return [Run(_name(every), every)]
    runs: list[Run] = []
    by_folder: dict[str, list[_Unit]] = {}
    for unit in units:
        if not unit.folder:  # a stream
            runs.append(Run(_name(unit.files), unit.files))
            continue
        by_folder.setdefault(unit.folder, []).append(unit)
    for folder_units in by_folder.values():
        leaders = [u for u in folder_units if _logs_training(u, options)]
        followers = [f for u in folder_units if u not in leaders for f in u.files]
        if len(leaders) == 1:
            leaders[0].files.extend(followers)
            followers = []
        for leader in leaders:
            runs.append(Run(_name(leader.files), leader.files))
        if followers:
            runs.append(Run(_name(followers), followers))
    return runs


def runs_exit_code(codes: list[int]) -> int:
    """1 when any run is sick, else 2 when any could not be judged, else 0."""
    return 1 if 1 in codes else 2 if 2 in codes else 0

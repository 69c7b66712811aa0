"""Each command pays at start-up only for its own engine: the CLI builds the invoked command
alone (`doctor --help` imports them all), a JSON config never loads PyYAML and a JSON or SARIF
report never loads Rich. The timings are `benchmarks/check_startup.py`'s; these tests only
guard which modules a cold start loads."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "matplotlib", "tensorboard", "distill_doctor.config.schema")
UNNEEDED = (
    "yaml",
    "rich.console",
    "distill_doctor.commands.train",
    "distill_doctor.commands.watch",
)


def modules_loaded_by(*args: str, watched: tuple[str, ...] = HEAVY) -> set[str]:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['doctor', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('distill_doctor', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED:', *(m for m in {watched!r} if m in sys.modules), file=sys.stderr)\n"
    )
    # The process ends with the command's exit code (see test_a_report_command_ends_...).
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    marker = next(line for line in done.stderr.splitlines() if line.startswith("LOADED:"))
    return set(marker.split()[1:])


def test_postmortem_without_a_config_loads_no_schema_plot_or_torch():
    assert modules_loaded_by("postmortem", "tests/postmortem/fixtures/seed_broken.log") == set()


def test_check_loads_the_schema_but_no_plot_or_torch():
    assert modules_loaded_by("check", "configs/seed_broken.json") == {
        "distill_doctor.config.schema"
    }


def test_machine_readable_reports_load_neither_yaml_nor_rich_nor_other_commands():
    sarif = modules_loaded_by("check", "configs/seed_broken.json", "-f", "sarif", watched=UNNEEDED)
    json_report = modules_loaded_by(
        "postmortem",
        "tests/postmortem/fixtures/metrics_healthy.jsonl",
        "--format",
        "json",
        watched=UNNEEDED,
    )
    assert sarif == set() and json_report == set()


def test_a_yaml_config_still_loads_pyyaml(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 3e-4\nbatch_size: 8\nepochs: 1\ntrain_samples: 1000\n")
    assert "yaml" in modules_loaded_by("check", str(config), "-f", "json", watched=UNNEEDED)


def test_the_config_model_is_built_without_the_plugin_scan():
    # Finding pydantic plugins reads every installed package's entry points; the doctor's own
    # model skips it, and leaves the environment as it found it.
    code = (
        "import importlib.metadata as metadata, os\n"
        "scans, real = [], metadata.entry_points\n"
        "metadata.entry_points = lambda **kw: scans.append(kw) or real(**kw)\n"
        "from distill_doctor.config.schema import TrainConfig\n"
        "assert TrainConfig(learning_rate=1e-4).learning_rate == 1e-4\n"
        "print(scans, os.environ.get('PYDANTIC_DISABLE_PLUGINS'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "None"]


def test_a_report_command_ends_without_teardown_but_with_its_output_and_exit_code():
    # `doctor check` skips the interpreter's teardown (cli.end_without_teardown): the report
    # must still be whole on a pipe, and the exit code the command's.
    args = [sys.executable, "-m", "distill_doctor", "check", "configs/seed_broken.json"]
    done = subprocess.run([*args, "-f", "json"], capture_output=True, text=True)
    assert done.returncode == 1 and "1 error" in json.loads(done.stdout)["summary"]
    listed = subprocess.run([sys.executable, "-m", "distill_doctor", "rules"], capture_output=True)
    assert listed.returncode == 0 and listed.stdout.rstrip().endswith(b"whole doc.")


def test_a_text_log_imports_its_own_parser_only():
    # postmortem.sniff tells the format without the parsers; the chosen one alone is imported
    # (and the tiny tensorboard one, by which runs.py groups a folder's event files).
    from distill_doctor.postmortem.sniff import FORMATS

    parsers = tuple(
        f"distill_doctor.postmortem.parsers.{f.module}" for f in FORMATS if f.name != "tensorboard"
    )
    loaded = modules_loaded_by(
        "postmortem", "tests/postmortem/fixtures/seed_broken.log", watched=(*parsers, "json")
    )
    assert loaded == {"distill_doctor.postmortem.parsers.seed_text"}


def test_the_collector_is_off_for_a_check_and_back_on_once_a_postmortem_reads_logs():
    # cli.main starts a report without the cyclic collector; a postmortem's logs are unbounded.
    code = (
        "import gc, runpy, sys\n"
        "sys.argv = ['doctor', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('distill_doctor', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('GC:', gc.isenabled(), file=sys.stderr)\n"
    )
    states = []
    for args in (
        ["check", "configs/seed_broken.json"],
        ["postmortem", "tests/postmortem/fixtures/seed_broken.log"],
    ):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        states.append(next(line for line in done.stderr.splitlines() if line.startswith("GC:")))
    assert states == ["GC: False", "GC: True"]


def test_a_native_config_imports_no_framework_dialect():
    dialects = tuple(
        f"distill_doctor.config.{name}"
        for name in ("hf", "translation", "frameworks.torchtune", "frameworks.deepspeed")
    )
    assert modules_loaded_by("check", "configs/seed_broken.json", watched=dialects) == set()

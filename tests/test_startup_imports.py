"""Each command pays at start-up only for its own engine: the CLI imports every command module
to build itself, so a module-level import of the config schema (pydantic), matplotlib or
tensorboard would slow down every command. The timings are `benchmarks/check_startup.py`'s;
this test only guards which modules a cold start loads."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "matplotlib", "tensorboard", "distill_doctor.config.schema")


def modules_loaded_by(*args: str) -> set[str]:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['doctor', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('distill_doctor', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED:', *(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    marker = next(line for line in done.stderr.splitlines() if line.startswith("LOADED:"))
    return set(marker.split()[1:])


def test_postmortem_without_a_config_loads_no_schema_plot_or_torch():
    assert modules_loaded_by("postmortem", "tests/postmortem/fixtures/seed_broken.log") == set()


def test_check_loads_the_schema_but_no_plot_or_torch():
    assert modules_loaded_by("check", "configs/seed_broken.json") == {
        "distill_doctor.config.schema"
    }

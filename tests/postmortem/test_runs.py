"""Several runs: a `runs/` folder or unrelated files give one verdict per run; only the files
of one run are merged (see distill_doctor.postmortem.runs)."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.runs import group_runs, runs_exit_code


def jsonl(path, start_loss: float, steps: int = 40, key: str = "loss") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(f'{{"step": {s}, "{key}": {start_loss - s / 100}}}\n' for s in range(steps))
    )


def test_a_runs_folder_gives_one_verdict_per_run(tmp_path, fixture):
    jsonl(tmp_path / "runs" / "a" / "train.jsonl", 3.0)
    jsonl(tmp_path / "runs" / "a" / "eval.jsonl", 2.9, steps=5, key="eval_loss")
    (tmp_path / "runs" / "b").mkdir()
    shutil.copy(fixture("seed_broken.log"), tmp_path / "runs" / "b" / "train.log")
    (tmp_path / "runs" / "b" / "README.md").write_text("# notes\n```\nloss=1\n```\n")
    (tmp_path / "runs" / "b" / "config.json").write_text('{"lr": 0.1}')
    result = CliRunner().invoke(app, ["postmortem", str(tmp_path / "runs"), "--format", "json"])
    document = json.loads(result.stdout)
    verdicts = {run["run"].split("/runs/")[1]: run["verdict"] for run in document["runs"]}
    assert verdicts == {"a (2 files)": "healthy", "b/train.log": "sick"}
    assert result.exit_code == 1  # one run is sick


def test_text_report_names_each_run(tmp_path):
    jsonl(tmp_path / "one" / "log.jsonl", 3.0)
    jsonl(tmp_path / "two" / "log.jsonl", 2.0)
    result = CliRunner().invoke(
        app, ["postmortem", str(tmp_path / "one" / "log.jsonl"), str(tmp_path / "two")]
    )
    assert "run 1 of 2" in result.stdout and "run 2 of 2" in result.stdout


def test_unrelated_files_in_one_folder_are_not_merged(real_log):
    names = [
        "hf_trainer_state_healthy_seq2seq_5epochs.json",
        "hf_trainer_state_healthy_old_format_no_gradnorm.json",
        "lightning_metrics_healthy_mnist_3epochs.csv",
    ]
    runs = group_runs([real_log(n) for n in names], ParseOptions())
    assert [[f.name for f in run.files] for run in runs] == [[n] for n in names]


def test_same_run_merges_everything(real_log):
    names = [
        "hf_trainer_state_healthy_seq2seq_5epochs.json",
        "pytorch_wordlm_rnn_relu_nan_from_start.log",
    ]
    runs = group_runs([real_log(n) for n in names], ParseOptions(), same_run=True)
    assert len(runs) == 1 and len(runs[0].files) == 2


def test_the_newest_checkpoint_state_stands_for_the_run(tmp_path, real_log):
    source = real_log("hf_trainer_state_healthy_seq2seq_5epochs.json")
    for number in (500, 1000, 935):
        (tmp_path / "out" / f"checkpoint-{number}").mkdir(parents=True)
        shutil.copy(source, tmp_path / "out" / f"checkpoint-{number}" / "trainer_state.json")
    [run] = group_runs([tmp_path / "out"], ParseOptions())
    assert [str(f.parent.name) for f in run.files] == ["checkpoint-1000"]


def test_exit_code_of_several_runs():
    assert runs_exit_code([0, 1, 2]) == 1
    assert runs_exit_code([0, 2]) == 2
    assert runs_exit_code([0, 0]) == 0

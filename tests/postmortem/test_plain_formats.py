"""Formats real people have (issue 8): generic plain prints, `Step: N {...}` prefixes, dicts
glued onto tqdm bars or cut by warnings, stdout and stderr out of order, an LR of `0` and
`0.0`, CRLF, `--map`; and a plain `loss=` is a training loss."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.postmortem.formats import detect
from distill_doctor.postmortem.parsers import (
    ParseOptions,
    hf_stdout,
    lightning_csv,
    plain_text,
    seed_text,
)
from distill_doctor.postmortem.skipped import Skipped


def parse(parser, path, **options):
    return list(parser.parse(path, Skipped(str(path)), ParseOptions(**options)))


def write(tmp_path, name: str, text: str, crlf: bool = False):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", "\r\n" if crlf else "\n").encode())
    return path


@pytest.mark.parametrize("crlf", [False, True])
def test_epoch_loss_accuracy_prints(tmp_path, crlf):
    text = "Training the student...\n" + "".join(
        f"Epoch: {e}, Loss: {2.0 / e:.4f}, Accuracy: {0.5 + e / 100:.2f}\n" for e in range(1, 9)
    )
    path = write(tmp_path, "distill.log", text, crlf)
    assert detect(path) is plain_text
    records = parse(plain_text, path)
    assert [r["step"] for r in records] == list(range(1, 9))
    assert records[0]["loss"] == 2.0 and records[-1]["loss"] == 0.25


def test_capitalised_names_and_validation_metrics(tmp_path):
    text = "".join(
        f"Epoch {e}/5 - Train Loss: {1 / e:.3f}, Val Loss: {1.2 / e:.3f}, "
        f"Validation Accuracy: {0.6 + e / 50:.2f}\n"
        for e in range(1, 6)
    )
    records = parse(plain_text, write(tmp_path, "t.log", text))
    assert records[1] == {"step": 2, "loss": 0.5, "eval_loss": 0.6, "eval_accuracy": 0.64}


def test_mmengine_and_megatron_style_lines(tmp_path):
    text = (
        "Epoch(train) [1][200/735]  lr: 1.9870e-04  eta: 2:46:39  time: 2.8906  loss: 2.7522"
        "  grad_norm: 3.0608\n"
        "Epoch(train) [2][10/735]  lr: 1.9857e-04  eta: 2:46:12  time: 2.8865  loss: 2.6150"
        "  grad_norm: nan\n"
        " iteration     5426/  250000 | learning rate: 2.999E-04 | lm loss: 2.3E+00 |"
        " grad norm: 1.5 |\n"
    )
    records = parse(plain_text, write(tmp_path, "mm.log", text))
    assert [r["step"] for r in records] == [200, 745, 5426]
    assert records[0]["lr"] == 1.987e-4 and records[0]["grad_norm"] == 3.0608
    assert "eta" not in records[0] and records[2]["grad_norm"] == 1.5


def test_a_step_line_with_a_plain_loss_is_training(tmp_path):
    text = "".join(f"Step {s}: grad_norm={1e6 * s:.1f}, loss={3e8 + s:.1f}\n" for s in range(1, 8))
    path = write(tmp_path, "steps.log", text)
    records = parse(seed_text, path)
    assert records[0] == {"step": 1, "grad_norm": 1e6, "loss": 3e8 + 1}
    assert all("eval_loss" not in r for r in records)


def test_step_lines_under_a_bar_that_shows_the_loss_stay_evaluations(fixture):
    # The seed's bar shows the training loss; its `Step N:` lines are its evaluations.
    records = parse(seed_text, fixture("seed_broken.log"))
    at_100 = [r for r in records if r["step"] == 100 and "eval_kd" in r]
    assert at_100 and all(r["eval_loss"] == 101.4 and "loss" not in r for r in at_100)


def test_step_prefix_before_a_dict(tmp_path):
    text = "".join(
        f"Step: {s * 10} {{'loss': {3 - s / 10}, 'learning_rate': 1e-4}}\n" for s in (1, 2)
    )
    text += 'Step: 30 {"loss": 2.5, "grad_norm": 0.7}\n'
    records = parse(hf_stdout, write(tmp_path, "p.log", text))
    assert [r["step"] for r in records] == [10, 20, 30]
    assert records[2] == {"step": 30, "loss": 2.5, "grad_norm": 0.7}


def test_dict_glued_to_the_end_of_a_tqdm_bar(tmp_path):
    bars = "\r".join(f" {n}%|#| {n}/100 [00:01<00:09, 9.1it/s]" for n in range(1, 11))
    text = bars + "{'loss': 2.31, 'grad_norm': 1.5, 'learning_rate': 1e-05, 'epoch': 0.1}\n"
    bars = "\r".join(f" {n}%|#| {n}/100 [00:02<00:08, 9.1it/s]" for n in range(11, 21))
    text += bars + "{'loss': 2.11, 'grad_norm': 1.2, 'learning_rate': 1e-05, 'epoch': 0.2}\n"
    records = parse(hf_stdout, write(tmp_path, "glued.log", text))
    assert [(r["step"], r["loss"]) for r in records] == [(10, 2.31), (20, 2.11)]


def test_dict_cut_by_a_warning_keeps_the_pairs_on_either_side(tmp_path):
    text = (
        "{'loss': 2.5, 'grad_norm': 1.1, 'learning_rate': 1e-05, 'epoch': 0.1}\n"
        "{'loss': 2.4, 'grad_no/usr/lib/python3/torch/utils/checkpoint.py:90: UserWarning: "
        "None of the inputs have requires_grad=True.\n"
        "  warnings.warn(\n"
        "rm': 1.0, 'learning_rate': 2e-05, 'epoch': 0.2}\n"
        "{'loss': 2.3, 'grad_norm': 0.9, 'learning_rate': 3e-05, 'epoch': 0.3}\n"
    )
    records = parse(hf_stdout, write(tmp_path, "cut.log", text), logging_steps=10)
    assert [r["step"] for r in records] == [10, 20, 30]
    assert records[1] == {"step": 20, "loss": 2.4, "lr": 2e-05, "epoch": 0.2}


def test_stdout_and_stderr_out_of_order_keep_logs_apart_and_in_order(tmp_path):
    # The bar (stderr) reached the file late: two dicts follow the same bar count, and an eval
    # dict comes before the bar moved on.
    text = (
        " 10/100 [00:01<00:09, 9.1it/s]\n"
        "{'loss': 2.5, 'learning_rate': 1e-05, 'epoch': 0.1}\n"
        "{'loss': 2.4, 'learning_rate': 1e-05, 'epoch': 0.2}\n"
        "{'eval_loss': 2.6, 'eval_runtime': 1.0, 'epoch': 0.2}\n"
        " 5/100 [00:00<00:09, 9.1it/s]\n"
        "{'loss': 2.3, 'learning_rate': 1e-05, 'epoch': 0.3}\n"
    )
    records = parse(hf_stdout, write(tmp_path, "mixed.log", text))
    steps = [r["step"] for r in records]
    assert steps == sorted(steps) and steps[:2] == [10, 11]
    train_steps = [r["step"] for r in records if "loss" in r]
    assert len(set(train_steps)) == len(train_steps)


@pytest.mark.parametrize("zero", ["0", "0.0", "'0'", "'0.0'", "0e+00"])
def test_an_lr_printed_as_zero_in_any_spelling(tmp_path, zero):
    text = f"{{'loss': 2.5, 'learning_rate': {zero}, 'epoch': 0.1}}\n"
    [record] = parse(hf_stdout, write(tmp_path, "z.log", text))
    assert record["lr"] == 0 and record["loss"] == 2.5


def test_map_names_the_loss_column(tmp_path):
    rows = [f"{2.5 - s / 100},,0,{s}" for s in range(20)] + ["2.4,,0,19", ",2.3,0,19"]
    path = write(tmp_path, "metrics.csv", "train_loss_step,train_loss_epoch,epoch,step\n")
    path.write_text(path.read_text() + "\n".join(rows) + "\n")
    plain = parse(lightning_csv, path)
    mapped = parse(lightning_csv, path, key_map={"train_loss_step": "loss"})
    assert plain[-1]["loss"] == 2.3  # the epoch mean, by default
    assert len([r for r in mapped if "loss" in r]) == 20 and mapped[0]["loss"] == 2.5
    assert mapped[-1]["loss"] == 2.4  # the epoch column no longer feeds `loss`


def test_map_on_the_command_line(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(
        "".join(f'{{"step": {s}, "total": {3 - s / 50}, "loss": 0.1}}\n' for s in range(30))
    )
    result = CliRunner().invoke(
        app, ["postmortem", str(path), "--map", "loss=total", "--format", "json"]
    )
    assert json.loads(result.stdout)["records"] == 30
    bad = CliRunner().invoke(app, ["postmortem", str(path), "--map", "nonsense"])
    assert bad.exit_code == 2 and "KEY=NAME" in bad.output
    unknown = CliRunner().invoke(app, ["postmortem", str(path), "--map", "speed=total"])
    assert unknown.exit_code == 2 and "not a record key" in unknown.output


@pytest.mark.parametrize("crlf", [False, True])
def test_crlf_in_every_text_format(tmp_path, crlf, fixture):
    for name in ("seed_broken.log", "hf_stdout_v4_nan.log", "metrics_healthy.jsonl"):
        source = fixture(name).read_bytes().replace(b"\r\n", b"\n")
        path = tmp_path / name
        path.write_bytes(source.replace(b"\n", b"\r\n") if crlf else source)
        parser = detect(path)
        records = list(parser.parse(path, Skipped(name), ParseOptions()))
        lf = tmp_path / ("lf_" + name)
        lf.write_bytes(source)
        assert repr(records) == repr(list(parser.parse(lf, Skipped(name), ParseOptions())))

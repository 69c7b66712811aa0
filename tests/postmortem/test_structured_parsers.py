"""HF stdout and trainer_state.json, events.jsonl, Lightning CSV, JSON lines, word_language_model:
records out of small real-looking logs, one healthy and one failing each."""

from __future__ import annotations

import math

from distill_doctor.postmortem.analysis import analyze
from distill_doctor.postmortem.parsers import (
    events_jsonl,
    hf_state,
    hf_stdout,
    jsonl,
    lightning_csv,
    wordlm,
)


def _problems(path):
    """(id, first step) of each warning/error finding; other detectors may add more ids."""
    first: dict[str, int] = {}
    for finding in analyze([path]).findings:
        if finding.severity.value != "info":
            first[finding.id] = min(first.get(finding.id, finding.step), finding.step)
    return first


def test_hf_dict_lines_v4_and_v5():
    v4 = hf_stdout.parse_dict_line(
        "{'loss': 0.0, 'grad_norm': nan, 'learning_rate': 0.0, 'epoch': 0.5, 'x': -inf}"
    )
    assert v4 == {"loss": 0.0, "grad_norm": "nan", "learning_rate": 0.0, "epoch": 0.5, "x": "-inf"}
    v5 = hf_stdout.parse_dict_line("{'loss': '4.436', 'grad_norm': '0.2711'}")
    assert v5 == {"loss": "4.436", "grad_norm": "0.2711"}
    assert hf_stdout.parse_dict_line("{'loss': __import__('os')}") is None


def test_hf_stdout_steps_from_the_tqdm_bar(fixture, parse_all):
    records, skipped = parse_all(hf_stdout, fixture("hf_stdout_v4_nan.log"))
    train = [r for r in records if "loss" in r]
    assert [r["step"] for r in train] == list(range(10, 101, 10))
    assert train[5]["loss"] == 0.0 and math.isnan(train[5]["grad_norm"])
    evals = [r for r in records if "eval_loss" in r]
    assert [r["step"] for r in evals] == [50, 100] and "eval_runtime" not in evals[0]
    assert skipped.lines == 0
    assert _problems(fixture("hf_stdout_v4_nan.log"))["nonfinite-loss"] == 60


def test_hf_stdout_v5_quoted_values_healthy(fixture, parse_all):
    records, _ = parse_all(hf_stdout, fixture("hf_stdout_v5_healthy.log"))
    assert records[0]["loss"] == float(records[0]["loss"]) and records[0]["step"] == 10
    assert _problems(fixture("hf_stdout_v5_healthy.log")) == {}


def test_hf_stdout_without_bars_counts_logging_steps(tmp_path, parse_all):
    path = tmp_path / "out.log"
    path.write_text("{'loss': 2.0, 'epoch': 0.1}\n{'loss': 1.9, 'epoch': 0.2}\n")
    records, _ = parse_all(hf_stdout, path, logging_steps=50)
    assert [r["step"] for r in records] == [50, 100]


def test_trainer_state_lr_zero_and_planned_steps(fixture, parse_all):
    records, _ = parse_all(hf_state, fixture("trainer_state_lr_zero.json"))
    assert records[0] == {"step": 0, "planned_steps": 1000}
    problems = _problems(fixture("trainer_state_lr_zero.json"))
    assert problems["lr-zero"] == 120 and problems["eval-frozen"] == 200


def test_events_jsonl_killed_run(fixture, parse_all):
    records, skipped = parse_all(events_jsonl, fixture("events_killed_nan.jsonl"))
    assert records[0] == {"step": 0, "planned_steps": 120, "vocab_size": 50257, "device": "cpu"}
    assert sum("_finding" in r for r in records) == 1
    assert skipped.reasons == {"not a JSON object (cut off?)": 1}
    analysis = analyze([fixture("events_killed_nan.jsonl")])
    assert [(f.id, f.step) for f in analysis.findings] == [("nonfinite-loss", 70)]
    assert _problems(fixture("events_healthy.jsonl")) == {}


def test_lightning_csv_crlf_joins_rows_of_one_step(fixture, parse_all):
    records, skipped = parse_all(lightning_csv, fixture("lightning_nan_metrics.csv"))
    assert skipped.lines == 0
    end_of_epoch = next(r for r in records if r["step"] == 99)
    assert end_of_epoch["loss"] == 1.95 and end_of_epoch["eval_loss"] == 1.9  # epoch mean
    assert end_of_epoch["lr"] == 0.001
    assert _problems(fixture("lightning_nan_metrics.csv"))["nonfinite-loss"] == 324


def test_lightning_step_column_used_only_without_epoch_twin():
    keys = lightning_csv.column_keys(["epoch", "step", "a_loss_step", "a_loss_epoch", "acc_epoch"])
    assert keys == [
        ("epoch", False),
        ("step", False),
        ("loss_a", True),
        ("loss_a", False),
        (None, False),
    ]
    assert lightning_csv.column_keys(["step", "train_loss_step"]) == [
        ("step", False),
        ("loss", False),
    ]


def test_generic_jsonl(fixture, parse_all):
    records, _ = parse_all(jsonl, fixture("metrics_healthy.jsonl"))
    assert records[0]["step"] == 0 and records[0]["lr"] == 1e-3
    assert "eval_loss" in records[10] and "eval_loss" not in records[11]
    assert _problems(fixture("metrics_healthy.jsonl")) == {}


def test_wordlm_steps_and_eval(tmp_path, parse_all):
    path = tmp_path / "wlm.log"
    path.write_text(
        "| epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch 11.43 | loss  5.94 | ppl 380.12\n"
        "| end of epoch   1 | time: 35.24s | valid loss  5.70 | valid ppl   299.77\n"
        "| epoch   2 |   200/ 2983 batches | lr 5.00 | ms/batch 10.00 | loss nan | ppl nan\n"
        "| End of training | test loss  6.85 | test ppl   944.04\n"
    )
    records, _ = parse_all(wordlm, path)
    assert [r["step"] for r in records] == [200, 2983, 3183, 3183]
    assert records[0]["lr"] == 20.0 and records[0]["steps_per_s"] == 1000 / 11.43
    assert records[1] == {"step": 2983, "eval_loss": 5.70, "eval_ppl": 299.77}
    assert math.isnan(records[2]["loss"]) and records[3]["eval_loss"] == 6.85


def test_hf_stdout_found_after_a_long_preamble(tmp_path):
    from distill_doctor.postmortem.formats import detect

    path = tmp_path / "train.out"
    preamble = "Some weights of the model checkpoint were not used when initializing.\n" * 400
    path.write_text(preamble + "{'loss': 2.31, 'learning_rate': 5e-05, 'epoch': 0.1}\n")
    assert len(preamble) > 20_000 and detect(path) is hf_stdout


def test_generic_jsonl_lr_dead_early(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [
        f'{{"global_step": {s}, "loss": {3 - min(s, 40) / 100}, "lr": {1e-3 if s < 40 else 0.0}}}'
        for s in range(0, 400, 2)
    ]
    path.write_text("\n".join(lines) + "\n")
    assert _problems(path)["lr-zero"] == 40


def test_hf_eval_bars_do_not_move_the_step(tmp_path, parse_all):
    path = tmp_path / "out.log"
    path.write_text(
        " 50%|#####     | 500/1000 [01:00<01:00, 8.3it/s]\r"
        "{'loss': 2.1, 'learning_rate': 2.5e-05, 'epoch': 0.5}\n"
        "100%|##########| 63/63 [00:02<00:00, 25.1it/s]\r"
        "{'eval_loss': 2.0, 'eval_runtime': 2.5, 'epoch': 0.5}\n"
        " 60%|######    | 600/1000 [01:12<00:48, 8.3it/s]\r"
        "{'loss': 1.9, 'learning_rate': 2e-05, 'epoch': 0.6}\n"
    )
    records, _ = parse_all(hf_stdout, path)
    assert [(r["step"], "eval_loss" in r) for r in records] == [
        (500, False),
        (500, True),
        (600, False),
    ]


def test_trainer_state_read_in_batches_across_chunks_with_braces_in_strings(
    tmp_path, parse_all, monkeypatch
):
    """log_history is decoded many entries at a time: a `}` or `]` inside a string or a nested
    object, and chunk boundaries anywhere, must give exactly the entries one-by-one decoding
    gives."""
    import json

    from distill_doctor.postmortem import inputs

    monkeypatch.setattr(inputs, "CHUNK_BYTES", 997)  # boundaries fall inside entries
    history = []
    for step in range(1, 601):
        entry = {"loss": 2 + 1 / step, "learning_rate": 1e-4, "step": step, "epoch": step / 600}
        if step % 7 == 0:
            entry["note"] = "a ] and a }, { inside a string"
        if step % 11 == 0:
            entry["nested"] = {"inner": {"x": [1, 2]}, "y": "}]"}
        history.append(entry)
    state = {"best_metric": None, "log_history": history, "max_steps": 600, "x": {"y": "}"}}
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state, indent=2))
    records, skipped = parse_all(hf_state, path)
    steps = [record["step"] for record in records if "loss" in record]
    assert steps == list(range(1, 601))
    assert [record["loss"] for record in records if "loss" in record] == [
        entry["loss"] for entry in history
    ]
    assert skipped.lines == 0

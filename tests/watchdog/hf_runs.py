"""Three real `transformers.Trainer` runs (tiny GPT-2 on CPU) in one process, for the
`doctor watch` tests: OUT/healthy, OUT/too-few-steps (a scheduler told a quarter of the
steps: LR 0 from step 11) and OUT/masked (every label -100 from step 11). Each writes
TensorBoard events as the Trainer does; only the masked run prints its log dicts to stdout
(a pipe to `doctor watch -`).

    python hf_runs.py OUT
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

torch.set_num_threads(1)
VOCAB = 32
STEPS = 30
LOGGING_STEPS = 2
FAULT_FROM_STEP = 11  # the masked run's labels are all -100 from this step on


class Sequences(torch.utils.data.Dataset):
    """Repeating token patterns (learnable in a few steps); `masked`: every label -100."""

    def __init__(self, n: int = 64, length: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        starts = torch.randint(3, VOCAB - 1, (n,), generator=g)
        self.ids = (starts[:, None] + torch.arange(length)[None, :] % 4) % VOCAB
        self.masked = False

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        ids = self.ids[i]
        labels = torch.full_like(ids, -100) if self.masked else ids.clone()
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


class MaskFrom(TrainerCallback):
    def __init__(self, data: Sequences) -> None:
        self.data = data

    def on_step_end(self, args, state, control, **kwargs):
        self.data.masked = state.global_step >= FAULT_FROM_STEP - 1


def train(out: Path, fault: str | None) -> None:
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=1, n_embd=16, n_head=2, vocab_size=VOCAB, n_positions=32, bos_token_id=0
    )
    model = GPT2LMHeadModel(config)
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=STEPS,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        logging_steps=LOGGING_STEPS,
        save_strategy="no",
        report_to=["tensorboard"],
        use_cpu=True,
        disable_tqdm=True,
        warmup_steps=0,
    )
    data = Sequences()
    optimizers = (None, None)
    if fault == "too-few-steps":
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        schedule = transformers.get_linear_schedule_with_warmup(optimizer, 0, STEPS // 3)
        optimizers = (optimizer, schedule)
    callbacks = [MaskFrom(data)] if fault == "masked" else []
    trainer = Trainer(
        model=model, args=args, train_dataset=data, optimizers=optimizers, callbacks=callbacks
    )
    trainer.train()


if __name__ == "__main__":
    root = Path(sys.argv[1])
    for name in ("healthy", "too-few-steps"):
        with contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
            train(root / name, None if name == "healthy" else name)
    train(root / "masked", "masked")

"""Training data: read texts, hold out an eval split, tokenise into fixed-length blocks, and
serve the micro-batches of an epoch in a seeded, reproducible order (so a resumed run sees
exactly the batches the uninterrupted run would have seen).

Formats (by path):
    a directory      a `datasets` dataset saved with `save_to_disk` (its "train" split if it
                     is a DatasetDict), with a `text` column
    *.jsonl          JSON lines, each an object with a string `text` field
    anything else    plain text; one document per blank-line-separated paragraph (so wrapped
                     prose stays one document)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill_doctor.config.schema import TrainConfig
from distill_doctor.errors import InputError

IGNORE_INDEX = -100  # label value the losses skip (pads, and nothing else)
# The trainer holds the corpus and its token ids in memory (a Python int list costs ~9x the
# text): beyond this a data file is a mistake or needs a streaming loader, not an OOM kill.
MAX_DATA_BYTES = 1 << 30


@dataclass(frozen=True)
class Blocks:
    """Tokenised examples, all `max_length` long: inputs, attention mask, labels."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        index = torch.tensor(indices, dtype=torch.long)
        return {
            "input_ids": self.input_ids[index],
            "attention_mask": self.attention_mask[index],
            "labels": self.labels[index],
        }


def read_data_text(path: Path) -> str:
    """The text of a data file: a regular file (not a device, FIFO or socket, which may never
    end), at most MAX_DATA_BYTES, UTF-8 without NUL bytes; anything else is an InputError."""
    if not path.is_file():
        raise InputError(
            f"{path}: not a regular file (a device, pipe or socket); give a .txt or .jsonl "
            "file or a saved dataset directory."
        )
    too_big = (
        f"{path}: larger than {MAX_DATA_BYTES >> 20:,} MiB, more than the trainer holds in "
        "memory; give a smaller sample of it."
    )
    if path.stat().st_size > MAX_DATA_BYTES:
        raise InputError(too_big)
    with path.open("rb") as file:
        raw = file.read(MAX_DATA_BYTES + 1)  # capped: a file may grow, or lie about its size
    if len(raw) > MAX_DATA_BYTES:
        raise InputError(too_big)
    if b"\x00" in raw:
        raise InputError(f"{path}: contains NUL bytes; is this a binary file? Give text data.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: not UTF-8 text (byte {err.start:,}); give a .txt, .jsonl or dataset."
        ) from None


def _read_jsonl(path: Path) -> list[str]:
    texts = []
    for number, line in enumerate(read_data_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {number} is not valid JSON ({err.msg}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InputError(
                f"{path}: line {number} has no string `text` field; each JSON line must be an "
                'object like {"text": "..."}.'
            )
        texts.append(row["text"])
    return texts


def _read_saved_dataset(path: Path) -> list[str]:
    import datasets  # lazy: only this format needs it

    try:
        loaded: Any = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise InputError(
            f"{path}: a directory that is not a dataset saved with `save_to_disk`."
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise InputError(f"{path}: a DatasetDict without a 'train' split ({list(loaded)}).")
        loaded = loaded["train"]
    if "text" not in loaded.column_names:
        raise InputError(
            f"{path}: the dataset has no `text` column (columns: {loaded.column_names})."
        )
    return [str(text) for text in loaded["text"]]


def read_texts(path: str | Path) -> list[str]:
    """The non-empty documents of a data file or saved dataset."""
    path = Path(path)
    try:
        if not path.exists():
            raise InputError(f"{path}: no such data file or directory.")
        if path.is_dir():
            texts = _read_saved_dataset(path)
        elif path.suffix == ".jsonl":
            texts = _read_jsonl(path)
        else:
            texts = read_data_text(path).split("\n\n")
    except OSError as err:  # no permission, an I/O error: the user's to fix, not a crash
        raise InputError(f"{path}: cannot read the data ({err.strerror or err}).") from None
    texts = [text.strip() for text in texts if text.strip()]
    if not texts:
        raise InputError(f"{path}: no text in it (empty data).")
    return texts


def split_texts(texts: list[str], eval_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic (seeded) train/eval split of documents; each side gets at least one."""
    if len(texts) < 2:
        raise InputError(
            "The data holds a single document, too little to hold out an eval split; add "
            "documents or give `eval_data`."
        )
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    n_eval = min(max(1, round(len(texts) * eval_fraction)), len(texts) - 1)
    eval_ids = set(order[:n_eval])
    train = [t for i, t in enumerate(texts) if i not in eval_ids]
    held_out = [t for i, t in enumerate(texts) if i in eval_ids]
    return train, held_out


def _pad_id(tokenizer: Any) -> int:
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def _to_blocks(rows: list[list[int]], max_length: int, pad_id: int) -> Blocks:
    input_ids = torch.full((len(rows), max_length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), max_length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    labels = input_ids.masked_fill(mask == 0, IGNORE_INDEX)
    return Blocks(input_ids, mask, labels)


def tokenize_blocks(texts: list[str], tokenizer: Any, max_length: int, pack: bool) -> Blocks:
    """Packed: documents joined with EOS and cut into max_length blocks (the last one padded).
    Padded: one block per document, truncated to max_length, pads masked out of the labels."""
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    if pack:
        eos = tokenizer.eos_token_id
        stream = [tok for ids in encoded for tok in (ids + ([eos] if eos is not None else []))]
        rows = [stream[i : i + max_length] for i in range(0, len(stream), max_length)]
    else:
        rows = [ids[:max_length] for ids in encoded]
    rows = [row for row in rows if len(row) >= 2]  # a 1-token row has no next-token target
    return _to_blocks(rows, max_length, _pad_id(tokenizer))


def load_splits(cfg: TrainConfig, tokenizer: Any, data_path: str | Path) -> tuple[Blocks, Blocks]:
    """Train and eval blocks for a config; errors when the train split cannot fill a batch."""
    texts = read_texts(data_path)
    if cfg.eval_data is not None:
        train_texts, eval_texts = texts, read_texts(cfg.eval_data)
    else:
        train_texts, eval_texts = split_texts(texts, cfg.eval_fraction, cfg.seed)
    train = tokenize_blocks(train_texts, tokenizer, cfg.max_length, cfg.pack)
    held_out = tokenize_blocks(eval_texts, tokenizer, cfg.max_length, cfg.pack)
    if len(train) < cfg.batch_size:
        raise InputError(
            f"{data_path}: the training split makes {len(train)} block(s) of max_length "
            f"{cfg.max_length}, fewer than one batch of batch_size {cfg.batch_size}; give more "
            "data or lower batch_size / max_length."
        )
    if len(held_out) == 0:
        raise InputError(f"{data_path}: the eval split is empty after tokenisation.")
    return train, held_out


def epoch_batches(n_examples: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The micro-batches of one epoch: a permutation seeded by (seed, epoch), the last batch
    kept even when partial. The same arguments always give the same batches (resume)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_examples, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, n_examples, batch_size)]


def eval_batches(
    blocks: Blocks,
    batch_size: int,
    max_batches: int | None,
    take: Callable[[list[int]], dict] | None = None,
) -> Iterator[dict]:
    """The eval split in order, in batches (at most `max_batches`); `take` turns a batch's
    indices into tensors (default `blocks.batch`; a rank takes its share)."""
    take = take or blocks.batch
    starts = range(0, len(blocks), batch_size)
    if max_batches is not None:
        starts = starts[:max_batches]
    for start in starts:
        yield take(list(range(start, min(start + batch_size, len(blocks)))))

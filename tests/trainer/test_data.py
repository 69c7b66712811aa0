"""Data formats, their errors, the split, packing/padding and the seeded epoch order."""

import json
import os

import pytest
import torch
from train_helpers import tiny_config, write_corpus

from distill_doctor.errors import InputError
from distill_doctor.trainer import data
from distill_doctor.trainer.data import (
    IGNORE_INDEX,
    epoch_batches,
    eval_batches,
    load_splits,
    read_texts,
    split_texts,
    tokenize_blocks,
)


def test_txt_is_split_on_blank_lines(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("the cat\nsat on\n\n\n  the mat  \n\nthe dog\n", encoding="utf-8")
    assert read_texts(path) == ["the cat\nsat on", "the mat", "the dog"]


def test_jsonl_reads_text_fields_and_names_bad_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a cat"}\n\n{"text": "a dog", "id": 3}\n', encoding="utf-8")
    assert read_texts(path) == ["a cat", "a dog"]
    path.write_text('{"text": "a cat"}\n{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 has no string `text` field"):
        read_texts(path)
    path.write_text('{"text": "a cat"}\n{oops\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_texts(path)


def test_saved_datasets_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["a cat", "", "a dog"]}).save_to_disk(tmp_path / "ds")
    assert read_texts(tmp_path / "ds") == ["a cat", "a dog"]
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": ["x"]})}).save_to_disk(
        tmp_path / "dd"
    )
    with pytest.raises(InputError, match="no `text` column"):
        read_texts(tmp_path / "dd")


def test_missing_and_empty_data(tmp_path):
    with pytest.raises(InputError, match="no such data file"):
        read_texts(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match="empty data"):
        read_texts(tmp_path / "empty.txt")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_not_read_forever(device):
    # `--data /dev/zero` was read until the OOM killer struck at 24 GB
    with pytest.raises(InputError, match="not a regular file"):
        read_texts(device)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")  # opening it would wait for a writer forever
    with pytest.raises(InputError, match="not a regular file"):
        read_texts(tmp_path / "pipe.txt")


@pytest.mark.parametrize("name", ["model.txt", "model.jsonl"])
def test_binary_data_is_a_clear_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04\x00\x00" + bytes(range(256)))
    with pytest.raises(InputError, match="NUL bytes; is this a binary file"):
        read_texts(path)
    path.write_bytes("caf\u00e9 the cat".encode("latin-1"))  # text, but not UTF-8
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_texts(path)


def test_data_past_the_size_cap_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_DATA_BYTES", 1000)
    path = write_corpus(tmp_path / "d.txt")
    with pytest.raises(InputError, match="larger than .* MiB"):
        read_texts(path)


def test_unreadable_data_is_a_clear_error(tmp_path):
    path = write_corpus(tmp_path / "d.txt")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: permissions do not stop reading")
        with pytest.raises(InputError, match="cannot read the data"):
            read_texts(path)
    finally:
        path.chmod(0o644)


def test_split_is_deterministic_disjoint_and_never_empty():
    texts = [f"doc {i}" for i in range(100)]
    train, held_out = split_texts(texts, 0.1, seed=3)
    assert (train, held_out) == split_texts(texts, 0.1, seed=3)
    assert len(held_out) == 10 and not set(train) & set(held_out)
    assert split_texts(texts, 0.1, seed=4)[1] != held_out
    assert len(split_texts(["a", "b"], 0.01, 0)[1]) == 1
    with pytest.raises(InputError, match="single document"):
        split_texts(["only"], 0.1, 0)


def test_packing_joins_with_eos_and_pads_only_the_last_block(tiny_tokenizer):
    blocks = tokenize_blocks(["the cat sat", "a dog ran on the mat"], tiny_tokenizer, 4, pack=True)
    eos = tiny_tokenizer.eos_token_id
    stream = blocks.input_ids[blocks.attention_mask.bool()].tolist()
    assert stream.count(eos) == 2 and len(stream) == 3 + 1 + 6 + 1
    assert blocks.input_ids.shape == (3, 4)
    assert blocks.attention_mask[:2].all() and blocks.attention_mask[2].tolist() == [1, 1, 1, 0]
    assert blocks.labels[2, 3] == IGNORE_INDEX


def test_padding_masks_pad_labels_and_truncates(tiny_tokenizer):
    blocks = tokenize_blocks(["the cat", "a dog ran on the big mat"], tiny_tokenizer, 5, pack=False)
    assert blocks.attention_mask.tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert (blocks.labels[0, 2:] == IGNORE_INDEX).all()
    assert torch.equal(blocks.labels[1], blocks.input_ids[1])


def test_data_too_small_for_one_batch(tiny_pair, tmp_path, tiny_tokenizer):
    data = write_corpus(tmp_path / "d.txt", documents=6)
    cfg = tiny_config(tiny_pair, data, batch_size=64)
    with pytest.raises(InputError, match="fewer than one batch of batch_size 64"):
        load_splits(cfg, tiny_tokenizer, data)


def test_eval_data_file_is_used_whole(tiny_pair, tmp_path, tiny_tokenizer):
    data = write_corpus(tmp_path / "d.txt", documents=60)
    held = tmp_path / "eval.jsonl"
    held.write_text("\n".join(json.dumps({"text": "the cat sat on the mat"}) for _ in range(3)))
    cfg = tiny_config(tiny_pair, data, eval_data=str(held), pack=False)
    train, held_out = load_splits(cfg, tiny_tokenizer, data)
    assert len(held_out) == 3 and len(train) == 60


def test_epoch_batches_are_seeded_permutations_keeping_the_last_partial_batch():
    batches = epoch_batches(10, 4, seed=0, epoch=0)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert epoch_batches(10, 4, seed=0, epoch=0) == batches
    assert epoch_batches(10, 4, seed=0, epoch=1) != batches


def test_eval_batches_cap(tiny_tokenizer):
    blocks = tokenize_blocks(["the cat sat"] * 10, tiny_tokenizer, 4, pack=False)
    assert [len(b["input_ids"]) for b in eval_batches(blocks, 4, None)] == [4, 4, 2]
    assert len(list(eval_batches(blocks, 4, 1))) == 1

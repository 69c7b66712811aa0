"""Regenerate the bundled demo: corpus, tokenizer, trained teacher, untrained student.

    python scripts/train_demo_teacher.py [--steps 800] [--out distill_doctor/data/demo]

Rerunnable and seeded (same Python version => same corpus => same tokenizer; the teacher is
trained on CPU in a few minutes). What it writes under --out:
    corpus.jsonl   docstrings of this Python's standard library (a real corpus that needs no
                   download), one {"text": ...} per line
    teacher/       a 4-layer Llama (hidden 192, ~2.2M parameters) trained with plain CE on the
                   train split of configs/demo.json, so the demo's eval split is unseen
    student/       a 2-layer Llama (hidden 128, ~0.7M parameters), randomly initialised: it is
                   the model the demo distils into (same tokenizer, same 4 heads so the
                   attention loss can map layers)
Weights are stored in fp16 to keep every file under 5 MB; the loader upcasts on CPU.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
import sysconfig
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from distill_doctor.config.loader import load_native
from distill_doctor.trainer.data import epoch_batches, split_texts, tokenize_blocks

REPO = Path(__file__).resolve().parent.parent
VOCAB_SIZE = 2048  # small: the corpus is ~1.5 MB, and the embedding table dominates the size
EOS, PAD = "<|endoftext|>", "<|pad|>"
SKIPPED_DIRS = {"test", "tests", "idlelib", "site-packages", "lib2to3", "__pycache__"}
TEACHER = dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4)
# Half the width and depth: clearly weaker, yet the same 4 heads (attention-map KD needs equal
# head counts) and the same tokenizer (KD needs one vocabulary).
STUDENT = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2)


def stdlib_docstrings() -> list[str]:
    """Module, class and function docstrings longer than 80 characters, in file order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(root.rglob("*.py")):
        if SKIPPED_DIRS & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 80:
                    texts.append(doc)
    return texts


def train_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=PAD)


def build_model(tokenizer: PreTrainedTokenizerFast, sizes: dict, max_length: int):
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **sizes,
    )
    return LlamaForCausalLM(config)


def ce_loss(model, batch: dict) -> torch.Tensor:
    return model(**batch).loss  # HF shifts the labels and ignores -100


@torch.no_grad()
def eval_loss(model, blocks, batch_size: int = 32) -> float:
    model.eval()
    losses = [
        ce_loss(model, blocks.batch(list(range(i, min(i + batch_size, len(blocks))))))
        for i in range(0, len(blocks), batch_size)
    ]
    model.train()
    return float(torch.stack(losses).mean())


def train_teacher(model, train, steps: int, batch_size: int, seed: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    warmup = steps // 20
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * s / steps))),
    )
    step, epoch, start = 0, 0, time.time()
    while step < steps:
        for indices in epoch_batches(len(train), batch_size, seed, epoch):
            loss = ce_loss(model, train.batch(indices))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 50 == 0:
                print(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - start:.0f}s)")
            if step == steps:
                return
        epoch += 1


def save(model, tokenizer, folder: Path) -> None:
    model.half().save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--out", type=Path, default=REPO / "distill_doctor/data/demo")
    # One thread: these matrices are small, and on a busy machine two threads spin-waiting for
    # each other run 10x slower than one.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cfg = load_native(REPO / "configs/demo.json")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(args.threads)

    texts = stdlib_docstrings()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "corpus.jsonl", "w", encoding="utf-8") as corpus:
        corpus.writelines(json.dumps({"text": text}) + "\n" for text in texts)
    print(f"corpus: {len(texts)} docstrings, {sum(map(len, texts)):,} characters")

    # The same split as the demo run, so the teacher never sees the demo's eval texts.
    train_texts, eval_texts = split_texts(texts, cfg.eval_fraction, cfg.seed)
    tokenizer = train_tokenizer(train_texts)
    train = tokenize_blocks(train_texts, tokenizer, cfg.max_length, cfg.pack)
    held_out = tokenize_blocks(eval_texts, tokenizer, cfg.max_length, cfg.pack)
    print(f"blocks: {len(train)} train, {len(held_out)} eval of {cfg.max_length} tokens")

    teacher = build_model(tokenizer, TEACHER, cfg.max_length)
    student = build_model(tokenizer, STUDENT, cfg.max_length)
    train_teacher(teacher, train, args.steps, batch_size=16, seed=cfg.seed)
    print(
        f"eval CE: teacher {eval_loss(teacher, held_out):.3f}, "
        f"untrained student {eval_loss(student, held_out):.3f}"
    )
    save(teacher, tokenizer, args.out / "teacher")
    save(student, tokenizer, args.out / "student")


if __name__ == "__main__":
    sys.exit(main())

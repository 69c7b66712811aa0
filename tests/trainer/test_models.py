"""Model and tokenizer loading through the real from_pretrained path, freezing, layer maps."""

from __future__ import annotations

import pytest
import torch

from distill_doctor.errors import InputError
from distill_doctor.trainer.models import (
    attention_layer_indices,
    check_vocab_compatible,
    freeze_teacher,
    load_model,
    load_tokenizer,
    pretrained,
    resolve_layer_map,
)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_model_round_trips_through_from_pretrained(make_tiny_model, arch):
    folder = make_tiny_model(arch, vocab_size=19, arch=arch, layers=2, hidden=32, heads=2)
    model = load_model(str(folder))
    assert model.config.model_type == arch
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    logits = model(torch.tensor([[3, 4, 5, 6]])).logits
    assert logits.shape == (1, 4, 19) and torch.isfinite(logits).all()


def test_loaded_weights_equal_the_saved_ones(make_tiny_model):
    from transformers import GPT2LMHeadModel

    folder = make_tiny_model("m", vocab_size=19, seed=7)
    saved = GPT2LMHeadModel.from_pretrained(folder).state_dict()
    loaded = load_model(str(folder)).state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_load_options_reach_the_model(make_tiny_model):
    folder = make_tiny_model("m", vocab_size=19)
    model = load_model(str(folder), attn_implementation="eager", dtype=torch.float64)
    assert model.config._attn_implementation == "eager"
    assert next(model.parameters()).dtype == torch.float64
    out = model(torch.tensor([[3, 4, 5]]), output_attentions=True)
    assert out.attentions[0].shape == (1, 2, 3, 3)


def test_tokenizer_from_model_folder_and_bare_tokenizer_json(tiny_pair, tiny_tokenizer, tmp_path):
    from_folder = load_tokenizer(str(tiny_pair.student))
    assert len(from_folder) == 19
    assert from_folder("the cat sat").input_ids == tiny_tokenizer("the cat sat").input_ids
    bare = tmp_path / "bare"
    bare.mkdir()
    tiny_tokenizer.backend_tokenizer.save(str(bare / "tokenizer.json"))
    for spec in (bare, bare / "tokenizer.json"):
        assert load_tokenizer(str(spec))("the dog ran").input_ids == [3, 6, 8]  # the, dog, ran


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("./no/such/folder", "no such folder"),
        ("/definitely/not/here", "no such folder"),
        ("nobody-xyz/not-a-cached-model", "offline"),
        ("demo:nonexistent", "no such demo model"),
    ],
)
def test_bad_specs_are_input_errors(spec, words):
    with pytest.raises(InputError, match=words):
        load_model(spec)


def test_folder_without_config_is_an_input_error(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(InputError, match="no config.json"):
        load_model(str(tmp_path))
    with pytest.raises(InputError, match="is a file"):
        load_model(str(tmp_path / "tokenizer.json"))


def test_folder_without_tokenizer_is_an_input_error(make_tiny_model):
    with pytest.raises(InputError, match="no tokenizer files"):
        load_tokenizer(str(make_tiny_model("m", vocab_size=19)))


def test_freeze_teacher_leaves_nothing_trainable(tiny_pair):
    teacher = load_model(str(tiny_pair.teacher))
    teacher.train()
    freeze_teacher(teacher)
    assert not teacher.training
    assert not any(module.training for module in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())


def test_same_vocab_gives_the_tokenizer_size(tiny_pair):
    teacher, student = load_model(str(tiny_pair.teacher)), load_model(str(tiny_pair.student))
    tokenizer = load_tokenizer(str(tiny_pair.tokenizer))
    assert check_vocab_compatible(teacher, student, tokenizer) == 19


def test_padded_embedding_table_is_accepted(tiny_pair, make_tiny_model):
    padded = load_model(str(make_tiny_model("padded", vocab_size=64)))
    teacher = load_model(str(tiny_pair.teacher))
    tokenizer = load_tokenizer(str(tiny_pair.tokenizer))
    assert check_vocab_compatible(teacher, padded, tokenizer) == 19
    assert check_vocab_compatible(padded, teacher, tokenizer) == 19


def test_vocab_mismatch_is_an_input_error_naming_the_sizes(tiny_pair, make_tiny_model):
    small = load_model(str(make_tiny_model("small", vocab_size=12)))
    teacher = load_model(str(tiny_pair.teacher))
    tokenizer = load_tokenizer(str(tiny_pair.tokenizer))
    with pytest.raises(
        InputError, match=r"tokenizer has 19 tokens but the student has 12 output logits only"
    ):
        check_vocab_compatible(teacher, small, tokenizer)


@pytest.mark.parametrize(
    ("n_student", "n_teacher", "expected"),
    [
        (2, 4, [(0, 1), (1, 3)]),
        (3, 12, [(0, 3), (1, 7), (2, 11)]),
        (4, 4, [(0, 0), (1, 1), (2, 2), (3, 3)]),
        (1, 6, [(0, 5)]),
    ],
)
def test_uniform_layer_map(n_student, n_teacher, expected):
    assert resolve_layer_map("uniform", n_student, n_teacher) == expected


def test_explicit_layer_map_is_kept_and_checked():
    assert resolve_layer_map([(0, 2), (1, 3)], 2, 4) == [(0, 2), (1, 3)]
    with pytest.raises(InputError, match=r"\[\(2, 3\)\] are out of range.*0\.\.1.*0\.\.3"):
        resolve_layer_map([(0, 1), (2, 3)], 2, 4)
    with pytest.raises(InputError, match="out of range"):
        resolve_layer_map([(0, -1)], 2, 4)
    with pytest.raises(InputError, match="empty"):
        resolve_layer_map([], 2, 4)
    with pytest.raises(InputError, match="uniform"):
        resolve_layer_map("evenly", 2, 4)


def test_attention_layer_indices():
    assert attention_layer_indices(0, 4) == []
    assert attention_layer_indices(2, 4) == [2, 3]
    assert attention_layer_indices([3, 0, 3], 4) == [0, 3]
    with pytest.raises(InputError, match="the student has 4 layers"):
        attention_layer_indices(5, 4)
    with pytest.raises(InputError, match=r"\[4\] are out of range"):
        attention_layer_indices([0, 4], 4)


class FakeLoader:
    """Stands in for AutoModelForCausalLM: records each call, raises OSError when not found."""

    def __init__(self, cached: bool, online: bool) -> None:
        self.cached, self.online, self.calls = cached, online, []

    def from_pretrained(self, source, **options):
        self.calls.append(options.get("local_files_only", False))
        if self.cached or (self.online and not options.get("local_files_only")):
            return f"model {source}"
        raise OSError("We couldn't connect to 'https://huggingface.co'")


def test_hub_names_try_the_local_cache_before_the_network():
    cached = FakeLoader(cached=True, online=False)
    assert pretrained(cached, "org/m", "org/m", "model", dtype=None) == "model org/m"
    assert cached.calls == [True]  # no network round trip for a cached model
    online = FakeLoader(cached=False, online=True)
    assert pretrained(online, "org/m", "org/m", "model") == "model org/m"
    assert online.calls == [True, False]
    offline = FakeLoader(cached=False, online=False)
    with pytest.raises(InputError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        pretrained(offline, "org/m", "org/m", "model")


def test_a_local_folder_never_goes_to_the_hub_cache(tmp_path):
    loader = FakeLoader(cached=False, online=False)
    with pytest.raises(InputError, match="could not load the saved model"):
        pretrained(loader, str(tmp_path), str(tmp_path), "model")
    assert loader.calls == [False]

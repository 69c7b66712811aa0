"""resolve_model: the built-in table (counts checked against the published ones), local
config.json folders in GPT-2 and Llama styles, the demo specs, and bad files."""

from __future__ import annotations

import json

import pytest

from distill_doctor.config.models import resolve_model
from distill_doctor.errors import InputError

# Parameter counts as published (model cards, or sum(p.numel()) of the Hugging Face model).
PUBLISHED_PARAMS = {
    "gpt2": 124_439_808,
    "distilgpt2": 81_912_576,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "EleutherAI/pythia-160m": 162_322_944,
    "EleutherAI/pythia-410m": 405_334_016,
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,
    "meta-llama/Meta-Llama-3-8B": 8_030_261_248,
    "meta-llama/Llama-3.2-1B-Instruct": 1_235_814_400,
    "meta-llama/Llama-3.2-3B": 3_212_749_824,
    "Qwen/Qwen2.5-0.5B": 494_032_768,
    "Qwen/Qwen2.5-1.5B-Instruct": 1_543_714_304,
    "Qwen/Qwen2.5-7B": 7_615_616_512,
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": 1_100_048_384,
    "HuggingFaceTB/SmolLM-135M": 134_515_008,
    "HuggingFaceTB/SmolLM-360M": 361_821_120,
    "mistralai/Mistral-7B-v0.1": 7_241_732_096,
}


@pytest.mark.parametrize(("name", "params"), sorted(PUBLISHED_PARAMS.items()))
def test_built_in_parameter_counts_match_the_published_ones(name, params):
    facts = resolve_model(name)
    assert facts is not None and facts.source == "built-in table"
    assert facts.num_params == params


def test_names_match_by_last_path_part_case_insensitively():
    facts = resolve_model("openai-community/GPT2")
    assert (facts.vocab_size, facts.max_positions, facts.num_layers) == (50257, 1024, 12)
    assert (facts.hidden_size, facts.num_heads, facts.intermediate_size) == (768, 12, 3072)
    assert resolve_model("meta-llama/Llama-3.2-1B").vocab_size == 128256
    assert resolve_model("no-such-model-anywhere") is None


def write_config(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config))
    return str(tmp_path)


def test_gpt2_style_config_json(tmp_path):
    folder = write_config(
        tmp_path,
        {
            "model_type": "gpt2",
            "vocab_size": 1000,
            "n_positions": 128,
            "n_layer": 2,
            "n_embd": 64,
            "n_head": 4,
            "n_inner": None,
        },
    )
    facts = resolve_model(folder)
    assert facts.source == str(tmp_path / "config.json")
    assert (facts.max_positions, facts.num_layers, facts.hidden_size) == (128, 2, 64)
    d, ffn = 64, 256
    layer = 4 * d * d + 4 * d + 2 * d * ffn + ffn + d + 4 * d
    assert facts.num_params == 1000 * d + 128 * d + 2 * layer + 2 * d


def test_llama_style_config_json_with_gqa(tmp_path):
    folder = write_config(
        tmp_path,
        {
            "model_type": "llama",
            "vocab_size": 500,
            "max_position_embeddings": 256,
            "num_hidden_layers": 3,
            "hidden_size": 64,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "intermediate_size": 176,
            "tie_word_embeddings": False,
        },
    )
    facts = resolve_model(folder)
    d, kv = 64, 2 * 8  # 2 kv heads of dim 8
    layer = 2 * d * d + 2 * d * kv + 3 * d * 176 + 2 * d
    assert facts.num_params == 2 * 500 * d + 3 * layer + d
    assert (facts.max_positions, facts.num_heads, facts.intermediate_size) == (256, 8, 176)


def test_config_json_missing_keys_is_an_input_error(tmp_path):
    folder = write_config(tmp_path, {"model_type": "llama", "hidden_size": 64})
    with pytest.raises(InputError, match="vocab_size"):
        resolve_model(folder)


def test_demo_models_resolve_to_the_shipped_folders_or_none():
    facts = resolve_model("demo:teacher")
    if facts is None:
        return  # not shipped yet in this checkout
    assert facts.source.endswith("demo/teacher/config.json")
    assert facts.num_params > 0

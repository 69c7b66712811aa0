"""LLaMA-Factory configs (YAML or JSON): TrainingArguments keys beside its model, method and
data arguments.

    model_name_or_path: Qwen/Qwen2-1.5B
    stage: sft
    finetuning_type: lora      # lora / freeze / full; quantization_bit 4 makes it QLoRA
    cutoff_len: 1024           # the sequence length
    max_samples: 1000          # a cap per dataset: an upper bound on the training set
    val_size: 0.1
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from distill_doctor.config.frameworks import is_number, positive_int, text
from distill_doctor.config.frameworks.markers import LLAMAFACTORY
from distill_doctor.config.hf_keys import HF_KEYS
from distill_doctor.config.translation import Translation, unknown_keys_note

NAME = "llamafactory"
# LLaMA-Factory's own arguments (model, data, finetuning, generation) that no rule reads.
OWN_KEYS = LLAMAFACTORY | frozenset(
    """
    dataset eval_dataset tokenized_path mix_strategy interleave_probs streaming buffer_size
    packing neat_packing tool_format default_system enable_thinking image_max_pixels
    image_min_pixels video_max_pixels video_min_pixels video_fps video_maxlen audio_sampling_rate
    freeze_vision_tower freeze_multi_modal_projector freeze_language_model train_mm_proj_only
    lora_alpha lora_dropout additional_target loraplus_lr_ratio use_rslora use_dora pissa_init
    create_new_adapter adapter_name_or_path new_special_tokens resize_vocab split_special_tokens
    rope_scaling shift_attn use_unsloth enable_liger_kernel moe_aux_loss_coef
    disable_gradient_checkpointing use_reentrant_gc upcast_layernorm upcast_lmhead_output
    infer_backend infer_dtype quantization_method quantization_type double_quantization
    quantization_device_map export_dir print_param_status compute_accuracy pref_loss
    pref_ftx simpo_gamma kto_chosen_weight kto_rejected_weight ppo_epochs reward_model
    reward_model_type freeze_trainable_modules freeze_extra_modules use_galore use_apollo
    use_badam use_adam_mini adapter_folder hf_hub_token ms_hub_token om_hub_token
    use_fast_tokenizer model_max_length low_cpu_mem_usage offload_folder use_swanlab
    swanlab_project do_sample num_beams length_penalty max_new_tokens
    """.split()
)


def translate(data: dict[str, Any]) -> Translation:
    tr = Translation()
    for key, value in data.items():
        if key in HF_KEYS:
            tr.take(key, value, key)
    tr.run = replace(
        tr.run,
        # LLaMA-Factory checkpoints activations unless told not to; its flash_attn "auto"
        # picks SDPA or FlashAttention, both without the s x s attention scores.
        activation_checkpointing=data.get("disable_gradient_checkpointing") is not True,
        memory_efficient_attention=data.get("flash_attn", "auto") in ("auto", "fa2", "sdpa"),
        rope_scaling=text(data.get("rope_scaling")),
    )
    tr.take("max_length", data.get("cutoff_len"), "cutoff_len")
    tr.take_extra("student_model", text(data.get("model_name_or_path")), "model_name_or_path")
    translate_method(data, tr)
    translate_dataset_cap(data, tr)
    if text(data.get("deepspeed")):
        tr.notes.append(
            f'DeepSpeed config {data["deepspeed"]}: its "auto" values follow this file; '
            "check that file too for what it sets itself."
        )
    tr.unread = [key for key in data if key not in HF_KEYS and key not in OWN_KEYS]
    note = unknown_keys_note(tr.unread, HF_KEYS | OWN_KEYS, "LLaMA-Factory argument")
    tr.notes.extend([note] if note else [])
    return tr


def translate_method(data: dict[str, Any], tr: Translation) -> None:
    """finetuning_type lora (+ quantization_bit) is a (Q)LoRA adapter over frozen weights."""
    bits = data.get("quantization_bit")
    bits = bits if bits in (4, 8) else None
    if data.get("finetuning_type", "lora") == "lora":  # LLaMA-Factory's default method
        targets = data.get("lora_target")
        tr.run = replace(
            tr.run,
            adapter="qlora" if bits == 4 else "lora",
            adapter_rank=positive_int(data.get("lora_rank")) or 8,  # LLaMA-Factory's default
            adapter_targets=str(targets) if targets is not None else None,
            weight_bits=bits,
        )


def translate_dataset_cap(data: dict[str, Any], tr: Translation) -> None:
    """max_samples caps each listed dataset; val_size takes its share out for evaluation."""
    cap = positive_int(data.get("max_samples"))
    datasets = data.get("dataset")
    if not cap or not isinstance(datasets, str):
        return
    names = [name for name in datasets.split(",") if name.strip()]
    val_size = data.get("val_size", 0)
    share = 1 - val_size if is_number(val_size) and 0 <= val_size < 1 else 1
    total = int(cap * len(names) * share)
    if total > 0:
        tr.run = replace(tr.run, max_train_samples=total)
        tr.notes.append(
            f"max_samples {cap:,} x {len(names)} dataset(s): at most {total:,} training "
            "examples; pass --train-samples N for the rules that need the real count."
        )

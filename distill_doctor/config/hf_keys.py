"""The keys a Hugging Face `TrainingArguments` JSON may hold (transformers 4.x and 5.x, plus
the distillation keys of TRL's `GKDConfig`/`SFTConfig`).

A saved `TrainingArguments` holds a hundred keys that say nothing about the schedule, the
memory or the loss (hub, logging, dataloader, distributed settings): they are accepted silently.
A key in none of these lists is a typo until proven otherwise, and gets a did-you-mean.
Kept as data, not imported from transformers, so that `doctor check` never loads it.
"""

TRAINING_ARGUMENTS_KEYS = frozenset(
    """
    output_dir overwrite_output_dir do_train do_eval do_predict eval_strategy
    evaluation_strategy prediction_loss_only per_device_train_batch_size
    per_device_eval_batch_size per_gpu_train_batch_size per_gpu_eval_batch_size
    gradient_accumulation_steps eval_accumulation_steps eval_delay torch_empty_cache_steps
    learning_rate weight_decay adam_beta1 adam_beta2 adam_epsilon max_grad_norm
    num_train_epochs max_steps lr_scheduler_type lr_scheduler_kwargs warmup_ratio warmup_steps
    log_level log_level_replica log_on_each_node logging_dir logging_strategy
    logging_first_step logging_steps logging_nan_inf_filter save_strategy save_steps
    save_total_limit save_safetensors save_on_each_node save_only_model
    restore_callback_states_from_checkpoint no_cuda use_cpu use_mps_device seed data_seed
    jit_mode_eval use_ipex bf16 fp16 fp16_opt_level half_precision_backend bf16_full_eval
    fp16_full_eval tf32 local_rank ddp_backend tpu_num_cores tpu_metrics_debug debug
    dataloader_drop_last eval_steps dataloader_num_workers dataloader_prefetch_factor
    past_index run_name disable_tqdm remove_unused_columns label_names
    load_best_model_at_end metric_for_best_model greater_is_better ignore_data_skip fsdp
    fsdp_min_num_params fsdp_config fsdp_transformer_layer_cls_to_wrap accelerator_config
    parallelism_config deepspeed label_smoothing_factor optim optim_args optim_target_modules
    adafactor group_by_length length_column_name report_to ddp_find_unused_parameters
    ddp_bucket_cap_mb ddp_broadcast_buffers ddp_static_graph ddp_timeout
    dataloader_pin_memory dataloader_persistent_workers dataloader_multiprocessing_context
    dataloader_in_order skip_memory_metrics use_legacy_prediction_loop push_to_hub
    resume_from_checkpoint hub_model_id hub_strategy hub_token hub_private_repo
    hub_always_push hub_revision gradient_checkpointing gradient_checkpointing_kwargs
    activation_checkpointing activation_checkpointing_kwargs include_inputs_for_metrics
    include_for_metrics eval_do_concat_batches fp16_backend push_to_hub_model_id
    push_to_hub_organization push_to_hub_token mp_parameters auto_find_batch_size
    full_determinism torchdynamo ray_scope torch_compile torch_compile_backend
    torch_compile_mode dispatch_batches split_batches include_tokens_per_second
    include_num_input_tokens_seen neftune_noise_alpha batch_eval_metrics eval_on_start
    use_liger_kernel liger_kernel_config eval_use_gather_object average_tokens_across_devices
    use_cache train_sampling_strategy project trackio_space_id trackio_bucket_id
    trackio_static_space_id enable_jit_checkpoint xpu_backend sharded_ddp
    """.split()
)

# TRL's trainer configs (SFT, GKD, GRPO, DPO, online DPO) extend TrainingArguments with these.
TRL_KEYS = frozenset(
    """
    temperature lmbda beta max_new_tokens teacher_model_name_or_path teacher_model_init_kwargs
    disable_dropout seq_kd model_init_kwargs max_length max_seq_length dataset_text_field
    packing packing_strategy padding_free dataset_num_proc dataset_kwargs eos_token pad_token
    completion_only_loss assistant_only_loss chat_template_path dataset_batch_size
    num_generations max_prompt_length max_completion_length use_vllm vllm_device
    vllm_gpu_memory_utilization vllm_dtype vllm_max_model_len vllm_mode vllm_server_host
    vllm_server_port vllm_tensor_parallel_size log_completions num_completions_to_print
    reward_funcs reward_weights reward_model_path top_p top_k min_p repetition_penalty
    epsilon epsilon_high num_iterations loss_type scale_rewards mask_truncated_completions
    sync_ref_model ref_model_mixup_alpha ref_model_sync_steps generation_batch_size
    steps_per_generation generation_kwargs cache_implementation ds3_gather_for_generation
    label_pad_token_id padding_value truncation_mode max_target_length is_encoder_decoder
    precompute_ref_log_probs rpo_alpha ref_adapter_name model_adapter_name f_divergence_type
    use_logits_to_keep padding_free missing_eos_penalty judge system_prompt
    """.split()
)

# HfArgumentParser scripts (TRL's ModelConfig and ScriptArguments, open-r1, alignment-handbook)
# parse model, data and LoRA dataclasses from the same file as the TrainingArguments.
MODEL_DATA_LORA_KEYS = frozenset(
    """
    model_name_or_path model_revision torch_dtype dtype attn_implementation trust_remote_code
    use_peft lora_r lora_alpha lora_dropout lora_target_modules lora_modules_to_save
    lora_task_type use_rslora use_dora load_in_8bit load_in_4bit bnb_4bit_quant_type
    use_bnb_nested_quant bnb_4bit_compute_dtype tokenizer_name_or_path cache_dir
    dataset_name dataset_config dataset_configs dataset_train_split dataset_test_split
    dataset_mixture dataset_streaming dataset_prompt_column gradient_checkpointing_use_reentrant
    ignore_bias_buffers num_processes world_size chat_template callbacks benchmarks wandb_entity
    wandb_project wandb_run_group
    """.split()
)

HF_KEYS = TRAINING_ARGUMENTS_KEYS | TRL_KEYS | MODEL_DATA_LORA_KEYS
# Keys that only TRL or an HfArgumentParser script has: a file with them speaks "trl".
TRL_ONLY = (TRL_KEYS | MODEL_DATA_LORA_KEYS) - TRAINING_ARGUMENTS_KEYS

# The keys whose value is a JSON object; any other object in a config is a native section.
HF_OBJECT_KEYS = frozenset(k for k in HF_KEYS if k.endswith(("_kwargs", "_config"))) | {"deepspeed"}

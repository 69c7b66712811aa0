"""`Record`: one logged step's metrics as a flat mapping. Live hooks and log parsers both
produce records; detectors consume them and never care where they came from.

Every key is optional: a detector that needs a key it never sees stays silent. Values are
plain Python numbers (float('nan') and float('inf') allowed) or strings.

Keys (use these names, not synonyms; parsers map their formats onto them):
    step            optimizer step (HF `global_step`): the x-axis of everything
    micro_step      micro-batch index, when a log shows it (gradient accumulation)
    epoch           fractional epoch
    lr              learning rate of the first param group
    loss            total training loss as optimised
    loss_<name>     loss components: loss_ce (LM/CE), loss_kd, loss_feature, loss_attention...
    grad_norm       global gradient norm before clipping
    checksum        a parameter checksum of the student (sum of parameters)
    eval_loss       eval total loss; eval_<name> for other eval metrics (eval_ce, eval_ppl,
                    eval_kd, eval_accuracy...)
    ppl             a perplexity the training log reports (to check how it was computed)
    steps_per_s     optimizer steps per second;  tokens_per_s  tokens per second
    mem_used_bytes / mem_total_bytes   device memory in use / capacity
    mem_allocated_bytes  tensors allocated by torch on the GPU (the precise leak signal)
    mem_rss_bytes   the process's resident memory (a CPU run's memory)
    all_masked_batches  accumulated batches so far that had no valid label token
    loss_scale      the fp16 GradScaler scale
    valid_tokens    count of label tokens that are not ignored (-100) in the step
    planned_steps   the optimizer steps the run will take (from config or a log line)
    scheduler_steps the total steps the LR scheduler was told, when a log or config says
    vocab_size      the model's vocabulary size, when known (for loss-above-chance)
    warning         the text of a warning line the log printed at this step
    device          where the run trains: "cpu", "cuda", "cuda:1", "mps" (a string)
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

STEP = "step"
MICRO_STEP = "micro_step"
EPOCH = "epoch"
LR = "lr"
LOSS = "loss"
LOSS_PREFIX = "loss_"
GRAD_NORM = "grad_norm"
CHECKSUM = "checksum"
EVAL_PREFIX = "eval_"
EVAL_LOSS = "eval_loss"
PPL = "ppl"
STEPS_PER_S = "steps_per_s"
TOKENS_PER_S = "tokens_per_s"
MEM_USED = "mem_used_bytes"
MEM_TOTAL = "mem_total_bytes"
MEM_ALLOCATED = "mem_allocated_bytes"
MEM_RSS = "mem_rss_bytes"
ALL_MASKED_BATCHES = "all_masked_batches"
LOSS_SCALE = "loss_scale"
VALID_TOKENS = "valid_tokens"
PLANNED_STEPS = "planned_steps"
SCHEDULER_STEPS = "scheduler_steps"
VOCAB_SIZE = "vocab_size"
WARNING = "warning"
DEVICE = "device"

#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Masked-spectrogram pretraining of AxLSTM, from one CPU to many GPUs.

    python examples/pretrain.py --train_dir wavs/ --preset tiny --output_dir runs/tiny --max_train_steps 1000
    python examples/pretrain.py --train_dir wavs/ --preset tiny --output_dir runs/tiny --max_train_steps 2000 \
        --resume_from_checkpoint latest --extend_schedule
    python examples/pretrain.py --train_dir wavs/ --model_name_or_path runs/tiny --output_dir runs/tiny-mine \
        --max_train_steps 500
    accelerate launch --mixed_precision bf16 examples/pretrain.py --dataset_name user/audio --audio_column audio \
        --preset tiny --output_dir runs/tiny-bf16 --max_train_steps 1000
    python examples/prepare_features.py --train_dir wavs/ --output_dir feats/ --num_proc 8
    accelerate launch examples/pretrain.py --features_dir feats/ --preset small --output_dir runs/small \
        --max_train_steps 1000

(`--dataset_name` takes a Hub id or a local dataset folder; bf16 autocast pays on GPUs and on CPUs with bf16 units.)

The recipe defaults to the authors' (per-clip normalisation, random 2 s crops, mask ratio 0.5, loss on all patches,
AdamW (0.9, 0.95) with weight decay 0.05 on >= 2-D weights, lr 1.5e-4 x global batch / 256, linear warm-up then
cosine to 0). The final model is a `save_pretrained` folder at the top of `--output_dir`; checkpoints go to
`--output_dir/checkpoints/checkpoint-<step>`, every `--checkpointing_steps` (default 500) and always at the last step,
and `--resume_from_checkpoint latest` continues exactly.

Continuing: a finished run continues to more steps with `--resume_from_checkpoint latest --extend_schedule` and the
new `--max_train_steps`: the warm-up keeps its steps and the cosine decay is recomputed over the new total (update
t+1 gets lr x 0.5 (1 + cos(pi (t - warm-up) / (total - warm-up)))). `--model_name_or_path` starts a new run (fresh
optimizer and schedule, step 0) from an existing model: a save_pretrained folder of AxLSTMForPreTraining or
SSASTForPreTraining, an encoder-only folder (the pretraining head is initialised fresh, and the log says so) or the
authors' .pth checkpoint; its architecture and feature extractor are used (--preset and the size flags are refused).

Safety: a non-empty `--output_dir` is refused unless the run resumes (`--resume_from_checkpoint`) or
`--overwrite_output_dir` is given (which first deletes what an earlier run wrote there); `--resume_from_checkpoint
latest` that finds no checkpoint starts from scratch only when that overwrites nothing but a dead run's log (a model
or config there is refused). While a run lives its main process holds a lock on `--output_dir` (`.hf_axlstm.lock`,
released when the process ends, however it ends): a second run on the folder is refused. A checkpoint's completion
marker records the sha256 of each of its files; a damaged checkpoint is skipped (with a warning naming it and the
file) for the previous one. A resume whose schedule settings (steps, warm-up, learning rate, batch, accumulation,
processes, optimizer, seed, split, crops, mask ratio, number of clips) differ from the checkpoint's is refused, naming
the flag and both values. On resume `train_log.jsonl` is cut back to the checkpoint's step, so each step appears once.
A full or read-only disk stops the run with one `error:` line (a half-written checkpoint is deleted). fp16 on a CPU
is refused (accelerate would train float32 there): use bf16.

Errors are one `error:` line on stderr with exit status 2. `accelerate launch` adds its own traceback after any
non-zero exit of the script it started (quoting the script's stderr); `accelerate launch -q` shows the script's line
alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMForPreTraining, SSASTConfig, SSASTForPreTraining
from hf_axlstm.audio import AudioDecodeError
from hf_axlstm.cpu_allocator import tune_cpu_allocator
from hf_axlstm.cpu_kernels import enable_fused_cpu_kernels
from hf_axlstm.data import one_line
from hf_axlstm.pretraining import (
    OPTIMIZERS,
    AudioFileSource,
    FeatureShardSource,
    HFAudioSource,
    NonFiniteClipError,
    OutputDirLock,
    PretrainingCrops,
    PretrainingError,
    StreamingCrops,
    ThroughputMeter,
    TrainerState,
    adamw_kwargs,
    check_schedule,
    clip_log_mel,
    collate_crops,
    describe_os_error,
    epoch_order,
    finalize_checkpoint,
    format_duration,
    is_write_failure,
    list_checkpoints,
    load_dataset_split,
    load_feature_shards,
    load_scheduler_state,
    num_patches,
    output_dir_entries,
    parameter_groups,
    plot_reconstructions,
    plot_training_curve,
    reconstruction_examples,
    resolve_checkpoint,
    split_indices,
    temporary_checkpoint_dir,
    truncate_log,
    try_lock_output_dir,
    undecoded_audio_column,
    verify_checkpoint,
    warmup_cosine_lambda,
    warmup_cosine_schedule,
    write_failure_message,
)
from hf_axlstm.pretraining import ClipSource as _ClipSource

CONFIG_OVERRIDES = (
    "hidden_size",
    "num_hidden_layers",
    "num_heads",
    "expansion_factor",
    "num_attention_heads",
    "frames_per_window",
)
# Overrides that only one architecture has.
ARCHITECTURE_ONLY = {"num_heads": "axlstm", "expansion_factor": "axlstm", "num_attention_heads": "ssast"}
MODEL_INPUTS = ("input_values", "attention_mask", "noise")
# Upper bounds of the size flags: far above the paper's models (base: 768 wide, 12 blocks, 200 frames), far below
# sizes whose first allocation would take the machine's memory (--hidden_size 1000000: terabytes of weights).
SIZE_LIMITS = {
    "hidden_size": 8192,
    "num_hidden_layers": 256,
    "num_heads": 256,
    "num_attention_heads": 256,
    "expansion_factor": 16,
    "frames_per_window": 60000,
    "crop_frames": 60000,
}
SIZE_LIMIT_NOTE = "a bound far above the paper's base model, against sizes that cannot fit in memory"
ARCHITECTURES = {"axlstm": (AxLSTMConfig, AxLSTMForPreTraining), "ssast": (SSASTConfig, SSASTForPreTraining)}

DEFAULT_CHECKPOINTING_STEPS = 500

# What a finished (or interrupted) run writes at the top of --output_dir: --overwrite_output_dir deletes these.
RUN_DIRS = ("checkpoints", "clip_ids", "axlstm_pretraining", ".tmp-final-model")
RUN_FILES = (
    "train_log.jsonl",
    "trainer_state.json",
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*-of-*.safetensors",
    "*_axlstm.py",
    "*_ssast.py",
    "training_curve.png",
    "reconstructions.png",
    ".train_log.jsonl.tmp",
    ".trainer_state.json.tmp",
)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Masked-spectrogram pretraining of AxLSTM (accelerate).")
    data = parser.add_argument_group("data (give exactly one of --train_dir, --dataset_name, --features_dir)")
    data.add_argument("--train_dir", type=str, help="Folder of audio files (recursive; wav/flac/ogg...).")
    data.add_argument("--dataset_name", type=str, help="A `datasets` dataset: Hub id or local path.")
    data.add_argument("--dataset_config_name", type=str, help="Configuration of --dataset_name.")
    data.add_argument(
        "--train_split",
        type=str,
        default=None,
        help="Split of --dataset_name to train on (default: train). A folder of one saved `Dataset` (not a "
        "`DatasetDict`) is the split itself: a --train_split naming another split is refused.",
    )
    data.add_argument("--streaming", action="store_true", help="Stream --dataset_name (needs --max_train_steps).")
    data.add_argument("--audio_column", type=str, default="audio", help="Audio column of --dataset_name.")
    data.add_argument("--features_dir", type=str, help="Log-mel shards written by examples/prepare_features.py.")
    data.add_argument("--validation_fraction", type=float, default=0.05, help="Held-out share of the clips.")
    data.add_argument("--max_validation_clips", type=int, default=64, help="Cap on held-out clips.")
    data.add_argument("--crop_frames", type=int, default=None, help="Crop length in frames (config's 200 = 2 s).")
    data.add_argument(
        "--num_workers",
        type=int,
        default=0,
        help="DataLoader worker processes per training process (0: load in the training process). On a GPU, a few "
        "workers keep it fed; on a CPU they take cores from the model.",
    )
    data.add_argument(
        "--prefetch_factor", type=int, default=None, help="Batches each worker loads ahead (torch's default: 2)."
    )

    model = parser.add_argument_group("model")
    model.add_argument(
        "--model_name_or_path",
        type=str,
        default=None,
        help="Continue pretraining from an existing model instead of a fresh one: a local save_pretrained folder of "
        "AxLSTMForPreTraining / SSASTForPreTraining (encoder and head), of an encoder alone (AxLSTMModel, a "
        "classifier, ...: the pretraining head is then initialised fresh, and the log says so), or the authors' "
        ".pth checkpoint. The architecture comes from the model (--preset, --model_type and the size flags are "
        "refused with it); the optimizer and schedule start fresh at step 0.",
    )
    model.add_argument(
        "--model_type",
        type=str,
        default=None,
        choices=sorted(ARCHITECTURES),
        help="axlstm (default) or ssast, the paper's transformer baseline; every other flag is the same.",
    )
    model.add_argument(
        "--preset", type=str, default=None, choices=["tiny", "small", "base"], help="Model size (default: tiny)."
    )
    for name in CONFIG_OVERRIDES:
        only = f" ({ARCHITECTURE_ONLY[name]} only)" if name in ARCHITECTURE_ONLY else ""
        model.add_argument(f"--{name}", type=int, default=None, help=f"Override the preset's {name}{only}.")
    model.add_argument(
        "--mask_token_positions",
        action="store_true",
        help="Add the position embedding to the mask tokens too (the original SSAST; the authors' code does not).",
    )
    model.add_argument(
        "--mask_ratio",
        type=float,
        default=None,
        help="Share of patches masked (default: the authors' 0.5, or the --model_name_or_path model's).",
    )
    model.add_argument(
        "--loss_on",
        type=str,
        default=None,
        choices=["all", "masked"],
        help="Patches in the MSE (default: all, or the --model_name_or_path model's).",
    )
    model.add_argument("--torch_compile", action="store_true", help="torch.compile the model.")

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", type=str, required=True)
    train.add_argument("--max_train_steps", type=int, default=None, help="Optimizer steps (overrides epochs).")
    train.add_argument("--num_train_epochs", type=int, default=100)
    train.add_argument("--per_device_train_batch_size", type=int, default=32)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--learning_rate", type=float, default=None, help="Default: 1.5e-4 x global batch / 256.")
    train.add_argument("--weight_decay", type=float, default=0.05)
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.95)
    train.add_argument("--adam_epsilon", type=float, default=1e-8)
    train.add_argument(
        "--optim",
        type=str,
        default="adamw_torch_fused",
        choices=OPTIMIZERS,
        help="AdamW implementation (transformers' names): torch's fused kernel (default; CPU and CUDA) or its default "
        "(a per-parameter loop on CPU, foreach on CUDA). The same update rule; a resume must use the checkpoint's.",
    )
    train.add_argument(
        "--cpu_allocator",
        type=str,
        default="tuned",
        choices=["tuned", "default"],
        help="Training on a CPU: `tuned` (default) keeps glibc's freed memory in the heap so that the large tensors "
        "of every step reuse pages instead of page-faulting in fresh ones (hf_axlstm.cpu_allocator; measured 1.2x "
        "(tiny) to 1.9x (base) on the step); the process's memory then stays at its peak. `default` leaves malloc alone.",
    )
    train.add_argument(
        "--cpu_kernels",
        type=str,
        default="fused",
        choices=["fused", "eager"],
        help="Training on a CPU: `fused` (default) runs the chunkwise mLSTM cell and the mixer's conv, q / k / v "
        "projections and output tail, forward and backward, through hf_axlstm's fused C++ kernels "
        "(hf_axlstm.cpu_kernels; built once with a C++ compiler and ninja, about a minute, then cached; measured "
        "1.4x on tiny's step), falling back to the eager kernels with a warning where they cannot be built. `eager` "
        "runs the torch implementation. The same function and gradients either way.",
    )
    train.add_argument("--warmup_steps", type=int, default=None, help="Linear warm-up steps (overrides ratio).")
    train.add_argument("--warmup_ratio", type=float, default=0.1, help="Warm-up share of the steps (10 of 100).")
    train.add_argument("--max_grad_norm", type=float, default=None, help="Clip gradients to this norm.")
    train.add_argument(
        "--mixed_precision",
        type=str,
        default=None,
        choices=["no", "fp16", "bf16"],
        help="Default: what `accelerate launch --mixed_precision` / `accelerate config` set.",
    )
    train.add_argument("--seed", type=int, default=0)

    ckpt = parser.add_argument_group("checkpoints and logging")
    ckpt.add_argument(
        "--checkpointing_steps",
        type=int,
        default=DEFAULT_CHECKPOINTING_STEPS,
        help=f"Checkpoint every N optimizer steps (default: {DEFAULT_CHECKPOINTING_STEPS}), and always at the last "
        "step, so that a finished run can be continued (--extend_schedule).",
    )
    ckpt.add_argument("--checkpoints_total_limit", type=int, default=3, help="Keep the newest K checkpoints.")
    ckpt.add_argument(
        "--resume_from_checkpoint",
        type=str,
        default=None,
        help="A checkpoint folder or `latest` (the newest intact one under --output_dir/checkpoints; with none yet, "
        "a new run starts there, unless --output_dir holds a model or other files a new run would overwrite: that "
        "is refused). The schedule flags must equal the checkpoint's (see --extend_schedule).",
    )
    ckpt.add_argument(
        "--extend_schedule",
        action="store_true",
        help="With --resume_from_checkpoint: continue the run to a larger --max_train_steps (or --num_train_epochs) "
        "than the checkpoint's, e.g. a finished run. The warm-up keeps the checkpoint's steps and the cosine decay "
        "is recomputed over the new total: from the checkpoint's step t on, update t+1 gets lr x 0.5 (1 + cos(pi (t "
        "- warm-up) / (new total - warm-up))), the rate the run would have had with the new total from the start. "
        "Every other schedule flag must still match; without this flag a different --max_train_steps is refused.",
    )
    ckpt.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Start a new run in a non-empty --output_dir: first DELETES what an earlier run wrote there (checkpoints/, "
        "clip_ids/, axlstm_pretraining/, train_log.jsonl, trainer_state.json, the model files and plots), so "
        "`latest` never finds the old checkpoints; other files are left alone. Without it (or "
        "--resume_from_checkpoint) a non-empty --output_dir is refused.",
    )
    ckpt.add_argument(
        "--validation_steps",
        type=int,
        default=None,
        help="Validate every N steps (default: at checkpoints and at the end).",
    )
    ckpt.add_argument(
        "--logging_steps",
        type=int,
        default=10,
        help="Read the loss and gradient norm back from the device every N steps (each step is still logged): "
        "fewer host syncs. A NaN loss is caught at the next read, before any checkpoint.",
    )
    ckpt.add_argument("--with_tracking", action="store_true", help="Log to accelerate trackers (tensorboard).")
    ckpt.add_argument("--report_to", type=str, default="tensorboard", help="Tracker for --with_tracking.")
    ckpt.add_argument("--log_clip_ids", action="store_true", help="Write the clip ids each rank consumed.")
    ckpt.add_argument(
        "--stop_after_steps",
        type=int,
        default=None,
        help="Stop after this many steps without the final save, as if interrupted (for testing).",
    )
    ckpt.add_argument("--no_progress_bar", action="store_true")
    args = parser.parse_args(argv)

    sources = [s for s in (args.train_dir, args.dataset_name, args.features_dir) if s]
    if len(sources) != 1:
        raise PretrainingError("give exactly one data source: --train_dir, --dataset_name or --features_dir.")
    if args.streaming and not args.dataset_name:
        raise PretrainingError("--streaming applies to --dataset_name only.")
    if args.streaming and args.max_train_steps is None:
        raise PretrainingError("--streaming needs --max_train_steps (a stream has no known length).")
    check_model_source(args)
    check_args(args)
    return args


def _bad(flag: str, value, expected: str) -> PretrainingError:
    return PretrainingError(f"--{flag}={value} is invalid; expected {expected}.")


def check_args(args: argparse.Namespace) -> None:
    """Range checks of every numeric flag and the paths that can be checked before any work: `PretrainingError`
    naming the flag, the value and what is expected."""
    positive = ["per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs"]
    positive += ["max_train_steps", "crop_frames", "checkpointing_steps", "checkpoints_total_limit"]
    positive += ["validation_steps", "stop_after_steps", "logging_steps", "prefetch_factor", *CONFIG_OVERRIDES]
    for name in positive:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _bad(name, value, "a positive integer")
    for name, limit in SIZE_LIMITS.items():
        value = getattr(args, name)
        if value is not None and value > limit:
            raise _bad(name, value, f"a positive integer up to {limit} ({SIZE_LIMIT_NOTE})")
    for name, architecture in ARCHITECTURE_ONLY.items():
        if getattr(args, name) is not None and (args.model_type or "axlstm") != architecture:
            raise PretrainingError(
                f"--{name} applies to --model_type {architecture}, not {args.model_type or 'axlstm'}"
                + (" (SSAST's heads: --num_attention_heads)." if name == "num_heads" else ".")
            )
    for name in ("num_workers", "warmup_steps", "max_validation_clips", "seed"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise _bad(name, value, "an integer >= 0")
    if args.learning_rate is not None and not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise _bad("learning_rate", args.learning_rate, "a finite number > 0")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        raise _bad("weight_decay", args.weight_decay, "a finite number >= 0")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            raise _bad(name, getattr(args, name), "a number in [0, 1)")
    if not (math.isfinite(args.adam_epsilon) and args.adam_epsilon > 0):
        raise _bad("adam_epsilon", args.adam_epsilon, "a finite number > 0")
    if args.max_grad_norm is not None and not (math.isfinite(args.max_grad_norm) and args.max_grad_norm > 0):
        raise _bad("max_grad_norm", args.max_grad_norm, "a finite number > 0 (leave it out for no clipping)")
    if not 0 <= args.warmup_ratio < 1:
        raise _bad("warmup_ratio", args.warmup_ratio, "a number in [0, 1)")
    if not 0 <= args.validation_fraction < 1:
        raise _bad("validation_fraction", args.validation_fraction, "a number in [0, 1)")
    if args.prefetch_factor is not None and args.num_workers == 0:
        raise PretrainingError(
            f"--prefetch_factor={args.prefetch_factor} needs --num_workers >= 1 (without workers nothing loads ahead)."
        )
    if args.mask_ratio is not None and not 0 < args.mask_ratio < 1:
        raise _bad("mask_ratio", args.mask_ratio, "a number in (0, 1)")
    for flag in ("train_dir", "features_dir"):
        value = getattr(args, flag)
        if value and not Path(value).is_dir():
            what = "is a file" if Path(value).exists() else "does not exist"
            raise PretrainingError(f"--{flag} {value!r} {what}; expected a folder.")
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        raise PretrainingError(f"--output_dir {args.output_dir!r} is a file; expected a folder (new or empty).")
    resume = args.resume_from_checkpoint
    if resume is not None and resume != "latest" and not Path(resume).is_dir():
        what = "is a file" if Path(resume).exists() else "does not exist"
        raise PretrainingError(
            f"--resume_from_checkpoint {resume!r} {what}; expected a checkpoint folder or 'latest'."
        )
    if resume is not None and args.overwrite_output_dir:
        raise PretrainingError(
            "--overwrite_output_dir deletes the checkpoints --resume_from_checkpoint would continue from; give one."
        )
    if args.extend_schedule and resume is None:
        raise PretrainingError(
            "--extend_schedule continues a run from a checkpoint: give --resume_from_checkpoint (e.g. latest) too."
        )


def check_model_source(args: argparse.Namespace) -> None:
    """`--model_name_or_path`: it exists, holds an AxLSTM or SSAST model, and no flag that sets the architecture
    contradicts it; sets `args.model_type` from it (a folder) and the defaults of --preset / --model_type otherwise."""
    source = args.model_name_or_path
    if source is None:
        args.model_type = args.model_type or "axlstm"
        args.preset = args.preset or "tiny"
        return
    path = Path(source).expanduser()
    expected = "a local save_pretrained folder of an AxLSTM or SSAST model, or the authors' .pth checkpoint"
    if not path.exists():
        raise PretrainingError(f"--model_name_or_path {source!r} does not exist; expected {expected}.")
    output_dir = Path(args.output_dir).expanduser().resolve()
    if path.resolve() == output_dir:
        raise PretrainingError(
            f"--model_name_or_path {source!r} is the --output_dir: the new run would write over the model it starts "
            "from; choose another --output_dir."
        )
    if args.overwrite_output_dir and output_dir in path.resolve().parents:
        raise PretrainingError(
            f"--model_name_or_path {source!r} is inside --output_dir, which --overwrite_output_dir would clear before "
            "the model is loaded; copy the model elsewhere or choose another --output_dir."
        )
    conflicts = [f"--{name}" for name in ("preset", *CONFIG_OVERRIDES) if getattr(args, name) is not None]
    if conflicts:
        raise PretrainingError(
            f"--model_name_or_path takes the architecture from {source!r}; {', '.join(conflicts)} would contradict "
            "it: leave them out (or start a new model without --model_name_or_path)."
        )
    if path.is_file():
        if path.suffix not in (".pth", ".pt", ".ckpt"):
            raise PretrainingError(
                f"--model_name_or_path {source!r} is a file but not a .pth checkpoint; expected {expected}."
            )
        return  # the model type comes from the checkpoint's keys (main)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise PretrainingError(f"--model_name_or_path {source!r} has no config.json; expected {expected}.")
    try:
        fields = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PretrainingError(f"--model_name_or_path {source!r}: config.json is not valid JSON ({err}).") from None
    model_type = fields.get("model_type") if isinstance(fields, dict) else None
    if model_type not in ARCHITECTURES:
        raise PretrainingError(
            f"--model_name_or_path {source!r} holds a {model_type!r} model; expected one of {sorted(ARCHITECTURES)}."
        )
    if args.model_type is not None and args.model_type != model_type:
        raise PretrainingError(
            f"--model_type {args.model_type} contradicts --model_name_or_path {source!r}, a {model_type} model; "
            "leave --model_type out."
        )
    args.model_type = model_type


# What a new run would write over at the top of --output_dir; `--resume_from_checkpoint latest` that finds no
# checkpoint refuses to start from scratch over them (a user's model, a finished run of an older version).
NEW_RUN_WOULD_OVERWRITE = tuple(p for p in RUN_FILES if p not in ("train_log.jsonl", ".train_log.jsonl.tmp"))


def prepare_output_dir(args, accelerator) -> None:
    """Refuse a non-empty --output_dir unless resuming or --overwrite_output_dir; with the latter, delete what an
    earlier run wrote (main process). `--resume_from_checkpoint latest` with no checkpoint yet starts a new run only
    when that writes over nothing but a dead run's log. Every process checks before any writes (the barrier at the
    end); the main process holds the folder's lock (`lock_output_dir`) before this runs."""
    output_dir = Path(args.output_dir)
    existing = output_dir_entries(output_dir)
    if existing and args.resume_from_checkpoint == "latest" and not list_checkpoints(output_dir / "checkpoints"):
        kept = sorted({p.name for pattern in NEW_RUN_WOULD_OVERWRITE for p in output_dir.glob(pattern)})
        if kept:
            shown = ", ".join(kept[:4]) + (", ..." if len(kept) > 4 else "")
            raise PretrainingError(
                f"--resume_from_checkpoint latest: {str(output_dir / 'checkpoints')!r} holds no checkpoint, and "
                f"--output_dir {args.output_dir!r} holds files a new run would overwrite ({shown}): not starting "
                "from scratch over them. Pass --model_name_or_path to continue pretraining from that model in "
                "another folder, --overwrite_output_dir to start a new run there (deleting them), or choose another "
                "folder."
            )
    if existing and args.resume_from_checkpoint is None:
        if not args.overwrite_output_dir:
            shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
            raise PretrainingError(
                f"--output_dir {args.output_dir!r} is not empty ({shown}): it holds an earlier run or other files. "
                "Pass --resume_from_checkpoint latest to continue it, --overwrite_output_dir to start a new run "
                "there (deleting the earlier run's checkpoints and model), or choose another folder."
            )
        if accelerator.is_main_process:
            removed = []
            for name in RUN_DIRS:
                if (output_dir / name).is_dir():
                    shutil.rmtree(output_dir / name)
                    removed.append(name + "/")
            for pattern in RUN_FILES:
                for path in sorted(output_dir.glob(pattern)):
                    if path.is_file():
                        path.unlink()
                        removed.append(path.name)
            if removed:
                _warn(accelerator, f"--overwrite_output_dir: deleted {', '.join(removed)} in {output_dir}")
    accelerator.wait_for_everyone()


# ------------------------------------------------------------------------------------------------ data


class _ListSource(_ClipSource):
    """Clips already in memory (the held-out head of a stream)."""

    def __init__(self, log_mels, ids):
        self.log_mels, self.ids = log_mels, ids

    def __len__(self):
        return len(self.log_mels)

    def clip_id(self, index):
        return self.ids[index]

    def log_mel(self, index):
        return self.log_mels[index]


def load_hf_dataset(args):
    return load_dataset_split(args.dataset_name, args.dataset_config_name, args.train_split, args.streaming)


def build_data(args, config, feature_extractor, accelerator):
    """Training dataset (map-style PretrainingCrops or StreamingCrops) and validation PretrainingCrops (or None)."""
    crop = args.crop_frames or config.frames_per_window
    patches = num_patches(crop, config)
    if args.streaming:
        from datasets.distributed import split_dataset_by_node

        stream = undecoded_audio_column(load_hf_dataset(args), args.audio_column)
        val = None
        num_val = args.max_validation_clips if args.validation_fraction > 0 else 0
        if num_val:
            rows = list(stream.take(num_val))
            mels = []
            for i, row in enumerate(rows):
                try:
                    mels.append(clip_log_mel(_decode(row[args.audio_column], feature_extractor), feature_extractor))
                except NonFiniteClipError as err:
                    raise NonFiniteClipError(f"clip (stream position {i}): {err}; remove or repair it.") from None
            source = _ListSource(mels, [f"val:{i}" for i in range(len(mels))])
            val = PretrainingCrops(source, range(len(source)), crop, patches, args.seed, fixed=True)
            stream = stream.skip(num_val)
        stream = split_dataset_by_node(stream, rank=accelerator.process_index, world_size=accelerator.num_processes)
        train = StreamingCrops(
            stream, args.audio_column, feature_extractor, crop, patches, args.seed, accelerator.process_index
        )
        return train, val

    if args.train_dir:
        source = AudioFileSource(args.train_dir, feature_extractor)
    elif args.features_dir:
        shards = load_feature_shards(args.features_dir, feature_extractor)
        if shards.features["log_mel"].shape[-1] != config.num_mel_bins:
            raise PretrainingError(
                f"--features_dir has {shards.features['log_mel'].shape[-1]} mel bins; the model expects "
                f"{config.num_mel_bins}."
            )
        source = FeatureShardSource(shards)
    else:
        source = HFAudioSource(load_hf_dataset(args), args.audio_column, feature_extractor)
    train_idx, val_idx = split_indices(len(source), args.validation_fraction, args.seed, args.max_validation_clips)
    if len(train_idx) < accelerator.num_processes:
        raise PretrainingError(f"{len(train_idx)} training clips cannot feed {accelerator.num_processes} processes.")
    train = PretrainingCrops(source, train_idx, crop, patches, args.seed)
    val = PretrainingCrops(source, val_idx, crop, patches, args.seed, fixed=True) if val_idx else None
    return train, val


def _decode(value, feature_extractor):
    from hf_axlstm.audio import decode_audio_value

    return decode_audio_value(value, feature_extractor.sampling_rate)


# ------------------------------------------------------------------------------------------------ saving


def save_model_folder(accelerator, model, feature_extractor, folder: Path, history, val_batch) -> None:
    """`save_pretrained` model + feature extractor (complete auto_map) and the PNGs. Call on every process."""
    state_dict = accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return
    # torch.compile wraps the model: its state-dict keys carry an `_orig_mod.` prefix the folder must not have
    state_dict = {k.replace("_orig_mod.", ""): v for k, v in state_dict.items()}
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(folder, state_dict=state_dict)
    feature_extractor.save_pretrained(folder)
    if history:
        plot_training_curve(history, folder / "training_curve.png")
    if val_batch is not None:
        was_training = unwrapped.training
        unwrapped.eval()
        batch = {k: v[:4].to(accelerator.device) for k, v in val_batch.items() if k != "clip_ids"}
        step = history[-1]["step"] if history else None
        plot_reconstructions(reconstruction_examples(unwrapped, batch), folder / "reconstructions.png", step=step)
        unwrapped.train(was_training)


FINAL_TMP = ".tmp-final-model"


def save_final_model(accelerator, model, feature_extractor, output_dir: Path, state, val_batch) -> None:
    """The final model at the top of `output_dir`, never torn: written whole into `.tmp-final-model/`, then each file
    moved into place with one rename (an earlier version's file is replaced, never half overwritten), and
    `trainer_state.json` last: it is deleted first, so a folder without it holds a final model being written (a kill
    then leaves the run's last checkpoint, from which `--resume_from_checkpoint latest` writes it again). Call on
    every process."""
    tmp = output_dir / FINAL_TMP
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    save_model_folder(accelerator, model, feature_extractor, tmp, state.history, val_batch)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (output_dir / "trainer_state.json").unlink(missing_ok=True)
        for file in sorted(tmp.iterdir()):
            os.replace(file, output_dir / file.name)
        tmp.rmdir()
        state_tmp = output_dir / ".trainer_state.json.tmp"
        with open(state_tmp, "w") as f:
            f.write(state.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(state_tmp, output_dir / "trainer_state.json")
    accelerator.wait_for_everyone()


@torch.no_grad()
def validation_loss(accelerator, model, loader) -> float:
    """Mean reconstruction loss over the held-out clips with their fixed crops and masks (main process)."""
    unwrapped = accelerator.unwrap_model(model)
    was_training = unwrapped.training
    unwrapped.eval()
    total, count = 0.0, 0
    for batch in loader:
        with accelerator.autocast():
            out = unwrapped(
                input_values=batch["input_values"].to(accelerator.device),
                attention_mask=batch["attention_mask"].to(accelerator.device),
                noise=batch["noise"].to(accelerator.device),
            )
        total += out.loss.item() * batch["input_values"].shape[0]
        count += batch["input_values"].shape[0]
    unwrapped.train(was_training)
    return total / max(count, 1)


# ------------------------------------------------------------------------------------------------ main


def check_tracker(report_to: str) -> str:
    """--report_to for --with_tracking: a tracker accelerate knows whose package is installed (accelerate itself
    drops an unavailable one without a word, and the run would track nothing)."""
    from accelerate.tracking import get_available_trackers
    from accelerate.utils import LoggerType

    known = [t for t in LoggerType.list() if t != "all"]
    if report_to not in known:
        raise PretrainingError(
            f"--report_to {report_to!r} is not a tracker accelerate knows; expected one of {known}."
        )
    if report_to not in [str(t) for t in get_available_trackers()]:
        raise PretrainingError(
            f"--report_to {report_to}: its package is not installed, so --with_tracking would track nothing; install "
            "it, or pick an installed tracker."
        )
    return report_to


def check_precision(args, accelerator) -> None:
    """Refuse fp16 on a CPU: accelerate has no fp16 autocast there and would train float32 while reporting fp16."""
    if accelerator.device.type == "cpu" and accelerator.mixed_precision == "fp16":
        source = (
            "--mixed_precision fp16"
            if args.mixed_precision == "fp16"
            else "mixed precision fp16 (from `accelerate launch --mixed_precision` or `accelerate config`)"
        )
        raise PretrainingError(
            f"{source} cannot run on a CPU: accelerate has no fp16 autocast there and would train in float32. Use "
            "--mixed_precision bf16 (CPU autocast) or no."
        )


def lock_output_dir(args, accelerator) -> OutputDirLock | None:
    """The main process locks --output_dir (creating it) before anything is written there, so that a second run on
    the folder is refused while this one lives; the other processes learn the outcome from it (a broadcast), so all
    of them stop with the same error. Returns the held lock (main process) or None."""
    lock, error = None, None
    if accelerator.is_main_process:
        lock, error = try_lock_output_dir(args.output_dir)
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        error = broadcast_object_list([error], from_process=0)[0]
    if error is not None:
        raise PretrainingError(error)
    return lock


def start_feature_extractor(args, config) -> AxLSTMFeatureExtractor:
    """The --model_name_or_path folder's feature extractor where it has one (checked against the config), else the
    paper's log-mel with the config's number of mel bins."""
    folder = Path(args.model_name_or_path).expanduser() if args.model_name_or_path else None
    if folder is not None and (folder / "preprocessor_config.json").is_file():
        try:
            extractor = AxLSTMFeatureExtractor.from_pretrained(folder)
        except (OSError, ValueError, TypeError) as err:
            raise PretrainingError(
                f"--model_name_or_path {args.model_name_or_path!r}: its preprocessor_config.json cannot be loaded "
                f"({one_line(err)})."
            ) from None
        if extractor.feature_size != config.num_mel_bins:
            raise PretrainingError(
                f"--model_name_or_path {args.model_name_or_path!r}: its feature extractor makes "
                f"{extractor.feature_size} mel bins but the model expects {config.num_mel_bins}."
            )
        return extractor
    return AxLSTMFeatureExtractor(feature_size=config.num_mel_bins)


def load_start_model(args, log=print):
    """(config, model) to pretrain: a fresh one from --model_type / --preset / the size flags, or the
    --model_name_or_path model (its pretraining head initialised fresh when the folder holds the encoder alone)."""
    recipe = {"mask_ratio": args.mask_ratio, "loss_on": args.loss_on}
    recipe = {k: v for k, v in recipe.items() if v is not None}
    if args.mask_token_positions:
        recipe["mask_token_positions"] = True
    source = args.model_name_or_path
    if source is None:
        overrides = {n: getattr(args, n) for n in CONFIG_OVERRIDES if getattr(args, n) is not None}
        config_cls, model_cls = ARCHITECTURES[args.model_type]
        try:
            config = config_cls.from_preset(
                args.preset, **{"mask_ratio": 0.5, "loss_on": "all", **recipe}, **overrides
            )
        except ValueError as err:
            raise PretrainingError(str(err)) from None
        return config, model_cls(config)
    path = Path(source).expanduser()
    if path.is_file():
        from hf_axlstm.convert_official import convert_checkpoint

        try:
            model = convert_checkpoint(path, **recipe)
        except Exception as err:  # not a checkpoint of the authors, an unknown layout
            raise PretrainingError(f"--model_name_or_path {source!r} cannot be converted: {one_line(err)}") from None
        model_type = model.config.model_type
        if args.model_type is not None and args.model_type != model_type:
            raise PretrainingError(
                f"--model_type {args.model_type} contradicts --model_name_or_path {source!r}, a {model_type} "
                "checkpoint; leave --model_type out."
            )
        args.model_type = model_type
        return model.config, model
    config_cls, model_cls = ARCHITECTURES[args.model_type]
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report of the head keys is summed up below in one line
    try:
        config = config_cls.from_pretrained(path, **recipe)
        model, info = model_cls.from_pretrained(path, config=config, output_loading_info=True)
    except (OSError, ValueError) as err:
        raise PretrainingError(f"cannot load --model_name_or_path {source!r}: {one_line(err)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = sorted(info.get("missing_keys", []))
    encoder_missing = [k for k in missing if not k.startswith("head.")]
    if encoder_missing:
        raise PretrainingError(
            f"--model_name_or_path {source!r} lacks encoder weights ({', '.join(encoder_missing[:3])}"
            f"{', ...' if len(encoder_missing) > 3 else ''}); expected a complete save_pretrained folder."
        )
    if info.get("mismatched_keys"):
        raise PretrainingError(f"--model_name_or_path {source!r} has weights whose shapes do not match its config.")
    if missing:
        log(
            f"{source}: an encoder without the pretraining head: the head ({len(missing)} tensors, head.*) starts "
            "from a fresh initialisation; the encoder continues from the saved weights."
        )
    return config, model


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    from accelerate import Accelerator

    log_with = check_tracker(args.report_to) if args.with_tracking else None
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state:  # main() called again in one process (a notebook, tests): a fresh precision
        AcceleratorState._reset_state()
    accelerator = Accelerator(mixed_precision=args.mixed_precision, log_with=log_with, project_dir=args.output_dir)
    check_precision(args, accelerator)
    lock = lock_output_dir(args, accelerator)
    try:
        return train(args, accelerator)
    finally:
        if lock is not None:
            lock.release()


def train(args, accelerator) -> Path:
    """Everything after the checks: the output folder, data, model, the loop, the checkpoints and the final save.
    Runs while the main process holds the folder's lock."""
    from accelerate.utils import set_seed

    output_dir = Path(args.output_dir)
    rank, world = accelerator.process_index, accelerator.num_processes
    prepare_output_dir(args, accelerator)
    set_seed(args.seed)
    config, model = load_start_model(args, accelerator.print)
    feature_extractor = start_feature_extractor(args, config)
    feature_extractor.register_for_auto_class("AutoFeatureExtractor")

    train_data, val_data = build_data(args, config, feature_extractor, accelerator)
    # The CPU allocator and the fused kernels only once every cheap check passed (a refused run never builds).
    if accelerator.device.type == "cpu" and args.cpu_allocator == "tuned":
        tune_cpu_allocator()
    if accelerator.device.type == "cpu" and args.cpu_kernels == "fused":
        enable_fused_cpu_kernels(model)  # built before the first step: the build is not timed as training
    streaming = isinstance(train_data, StreamingCrops)
    batch_size, accum = args.per_device_train_batch_size, args.gradient_accumulation_steps
    global_batch = batch_size * accum * world
    learning_rate = args.learning_rate if args.learning_rate is not None else 1.5e-4 * global_batch / 256

    if streaming:
        batches_per_epoch = None
        max_steps = args.max_train_steps
    else:
        per_rank = len(epoch_order(len(train_data), 0, args.seed, rank, world))
        batches_per_epoch = math.ceil(per_rank / batch_size)
        updates_per_epoch = math.ceil(batches_per_epoch / accum)
        max_steps = args.max_train_steps or args.num_train_epochs * updates_per_epoch
    warmup = args.warmup_steps if args.warmup_steps is not None else int(round(args.warmup_ratio * max_steps))
    crop = args.crop_frames or config.frames_per_window
    schedule = {  # what the optimizer / scheduler state and the data position of a checkpoint depend on
        "max_train_steps": max_steps,
        "max_train_steps:from": None if args.max_train_steps else f"from --num_train_epochs {args.num_train_epochs}",
        "warmup_steps": warmup,
        "warmup_steps:from": None if args.warmup_steps is not None else f"from --warmup_ratio {args.warmup_ratio}",
        "learning_rate": learning_rate,
        "learning_rate:from": None if args.learning_rate is not None else "the default 1.5e-4 x global batch / 256",
        "per_device_train_batch_size": batch_size,
        "gradient_accumulation_steps": accum,
        "num_processes": world,
        "weight_decay": args.weight_decay,
        "adam_beta1": args.adam_beta1,
        "adam_beta2": args.adam_beta2,
        "adam_epsilon": args.adam_epsilon,
        "optim": args.optim,
        "seed": args.seed,
        "validation_fraction": args.validation_fraction,
        "max_validation_clips": args.max_validation_clips,
        "crop_frames": crop,
        "crop_frames:from": None if args.crop_frames else "the config's frames_per_window",
        "mask_ratio": config.mask_ratio,
        "loss_on": config.loss_on,
        "model_type": args.model_type,
        "preset": args.preset,
        "model_name_or_path": args.model_name_or_path,
        **{name: getattr(args, name) for name in CONFIG_OVERRIDES if getattr(args, name) is not None},
        "mask_token_positions": config.mask_token_positions,
        "streaming": bool(streaming),
        "num_training_clips": None if streaming else len(train_data),
    }

    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.weight_decay),
        lr=learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        **adamw_kwargs(args.optim, accelerator.device),
    )
    pinned = accelerator.device.type == "cuda"  # page-locked batches, copied to the GPU without blocking the host
    loader_options = {"pin_memory": pinned}
    if args.prefetch_factor:
        loader_options["prefetch_factor"] = args.prefetch_factor
    scheduler = warmup_cosine_schedule(optimizer, warmup, max_steps)
    if args.torch_compile:
        model = torch.compile(model)
    model, optimizer = accelerator.prepare(model, optimizer)
    # The scheduler (stepped once per update, not per process) is saved as JSON in trainer_state.json, not
    # registered with accelerate, which would read it back with torch.load(weights_only=False).

    # ---- resume
    state = TrainerState(history=[])
    candidates = resolve_checkpoint(output_dir, args.resume_from_checkpoint) if args.resume_from_checkpoint else []
    if args.resume_from_checkpoint and not candidates:
        accelerator.print(f"no checkpoint under {output_dir / 'checkpoints'} yet: starting from scratch")
    if candidates:
        skipped = []
        for candidate in candidates:
            damage, note = verify_checkpoint(candidate)
            if damage is not None:
                _warn(accelerator, f"checkpoint {candidate} is not usable: {damage}; trying an older one.")
                skipped.append(f"{candidate.name}: {damage}")
                continue
            if note is not None:
                _warn(accelerator, note)
            try:
                loaded = TrainerState.from_file(candidate / "trainer_state.json")
            except Exception as err:  # a damaged file of a checkpoint without hashes: fall back
                _warn(accelerator, f"checkpoint {candidate} cannot be loaded ({one_line(err)}); trying an older one.")
                skipped.append(f"{candidate.name}: {one_line(err)}")
                continue
            note = check_schedule(schedule, loaded.schedule, candidate, extend=args.extend_schedule)  # no fallback
            if note is not None:
                _warn(accelerator, note)
            try:
                load_scheduler_state(scheduler, loaded, candidate)
            except PretrainingError as err:
                _warn(accelerator, f"checkpoint {candidate} cannot be loaded ({err}); trying an older one.")
                skipped.append(f"{candidate.name}: {err}")
                continue
            try:
                load_accelerator_state(accelerator, candidate)
            except Exception as err:  # a damaged file of a checkpoint without hashes: fall back
                _warn(accelerator, f"checkpoint {candidate} cannot be loaded ({one_line(err)}); trying an older one.")
                skipped.append(f"{candidate.name}: {one_line(err)}")
                continue
            state = loaded
            accelerator.print(f"resumed from {candidate} at step {state.global_step}")
            if args.extend_schedule or (loaded.schedule or {}).get("extended_from"):
                warmup = extend_schedule(accelerator, optimizer, scheduler, schedule, loaded.schedule)
            state.last_checkpoint = str(candidate)
            break
        else:
            raise PretrainingError(
                f"no loadable checkpoint for --resume_from_checkpoint {args.resume_from_checkpoint} "
                f"({'; '.join(skipped)})."
            )
        state.history = state.history or []
    state.schedule = {k: v for k, v in schedule.items() if not k.endswith(":from")}

    if args.with_tracking:
        simple = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers("axlstm_pretraining", config={**simple, "learning_rate_used": learning_rate})

    val_loader = None
    val_batch = None
    if val_data is not None and accelerator.is_main_process:
        val_loader = DataLoader(val_data, batch_size=batch_size, collate_fn=collate_crops)
        val_batch = next(iter(DataLoader(val_data, batch_size=4, collate_fn=collate_crops)))

    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoints_dir = output_dir / "checkpoints"
    if accelerator.is_main_process:  # leftovers of a crash while writing a checkpoint or the final model
        for leftover in [*checkpoints_dir.glob(".tmp-*"), output_dir / FINAL_TMP]:
            shutil.rmtree(leftover, ignore_errors=True)
    accelerator.wait_for_everyone()
    log_path = output_dir / "train_log.jsonl"
    if args.resume_from_checkpoint and accelerator.is_main_process:  # the steps after the checkpoint run again
        dropped = truncate_log(log_path, state.global_step)
        if dropped:
            accelerator.print(f"{log_path}: dropped {dropped} line(s) after step {state.global_step} (run again)")
    accelerator.wait_for_everyone()
    clip_log = None
    if args.log_clip_ids:
        (output_dir / "clip_ids").mkdir(parents=True, exist_ok=True)
        clip_log = open(output_dir / "clip_ids" / f"rank{rank}.txt", "a")  # noqa: SIM115

    accelerator.print(
        f"{args.model_type}-{args.preset} {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params | "
        f"processes {world} | "
        f"global batch {global_batch} | lr {learning_rate:.3g} | steps {max_steps} (warm-up {warmup}) | "
        f"precision {accelerator.mixed_precision}"
    )

    checkpointed_at = [None]  # the step of this process's last checkpoint (every rank: validation is collective)

    def checkpoint():
        step = state.global_step
        checkpointed_at[0] = step
        tmp = temporary_checkpoint_dir(checkpoints_dir, step)
        if accelerator.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        try:
            accelerator.save_state(str(tmp))
            save_model_folder(accelerator, model, feature_extractor, tmp / "pretrained", state.history, val_batch)
            accelerator.wait_for_everyone()  # every rank's random_states_<rank>.pkl is written before it is hashed
            if accelerator.is_main_process:
                state.scheduler = scheduler.state_dict()
                (tmp / "trainer_state.json").write_text(state.to_json())
                final = finalize_checkpoint(tmp, step, args.checkpoints_total_limit)
                state.last_checkpoint = str(final)
        except Exception as err:
            if not is_write_failure(err):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # the half-written folder: never listed, and its space back
            raise PretrainingError(
                write_failure_message(err, f"checkpoint {step} in {str(checkpoints_dir)!r}")
                + f" Last complete checkpoint: {state.last_checkpoint or 'none'}."
            ) from None
        accelerator.wait_for_everyone()

    def validate():
        if val_loader is not None:
            loss = validation_loss(accelerator, model, val_loader)
            state.history.append({"step": state.global_step, "val_loss": loss})
            accelerator.log({"validation/loss": loss}, step=state.global_step)
            accelerator.print(f"step {state.global_step}: validation loss {loss:.4f}")
        accelerator.wait_for_everyone()

    if not candidates:
        state.last_checkpoint = None
    progress = None
    if accelerator.is_main_process and not args.no_progress_bar:
        from tqdm.auto import tqdm

        progress = tqdm(total=max_steps, initial=state.global_step, desc="pretraining", dynamic_ncols=True)

    model.train()
    stop_at = min(max_steps, args.stop_after_steps or max_steps)
    meter = ThroughputMeter(world)
    pending = []  # steps whose loss and gradient norm are still on the device

    def flush():
        """Read the pending steps' losses and gradient norms back (one host sync), check them, log every step."""
        if not pending:
            return
        losses = accelerator.reduce(torch.stack([p["loss"] for p in pending]), reduction="mean").tolist()
        norms = [p["grad_norm"] for p in pending]
        norms = torch.stack(norms).float().tolist() if all(n is not None for n in norms) else [math.nan] * len(norms)
        rate, eta = meter.flush(stop_at - state.global_step)
        lines = []

        def write(lines):
            if accelerator.is_main_process:
                with open(log_path, "a") as f:
                    f.writelines(lines)

        for record, loss, grad_norm in zip(pending, losses, norms):
            if not math.isfinite(loss):
                write(lines)  # the steps before it
                raise TrainingDiverged(
                    f"loss is {loss} at step {record['step']}; last good checkpoint: "
                    f"{state.last_checkpoint or 'none'} (resume from it with --max_grad_norm, or start a new run "
                    "with a lower --learning_rate)."
                )
            state.history.append({"step": record["step"], "loss": loss})
            extras = {"lr": record["lr"], "grad_norm": grad_norm, "clips_per_s": rate, "epoch": record["epoch"]}
            lines.append(json.dumps({"step": record["step"], "loss": loss, **extras, "eta_s": eta}) + "\n")
            scalars = {"train/loss": loss, "train/lr": record["lr"], "train/grad_norm": grad_norm}
            accelerator.log({**scalars, "train/clips_per_s": rate}, step=record["step"])
        pending.clear()
        write(lines)
        summary = f"loss {losses[-1]:.4f} | lr {extras['lr']:.2e} | {rate:.1f} clips/s | ETA {format_duration(eta)}"
        if progress is not None:
            progress.set_postfix_str(summary)
        else:
            accelerator.print(f"step {state.global_step}/{stop_at} | {summary}")

    while state.global_step < stop_at:
        # ---- this epoch's batches, minus those a resumed run already consumed
        if streaming:
            train_data.skip = state.examples_seen
            loader = DataLoader(train_data, batch_size=batch_size, collate_fn=collate_crops, pin_memory=pinned)
            remaining = None
        else:
            train_data.set_epoch(state.epoch)
            order = epoch_order(len(train_data), state.epoch, args.seed, rank, world)
            order = order[state.batches_in_epoch * batch_size :]
            loader = DataLoader(
                train_data,
                batch_size=batch_size,
                sampler=order,
                collate_fn=collate_crops,
                num_workers=args.num_workers,
                **loader_options,
            )
            remaining = batches_per_epoch - state.batches_in_epoch
        batches = iter(loader)
        while state.global_step < stop_at and (remaining is None or remaining > 0):
            group = accum if remaining is None else min(accum, remaining)
            loss_sum = torch.zeros((), device=accelerator.device)
            clips = 0
            for micro in range(group):
                batch = next(batches)
                if clip_log is not None:
                    clip_log.writelines(f"{state.global_step + 1}\t{cid}\n" for cid in batch["clip_ids"])
                sync = contextlib.nullcontext() if micro == group - 1 else accelerator.no_sync(model)
                with sync:
                    out = model(
                        **{key: batch[key].to(accelerator.device, non_blocking=pinned) for key in MODEL_INPUTS}
                    )
                    accelerator.backward(out.loss / group)
                loss_sum += out.loss.detach().float()
                clips += batch["input_values"].shape[0]
            if remaining is not None:
                remaining -= group
                state.batches_in_epoch += group
            state.examples_seen += clips
            max_norm = args.max_grad_norm if args.max_grad_norm else float("inf")
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_norm)  # None under DeepSpeed
            lr = optimizer.param_groups[0]["lr"]  # the rate of this update
            optimizer.step()
            if not accelerator.optimizer_step_was_skipped:
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.global_step += 1
            meter.step(clips)
            pending.append(
                {"step": state.global_step, "loss": loss_sum / group, "grad_norm": grad_norm, "lr": lr,
                 "epoch": state.epoch}
            )  # fmt: skip
            if progress is not None:
                progress.update(1)

            validating = args.validation_steps and state.global_step % args.validation_steps == 0
            # every --checkpointing_steps and at the last step (a finished run can be continued)
            checkpointing = state.global_step % args.checkpointing_steps == 0 or state.global_step == max_steps
            if validating or checkpointing or state.global_step % args.logging_steps == 0:
                flush()
            if validating or checkpointing:
                with meter.paused():
                    if validating or not args.validation_steps:
                        validate()
                    if checkpointing:
                        checkpoint()
        if remaining is not None and remaining <= 0:
            state.epoch += 1
            state.batches_in_epoch = 0

    flush()
    if progress is not None:
        progress.close()
    accelerator.print(meter.summary())
    if clip_log is not None:
        clip_log.close()
    if state.global_step < max_steps:  # --stop_after_steps: leave as if interrupted
        accelerator.print(f"stopped after step {state.global_step} (--stop_after_steps)")
        accelerator.end_training()
        return output_dir
    if checkpointed_at[0] != state.global_step:
        validate()  # (else validated at the final checkpoint)
    try:
        state.scheduler = scheduler.state_dict()
        save_final_model(accelerator, model, feature_extractor, output_dir, state, val_batch)
    except Exception as err:
        if not is_write_failure(err):
            raise
        raise PretrainingError(
            write_failure_message(err, f"the final model in {str(output_dir)!r}")
            + f" The run's last checkpoint ({state.last_checkpoint or 'none'}) holds it: resume from it with "
            "--resume_from_checkpoint latest once the folder is writable."
        ) from None
    accelerator.print(f"saved the pretrained model to {output_dir}")
    accelerator.end_training()
    return output_dir


def extend_schedule(accelerator, optimizer, scheduler, schedule: dict, recorded: dict) -> int:
    """--extend_schedule (or a resume of a schedule extended before) after a checkpoint's optimizer and scheduler
    were loaded: the warm-up keeps the recorded steps unless --warmup_steps was given (checked equal by
    `check_schedule`), and the cosine decay runs over the new total; the next update gets the rate the new schedule
    gives the checkpoint's step. Records the earlier totals in `schedule["extended_from"]`. Returns the warm-up."""
    total, old_total = schedule["max_train_steps"], recorded["max_train_steps"]
    warmup = recorded["warmup_steps"] if schedule.get("warmup_steps:from") else schedule["warmup_steps"]
    schedule["warmup_steps"] = warmup
    earlier = list(recorded.get("extended_from") or [])
    schedule["extended_from"] = earlier + ([old_total] if total != old_total else [])
    factor = warmup_cosine_lambda(warmup, total)
    scheduler.lr_lambdas = [factor] * len(scheduler.lr_lambdas)
    step = scheduler.last_epoch
    for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
        group["lr"] = base * factor(step)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    if total == old_total:
        if earlier:
            accelerator.print(
                f"the schedule was extended before (from {earlier}): warm-up {warmup}, cosine to {total}"
            )
        else:
            accelerator.print(f"--extend_schedule: --max_train_steps {total} is the checkpoint's own: nothing to do")
    else:
        accelerator.print(
            f"--extend_schedule: {old_total} -> {total} steps; warm-up {warmup} steps, then cosine to 0 at step "
            f"{total}; the next update (step {step + 1}) gets lr {scheduler._last_lr[0]:.3g}"
        )
    return warmup


def load_accelerator_state(accelerator, folder: Path) -> None:
    """`accelerator.load_state(folder)`. A checkpoint of an older version also holds the scheduler as
    `custom_checkpoint_0.pkl` (read by `load_scheduler_state` with weights_only=True), which accelerate refuses to
    skip when no object is registered: it then loads a view of the folder without that file."""
    if not any(folder.glob("custom_checkpoint_*")):
        accelerator.load_state(str(folder))
        return
    with tempfile.TemporaryDirectory(prefix="axlstm-checkpoint-view-") as view:
        for item in folder.iterdir():
            if not item.name.startswith("custom_checkpoint_"):
                os.symlink(item.resolve(), Path(view) / item.name)
        accelerator.load_state(view)


def _warn(accelerator, message: str) -> None:
    if accelerator.is_local_main_process:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def _is_main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def cli(argv: list[str] | None = None) -> int:
    """Run `main`; report user errors and divergence as one line on stderr (exit 2 / 3), without a traceback."""
    try:
        main(argv)
    except (PretrainingError, AudioDecodeError) as err:
        if _is_main_rank():
            print(f"pretrain.py: error: {one_line(err)}", file=sys.stderr, flush=True)
        return 2
    except OSError as err:  # a folder that cannot be created or written (read-only, full, a file in the way)
        if _is_main_rank():
            print(f"pretrain.py: error: {describe_os_error(err)}", file=sys.stderr, flush=True)
        return 2
    except TrainingDiverged as err:
        if _is_main_rank():
            print(f"pretrain.py: error: {one_line(err)}", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(cli())

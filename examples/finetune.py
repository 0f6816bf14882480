#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Fine-tune AxLSTM for audio classification with `datasets` and the `Trainer`.

    python examples/finetune.py \
        --model_name_or_path axlstm-tiny --dataset_name my_dataset \
        --output_dir runs/my-classifier --mode full --num_train_epochs 10 --per_device_train_batch_size 32 \
        --learning_rate 1e-4 --eval_strategy epoch --save_strategy epoch --load_best_model_at_end \
        --metric_for_best_model accuracy --time_masks 2 --freq_masks 2 --mixup_alpha 0.5
    # evaluation only, of the fine-tuned model
    python examples/finetune.py --model_name_or_path runs/my-classifier --dataset_name my_dataset \
        --output_dir runs/my-classifier-eval --do_eval --do_predict
    # a linear probe of the SSAST baseline trained from scratch
    python examples/finetune.py --config_name ssast-tiny --dataset_name my_dataset --mode linear_probe \
        --output_dir runs/ssast-probe --num_train_epochs 10

(`axlstm-tiny` is a converted or pretrained model folder, or a Hub id; `my_dataset` an `audiofolder`, a Hub dataset
id or CSV files, below.)

Data: a Hub dataset id, an `audiofolder` directory, a CSV/JSON file (or a folder of `train.csv`, `validation.csv`,
`test.csv`) with a column of audio paths, or `--train_file/--validation_file/--test_file`. Labels: one per example
(class names or indices), or several (a list column, or strings split with `--label_delimiter`). A missing validation
split is carved from train (`--validation_split_percentage`, seeded); with only a train split a test split is carved
as well. Audio is decoded with soundfile and resampled to 16 kHz (no torchcodec needed).

From scratch instead: `--config_name tiny|small|base` (AxLSTM), `--config_name ssast-tiny|ssast-small|ssast-base`
(the paper's SSAST transformer baseline) or `--config_name path/to/config.json` of either model type.

Modes: `full` (everything trains), `linear_probe` (frozen encoder, only the classifier), `lld` (everything trains,
the learning rate of block i scaled by `layer_decay ** (num_layers + 1 - (i + 1))`: the classifier and final norm get
the full rate, the patch embedding the smallest).

Augmentation (training only): SpecAugment-style time and frequency masks on the log-mel (`--time_masks`,
`--time_mask_width`, `--freq_masks`, `--freq_mask_width`), and mixup of log-mels and labels (`--mixup_alpha`).

Metrics come from the local `evaluate` scripts in `examples/metrics/` (offline): accuracy, macro F1 and mAP for
single-label data; mAP and macro F1 (threshold 0.5) for multi-label data. The output folder loads with
`pipeline("audio-classification", model=output_dir)` (with `import hf_axlstm`, or `trust_remote_code=True`).
Every Trainer flag works (`--use_cpu`, `--report_to`, `--push_to_hub`, `--hub_model_id`, ...).

What runs: the script trains (then saves the model to `--output_dir` and writes `train_results.json`), evaluates on
the validation split and, where there is one, the test split. `--do_train` is not needed; `--eval_strategy` and
`--save_strategy` say when to evaluate and checkpoint during training. Only `--do_eval` and/or `--do_predict` given
without `--do_train` make an evaluation-only run (of a fine-tuned `--model_name_or_path`): no training, no model
saved; `--do_eval` evaluates the validation split, `--do_predict` the test split.

A non-empty `--output_dir` is refused unless `--resume_from_checkpoint` (a checkpoint folder, or `latest` for the
newest complete `checkpoint-*` there: one that a kill or a full disk left half written is skipped, with a warning
naming it and why) or `--overwrite_output_dir` is given; the latter first deletes what an earlier run wrote there
(its `checkpoint-*` folders, `runs/`, the model, metrics and state files), so they are never resumed from. While a
run lives it holds a lock on `--output_dir` (`.hf_axlstm.lock`, released when the process ends, however it ends): a
second run on the same folder is refused. `--fp16` on a CPU is refused (it would train float32); use `--bf16`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)

import hf_axlstm  # noqa: F401  (registers AxLSTM with the Auto classes)
from hf_axlstm import AXLSTM_PRESETS, SSAST_PRESETS, AxLSTMConfig, AxLSTMFeatureExtractor, SSASTConfig
from hf_axlstm.audio import TARGET_SAMPLING_RATE, AudioDecodeError, decode_audio_value
from hf_axlstm.cpu_allocator import tune_cpu_allocator
from hf_axlstm.cpu_kernels import enable_fused_cpu_kernels
from hf_axlstm.data import (
    DatasetInputError,
    LabelSpace,
    audio_name,
    check_audio_files,
    check_columns,
    load_audio_dataset,
    one_line,
    resolve_splits,
)
from hf_axlstm.pretraining import (
    PretrainingError,
    os_error_line,
    output_dir_entries,
    trainer_checkpoints,
    try_lock_output_dir,
    verify_trainer_checkpoint,
)

logger = logging.getLogger("finetune")
METRICS_DIR = Path(__file__).resolve().parent / "metrics"


class ModelInputError(ValueError):
    """The model or its configuration cannot be loaded."""


# ------------------------------------------------------------------------------------------------------ arguments


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "save_pretrained folder, Hub id, or the authors' .pth checkpoint to start from."},
    )
    config_name: str | None = field(
        default=None,
        metadata={
            "help": "Train from scratch: an AxLSTM preset (tiny, small, base), an SSAST one (ssast-tiny, ssast-small, "
            "ssast-base) or a config.json path."
        },
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": "Config overrides 'key=value,key=value' (values parsed as JSON)."}
    )
    mode: str = field(
        default="full", metadata={"help": "full | linear_probe (frozen encoder) | lld (layer-wise lr decay)."}
    )
    layer_decay: float = field(default=0.75, metadata={"help": "Learning-rate decay per block for --mode lld."})
    classifier_pooling: str | None = field(default=None, metadata={"help": "mean | cls (default: the config's)."})


@dataclass
class DataArguments:
    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub dataset id, audiofolder directory, or CSV/JSON file or folder."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub dataset configuration."})
    train_file: str | None = field(default=None, metadata={"help": "CSV/JSON file of the train split."})
    validation_file: str | None = field(default=None, metadata={"help": "CSV/JSON file of the validation split."})
    test_file: str | None = field(default=None, metadata={"help": "CSV/JSON file of the test split."})
    audio_column: str = field(default="audio", metadata={"help": "Column with the audio (paths or Audio)."})
    label_column: str = field(default="label", metadata={"help": "Column with the label(s)."})
    label_delimiter: str | None = field(
        default=None, metadata={"help": "Split string labels on this (multi-label), e.g. ','."}
    )
    multi_label: bool | None = field(
        default=None, metadata={"help": "Force multi-label (default: a list column or --label_delimiter)."}
    )
    train_split_name: str = field(default="train")
    validation_split_name: str = field(default="validation")
    test_split_name: str = field(default="test")
    validation_split_percentage: float = field(default=10.0, metadata={"help": "Of train, when no validation."})
    test_split_percentage: float = field(default=10.0, metadata={"help": "Of train, when it is the only split."})
    max_length_seconds: float = field(
        default=10.0, metadata={"help": "Clips are cut to this (random crop in training, leading part otherwise)."}
    )
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    skip_audio_check: bool = field(default=False, metadata={"help": "Don't check every audio file up front."})


@dataclass
class AugmentArguments:
    time_masks: int = field(default=0, metadata={"help": "SpecAugment: time masks per training clip."})
    time_mask_width: int = field(default=20, metadata={"help": "Widest time mask, in log-mel frames."})
    freq_masks: int = field(default=0, metadata={"help": "SpecAugment: frequency masks per training clip."})
    freq_mask_width: int = field(default=8, metadata={"help": "Widest frequency mask, in mel bins."})
    mixup_alpha: float = field(default=0.0, metadata={"help": "Mixup Beta(alpha, alpha) parameter; 0 = off."})


@dataclass
class RunArguments:
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start a new run in a non-empty --output_dir: first DELETES an earlier run's checkpoint-* "
            "folders, runs/, model, metrics and state files there (other files stay). Without it (or "
            "--resume_from_checkpoint) a non-empty --output_dir is refused."
        },
    )
    cpu_allocator: str = field(
        default="tuned",
        metadata={
            "help": "Training on a CPU: `tuned` (default) keeps glibc's freed memory in the heap, so the large tensors "
            "of every step reuse pages instead of page-faulting in fresh ones (hf_axlstm.cpu_allocator); the "
            "process's memory then stays at its peak. `default` leaves malloc alone.",
            "choices": ["tuned", "default"],
        },
    )
    cpu_kernels: str = field(
        default="fused",
        metadata={
            "help": "Training on a CPU: `fused` (default) runs the chunkwise mLSTM cell and the mixer's conv, q / k / "
            "v projections and output tail, forward and backward, through hf_axlstm's fused C++ kernels "
            "(hf_axlstm.cpu_kernels; built once with a C++ compiler and ninja, then cached), falling back to the "
            "eager kernels with a warning where they cannot be built; `eager` runs the torch implementation. The "
            "same function and gradients either way.",
            "choices": ["fused", "eager"],
        },
    )


# What a run writes at the top of --output_dir: --overwrite_output_dir deletes these (and `checkpoint-*`, `runs/`).
RUN_FILES = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*-of-*.safetensors",
    "*_axlstm.py",
    "training_args.bin",
    "trainer_state.json",
    "all_results.json",
    "train_results.json",
    "eval_results.json",
    "test_results.json",
)


def check_arguments(parser, model_args, data_args, aug_args, training_args, run_args) -> None:
    """Range checks of the script's flags and of the Trainer flags it relies on; `parser.error` (one `error:` line,
    exit 2) naming the flag, the value and what is expected."""

    def bad(flag, value, expected):
        parser.error(f"--{flag} {value} is invalid; expected {expected}.")

    if model_args.mode not in ("full", "linear_probe", "lld"):
        parser.error(f"--mode {model_args.mode!r} is invalid; expected full, linear_probe or lld.")
    if not 0 < model_args.layer_decay <= 1:
        bad("layer_decay", model_args.layer_decay, "a number in (0, 1]")
    if model_args.classifier_pooling not in (None, "mean", "cls"):
        parser.error(f"--classifier_pooling {model_args.classifier_pooling!r} is invalid; expected mean or cls.")
    for name in ("validation_split_percentage", "test_split_percentage"):
        if not 0 < getattr(data_args, name) < 100:
            bad(name, getattr(data_args, name), "a percentage in (0, 100)")
    if not (math.isfinite(data_args.max_length_seconds) and data_args.max_length_seconds > 0):
        bad("max_length_seconds", data_args.max_length_seconds, "a finite number of seconds > 0")
    for name in ("max_train_samples", "max_eval_samples"):
        if getattr(data_args, name) is not None and getattr(data_args, name) < 1:
            bad(name, getattr(data_args, name), "a positive integer")
    if data_args.label_delimiter == "":
        parser.error("--label_delimiter '' is invalid; expected a non-empty string such as ','.")
    for name in ("time_masks", "time_mask_width", "freq_masks", "freq_mask_width"):
        if getattr(aug_args, name) < 0:
            bad(name, getattr(aug_args, name), "an integer >= 0")
    if not (math.isfinite(aug_args.mixup_alpha) and aug_args.mixup_alpha >= 0):
        bad("mixup_alpha", aug_args.mixup_alpha, "a finite number >= 0 (0: no mixup)")

    t = training_args
    if not (math.isfinite(t.learning_rate) and t.learning_rate > 0):
        bad("learning_rate", t.learning_rate, "a finite number > 0")
    if not (math.isfinite(t.num_train_epochs) and t.num_train_epochs > 0):
        bad("num_train_epochs", t.num_train_epochs, "a finite number > 0")
    if t.max_steps == 0 or t.max_steps < -1:
        bad("max_steps", t.max_steps, "a positive integer (or -1: use --num_train_epochs)")
    if not (math.isfinite(t.weight_decay) and t.weight_decay >= 0):
        bad("weight_decay", t.weight_decay, "a finite number >= 0")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(t, name) < 1:
            bad(name, getattr(t, name), "a number in [0, 1)")
    if not (math.isfinite(t.adam_epsilon) and t.adam_epsilon > 0):
        bad("adam_epsilon", t.adam_epsilon, "a finite number > 0")
    if t.max_grad_norm is not None and not (math.isfinite(t.max_grad_norm) and t.max_grad_norm >= 0):
        bad("max_grad_norm", t.max_grad_norm, "a finite number >= 0 (0: no clipping)")
    if t.warmup_steps is not None and not (math.isfinite(t.warmup_steps) and t.warmup_steps >= 0):
        bad("warmup_steps", t.warmup_steps, "a number >= 0 (below 1: a share of the steps)")
    if not 0 <= t.label_smoothing_factor < 1:
        bad("label_smoothing_factor", t.label_smoothing_factor, "a number in [0, 1)")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(t, name) < 1:
            bad(name, getattr(t, name), "a positive integer")
    if t.save_total_limit is not None and t.save_total_limit < 1:
        bad("save_total_limit", t.save_total_limit, "a positive integer")
    for name in ("dataloader_num_workers", "seed"):
        if getattr(t, name) < 0:
            bad(name, getattr(t, name), "an integer >= 0")
    for name in ("logging_steps", "eval_steps", "save_steps"):
        value = getattr(t, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            bad(name, value, "a number > 0 (below 1: a share of the steps)")

    output_dir = Path(t.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        parser.error(f"--output_dir {t.output_dir!r} is a file; expected a folder (new or empty).")
    source = model_args.model_name_or_path
    if source and Path(source).expanduser().exists() and Path(source).expanduser().resolve() == output_dir.resolve():
        parser.error(
            f"--model_name_or_path {source!r} is the --output_dir: the run would write over the model it starts "
            "from; choose another --output_dir."
        )
    if (
        source
        and run_args.overwrite_output_dir
        and Path(source).expanduser().exists()
        and output_dir.resolve() in Path(source).expanduser().resolve().parents
    ):
        parser.error(
            f"--model_name_or_path {source!r} is inside --output_dir, which --overwrite_output_dir would clear before "
            "the model is loaded; copy the model elsewhere or choose another --output_dir."
        )
    resume = t.resume_from_checkpoint
    if resume is not None and run_args.overwrite_output_dir:
        parser.error("--overwrite_output_dir deletes the checkpoints --resume_from_checkpoint would continue from.")
    if resume not in (None, "latest") and not Path(resume).is_dir():
        what = "is a file" if Path(resume).exists() else "does not exist"
        parser.error(f"--resume_from_checkpoint {resume!r} {what}; expected a checkpoint folder or 'latest'.")
    if t.fp16 and t.device.type == "cpu":
        parser.error(
            "--fp16 cannot run on a CPU: the Trainer has no fp16 autocast there and would train in float32. Use "
            "--bf16 (CPU autocast) or leave it out."
        )


def check_model_arguments(model_args: ModelArguments) -> None:
    """--config_overrides before any data is read: every key a setting of the model's config class (a typo is
    refused naming the closest key) and every value one the config accepts. The class comes from --config_name or
    a local --model_name_or_path folder (a Hub id or the authors' .pth is checked when the model loads)."""
    overrides = _parse_overrides(model_args.config_overrides)
    if not overrides:
        return
    source = model_args.model_name_or_path
    if source and Path(source).expanduser().is_dir():
        try:
            config = AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as err:
            raise ModelInputError(f"cannot load the config of model {source!r}: {one_line(err)}") from None
        check_overrides(type(config), overrides)
        fields = {k: v for k, v in config.to_diff_dict().items() if k not in ("model_type", "transformers_version")}
        _config(type(config), {**fields, **overrides}, overrides)
    elif not source and model_args.config_name:
        config_cls, base = scratch_config(model_args.config_name)
        check_overrides(config_cls, overrides)
        _config(config_cls, {**base, **overrides}, overrides)


def check_output_dir(parser, training_args, run_args) -> None:
    """The output folder rules, checked while this run holds the folder's lock: a non-empty --output_dir is refused
    unless resuming or --overwrite_output_dir; `--resume_from_checkpoint latest` resolves to the newest complete
    checkpoint (`resume_checkpoint`)."""
    t = training_args
    output_dir = Path(t.output_dir)
    resume = t.resume_from_checkpoint
    if resume is not None:
        try:
            main = t.process_index == 0
            t.resume_from_checkpoint = str(resume_checkpoint(output_dir, resume, warn=main))
        except PretrainingError as err:
            parser.error(str(err))
    entries = output_dir_entries(output_dir)
    if resume is None and entries and not run_args.overwrite_output_dir:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        parser.error(
            f"--output_dir {t.output_dir!r} is not empty ({shown}): pass --resume_from_checkpoint to continue "
            "the run there, --overwrite_output_dir to start a new one (deleting its checkpoints and model), or "
            "choose another folder."
        )


def resume_checkpoint(output_dir: Path, spec: str, warn: bool = True) -> Path:
    """The checkpoint `--resume_from_checkpoint` continues from: the folder given (which must be complete), or for
    `latest` the newest complete `checkpoint-*` in `output_dir`. A checkpoint that a kill or a full disk left half
    written (`verify_trainer_checkpoint`) is skipped with a warning naming it and why."""
    if spec != "latest":
        problem = verify_trainer_checkpoint(spec)
        if problem is not None:
            raise PretrainingError(f"--resume_from_checkpoint {spec!r} cannot be resumed: {problem}.")
        return Path(spec)
    candidates = trainer_checkpoints(output_dir)
    if not candidates:
        raise PretrainingError(
            f"--resume_from_checkpoint latest: --output_dir {str(output_dir)!r} has no checkpoint-* folder."
        )
    skipped = []
    for candidate in candidates:
        problem = verify_trainer_checkpoint(candidate)
        if problem is None:
            return candidate
        if warn:
            print(f"warning: checkpoint {candidate} is not usable: {problem}; trying an older one.", file=sys.stderr)
        skipped.append(f"{candidate.name}: {problem}")
    raise PretrainingError(
        f"--resume_from_checkpoint latest: no complete checkpoint in {str(output_dir)!r} ({'; '.join(skipped)})."
    )


def lock_output_dir(parser, training_args):
    """The main process locks --output_dir (creating it) before anything is written there, so that a second run on
    the folder is refused while this one lives (the lock goes with the process, however it ends); with several
    processes the others learn the outcome from it. Returns the held lock (main process) or None."""
    lock, error = None, None
    if training_args.process_index == 0:
        lock, error = try_lock_output_dir(training_args.output_dir)
    if training_args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        shared = [error]
        torch.distributed.broadcast_object_list(shared, src=0)
        error = shared[0]
    if error is not None:
        if lock is not None:
            lock.release()
        parser.error(error)
    return lock


def clear_output_dir(output_dir: Path) -> list[str]:
    """Delete what an earlier run wrote in `output_dir` (--overwrite_output_dir); returns the names deleted."""
    removed = []
    for path in sorted(output_dir.glob("checkpoint-*")) + [output_dir / "runs"]:
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(path.name + "/")
    for pattern in RUN_FILES:
        for path in sorted(output_dir.glob(pattern)):
            if path.is_file():
                path.unlink()
                removed.append(path.name)
    return removed


# ----------------------------------------------------------------------------------------------------------- data


class DecodeAndCrop:
    """`set_transform` function: audio values -> 16 kHz waveforms (cropped), labels passed through."""

    def __init__(self, audio_column: str, max_samples: int, min_samples: int, random_crop: bool):
        self.audio_column = audio_column
        self.max_samples = max_samples
        self.min_samples = min_samples
        self.random_crop = random_crop

    def __call__(self, batch):
        waveforms = []
        for value in batch[self.audio_column]:
            wave = decode_audio_value(value, TARGET_SAMPLING_RATE)
            if wave.size == 0:
                raise AudioDecodeError(f"audio {audio_name(value)!r} has no samples.")
            if wave.shape[0] > self.max_samples:
                start = 0
                if self.random_crop:
                    start = int(torch.randint(0, wave.shape[0] - self.max_samples + 1, ()).item())
                wave = wave[start : start + self.max_samples]
            if wave.shape[0] < self.min_samples:
                wave = np.pad(wave, (0, self.min_samples - wave.shape[0]))
            waveforms.append(wave)
        return {"waveform": waveforms, "labels": batch["labels"]}


class AudioCollator:
    """Waveforms -> padded normalised log-mel `input_values`, `attention_mask`, and `labels`."""

    def __init__(self, feature_extractor, multi_label: bool):
        self.feature_extractor = feature_extractor
        self.multi_label = multi_label

    def __call__(self, examples):
        features = self.feature_extractor(
            [e["waveform"] for e in examples],
            sampling_rate=self.feature_extractor.sampling_rate,
            padding=True,
            return_tensors="pt",
        )
        dtype = torch.float32 if self.multi_label else torch.long
        features["labels"] = torch.tensor([e["labels"] for e in examples], dtype=dtype)
        return features


def prepare_splits(data_args: DataArguments, seed: int):
    data_files = {
        split: file
        for split, file in (
            ("train", data_args.train_file),
            ("validation", data_args.validation_file),
            ("test", data_args.test_file),
        )
        if file
    }
    dataset = load_audio_dataset(
        data_args.dataset_name, data_args.dataset_config_name, data_files or None, data_args.audio_column
    )
    splits = resolve_splits(
        dataset,
        data_args.train_split_name if not data_files else "train",
        data_args.validation_split_name if not data_files else "validation",
        data_args.test_split_name if not data_files else "test",
        data_args.validation_split_percentage / 100,
        data_args.test_split_percentage / 100,
        seed,
    )
    check_columns(splits, [data_args.audio_column, data_args.label_column])
    space = LabelSpace.from_dataset(
        splits["train"], data_args.label_column, data_args.label_delimiter, data_args.multi_label
    )
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples}
    limits["test"] = data_args.max_eval_samples
    for split, data in list(splits.items()):
        if data is None:
            continue
        if limits[split] is not None:
            data = data.select(range(min(limits[split], len(data))))
        labels = [space.encode(v, split, data_args.label_column) for v in data[data_args.label_column]]
        data = data.select_columns([data_args.audio_column])
        if not data_args.skip_audio_check:
            check_audio_files(data, data_args.audio_column, split)
        splits[split] = data.add_column("labels", labels)
    return splits, space


# ---------------------------------------------------------------------------------------------------------- model


def check_overrides(config_cls, overrides: dict) -> None:
    """Refuse `--config_overrides` keys that `config_cls` does not have (a typo would otherwise become a silent,
    unused attribute), naming the closest known key."""
    import difflib
    import inspect

    known = set(config_cls().to_dict()) | set(inspect.signature(config_cls.__init__).parameters)
    known -= {"self", "kwargs", "model_type", "transformers_version", "_name_or_path", "architectures"}
    for key in overrides:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}."
            raise ModelInputError(f"--config_overrides key {key!r} is not a setting of {config_cls.__name__}; {hint}")


def _config(config_cls, fields: dict, overrides: dict, **from_pretrained):
    """`config_cls(**fields)`, or `config_cls.from_pretrained(...)`, with the config's own checks as
    `ModelInputError` naming --config_overrides where an override is involved."""
    try:
        if from_pretrained:
            return config_cls.from_pretrained(from_pretrained.pop("source"), **fields, **from_pretrained)
        return config_cls(**fields)
    except (ValueError, TypeError) as err:
        given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        where = f"--config_overrides {given}: " if overrides else ""
        raise ModelInputError(f"{where}{one_line(err)}") from None


def _parse_overrides(text: str | None) -> dict:
    overrides = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ModelInputError(f"--config_overrides item {item!r} is not key=value.")
        key, value = item.split("=", 1)
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value.strip()
    return overrides


def scratch_config(name: str) -> tuple[type, dict]:
    """(config class, fields) for --config_name: an AxLSTM preset (tiny, small, base), an SSAST one (ssast-tiny,
    ssast-small, ssast-base: the paper's transformer baseline), or a config.json of either model type."""
    classes = {"axlstm": AxLSTMConfig, "ssast": SSASTConfig}
    if Path(name).is_file():
        try:
            fields = json.loads(Path(name).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelInputError(f"--config_name {name!r} is not a readable config.json: {err}") from err
        model_type = fields.get("model_type", "axlstm") if isinstance(fields, dict) else None
        if model_type not in classes:
            raise ModelInputError(
                f"--config_name {name!r} has model_type {model_type!r}; expected one of {sorted(classes)}."
            )
        base = classes[model_type].from_json_file(name).to_diff_dict()
        config_cls = classes[model_type]
    else:
        config_cls, preset = (
            (SSASTConfig, name[len("ssast-") :]) if name.startswith("ssast-") else (AxLSTMConfig, name)
        )
        if preset not in config_cls._presets:
            presets = sorted(AXLSTM_PRESETS) + [f"ssast-{p}" for p in sorted(SSAST_PRESETS)]
            raise ModelInputError(
                f"--config_name {name!r} is neither a config.json file nor a preset; expected one of {presets}."
            )
        base = config_cls.from_preset(preset).to_diff_dict()
    return config_cls, {k: v for k, v in base.items() if k not in ("model_type", "transformers_version")}


def build_model(model_args: ModelArguments, space: LabelSpace):
    label_kwargs = {
        "id2label": space.id2label,
        "label2id": {label: i for i, label in space.id2label.items()},
        "problem_type": "multi_label_classification" if space.multi_label else "single_label_classification",
    }
    overrides = _parse_overrides(model_args.config_overrides)
    if model_args.classifier_pooling:
        overrides["classifier_pooling"] = model_args.classifier_pooling
    source = model_args.model_name_or_path
    if source and source.startswith((".", "/", "~")) and not Path(source).expanduser().exists():
        raise ModelInputError(f"model {source!r} does not exist (no such folder or checkpoint file).")
    try:
        if source and Path(source).is_file():
            from hf_axlstm.convert_official import convert_checkpoint

            pretrained = convert_checkpoint(source)  # AxLSTM or the SSAST baseline, by its keys
            config_cls = type(pretrained.config)
            check_overrides(config_cls, overrides)
            fields = {**pretrained.config.to_diff_dict(), **overrides, **label_kwargs}
            fields = {k: v for k, v in fields.items() if k not in ("model_type", "transformers_version")}
            config = _config(config_cls, fields, overrides)
            model = AutoModelForAudioClassification.from_config(config)
            model.base_model.load_state_dict(pretrained.base_model.state_dict())
            return model, AxLSTMFeatureExtractor()
        if source:
            config_cls = type(AutoConfig.from_pretrained(source))
            check_overrides(config_cls, overrides)
            config = _config(AutoConfig, {**overrides, **label_kwargs}, overrides, source=source)
            model = AutoModelForAudioClassification.from_pretrained(
                source, config=config, ignore_mismatched_sizes=True
            )
            # The paper's log-mel when the model has no preprocessor_config.json; an invalid one is an error.
            if Path(source).is_dir() and not (Path(source) / "preprocessor_config.json").is_file():
                return model, AxLSTMFeatureExtractor()
            try:
                feature_extractor = AutoFeatureExtractor.from_pretrained(source)
            except OSError:
                if Path(source).is_dir():
                    raise
                feature_extractor = AxLSTMFeatureExtractor()  # a Hub model without one
            return model, feature_extractor
        if model_args.config_name:
            config_cls, base = scratch_config(model_args.config_name)
            check_overrides(config_cls, overrides)
            config = _config(config_cls, {**base, **overrides, **label_kwargs}, overrides)
            return AutoModelForAudioClassification.from_config(config), AxLSTMFeatureExtractor()
    except OSError as err:
        raise ModelInputError(f"cannot load model {source!r}: {err}") from err
    raise ModelInputError("pass --model_name_or_path (pretrained) or --config_name (train from scratch).")


def layer_decay_groups(model, learning_rate: float, weight_decay: float, layer_decay: float):
    """Parameter groups with the learning rate of depth d scaled by layer_decay ** (num_layers + 1 - d)."""
    num_layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if ".embeddings." in f".{name}":
            depth = 0
        elif ".layers." in name:
            depth = int(name.split(".layers.")[1].split(".")[0]) + 1
        else:
            depth = num_layers + 1  # final norm and classifier
        decay = param.ndim >= 2 and not name.endswith("_token")
        key = (depth, decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": learning_rate * layer_decay ** (num_layers + 1 - depth),
                "weight_decay": weight_decay if decay else 0.0,
            }
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups)]


# --------------------------------------------------------------------------------------------------------- trainer


def spec_augment(input_values, attention_mask, aug: AugmentArguments):
    """Zero (the normalised mean) random time and frequency bands of each clip's real frames."""
    batch, frames, bins = input_values.shape
    keep = torch.ones_like(input_values, dtype=torch.bool)
    lengths = attention_mask.sum(dim=1) if attention_mask is not None else torch.full((batch,), frames)
    time_index = torch.arange(frames, device=input_values.device)
    freq_index = torch.arange(bins, device=input_values.device)
    for b in range(batch):
        for _ in range(aug.time_masks):
            width = int(torch.randint(0, aug.time_mask_width + 1, ()))
            start = int(torch.randint(0, max(1, int(lengths[b]) - width + 1), ()))
            keep[b] &= ~((time_index >= start) & (time_index < start + width))[:, None]
        for _ in range(aug.freq_masks):
            width = int(torch.randint(0, aug.freq_mask_width + 1, ()))
            start = int(torch.randint(0, max(1, bins - width + 1), ()))
            keep[b] &= ~((freq_index >= start) & (freq_index < start + width))[None, :]
    return input_values * keep


class AxLSTMTrainer(Trainer):
    """Trainer with the classification loss computed here (so mixup's soft targets work), augmentation in
    training steps, and layer-wise learning-rate decay."""

    def __init__(self, *args, augment: AugmentArguments, multi_label: bool, layer_decay: float | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augment = augment
        self.multi_label = multi_label
        self.layer_decay = layer_decay

    def create_optimizer(self, model=None):
        if self.layer_decay is None or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        groups = layer_decay_groups(model, self.args.learning_rate, self.args.weight_decay, self.layer_decay)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        # class ids of any integer dtype (int32 from Arrow or numpy) as the int64 torch's losses take; multi-hot
        # targets as floats
        if self.multi_label:
            labels = labels.float()
        elif not labels.is_floating_point():
            labels = labels.long()
        if model.training:
            inputs, labels = self._augment(inputs, labels, model.config.num_labels)
        outputs = model(**inputs)
        logits = outputs.logits.float()
        if self.multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, labels.float())
        elif labels.is_floating_point():  # mixed one-hot targets
            loss = -(labels * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
        else:
            loss = F.cross_entropy(logits, labels)
        return (loss, outputs) if return_outputs else loss

    def _augment(self, inputs, labels, num_labels):
        aug = self.augment
        if aug.time_masks or aug.freq_masks:
            inputs["input_values"] = spec_augment(inputs["input_values"], inputs.get("attention_mask"), aug)
        if aug.mixup_alpha > 0 and labels.shape[0] > 1:
            lam = float(np.random.beta(aug.mixup_alpha, aug.mixup_alpha))
            perm = torch.randperm(labels.shape[0], device=labels.device)
            x = inputs["input_values"]
            inputs["input_values"] = lam * x + (1 - lam) * x[perm]
            if inputs.get("attention_mask") is not None:
                inputs["attention_mask"] = torch.maximum(inputs["attention_mask"], inputs["attention_mask"][perm])
            targets = labels.float() if self.multi_label else F.one_hot(labels, num_labels).float()
            labels = lam * targets + (1 - lam) * targets[perm]
        return inputs, labels


def metric_names(space: LabelSpace) -> list[str]:
    """The evaluation metrics `make_compute_metrics` reports for `space` (plus the Trainer's loss)."""
    return ["loss", "mAP", "macro_f1"] if space.multi_label else ["loss", "accuracy", "macro_f1", "mAP"]


def check_metric_for_best_model(training_args, space: LabelSpace | None) -> None:
    """--metric_for_best_model must name a metric this run reports (with or without `eval_`); the Trainer would
    otherwise stop with a KeyError at the first evaluation, after training for an epoch. Without `space` (before the
    data is read) any metric of either kind of data passes."""
    name = training_args.metric_for_best_model
    if name is None:
        return
    if space is None:
        names = ["loss", "accuracy", "macro_f1", "mAP"]
        if name.removeprefix("eval_") not in names:
            raise DatasetInputError(
                f"--metric_for_best_model {name!r} is not a metric this script reports; expected one of {names} "
                "(optionally with the eval_ prefix; accuracy for single-label data only)."
            )
        return
    names = metric_names(space)
    if name.removeprefix("eval_") not in names:
        kind = "multi-label" if space.multi_label else "single-label"
        raise DatasetInputError(
            f"--metric_for_best_model {name!r} is not a metric of this run; {kind} data gives {names} (optionally "
            "with the eval_ prefix)."
        )


def make_compute_metrics(space: LabelSpace):
    import evaluate

    def load(name: str, config: str | None = None):
        return evaluate.load(str(METRICS_DIR / f"{name}.py"), config)

    if space.multi_label:
        mean_ap, macro_f1 = load("mean_average_precision"), load("macro_f1", "multilabel")

        def compute(eval_pred):
            logits, labels = eval_pred.predictions, eval_pred.label_ids.astype(np.int64)
            predicted = (logits > 0).astype(np.int64)  # sigmoid > 0.5
            return {
                **mean_ap.compute(predictions=logits.tolist(), references=labels.tolist()),
                **macro_f1.compute(predictions=predicted.tolist(), references=labels.tolist()),
            }

        return compute

    accuracy, macro_f1 = load("accuracy"), load("macro_f1")
    mean_ap = load("mean_average_precision", "multiclass")
    num_classes = len(space.labels)

    def compute(eval_pred):
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        predicted = logits.argmax(-1)
        return {
            **accuracy.compute(predictions=predicted, references=labels),
            **macro_f1.compute(predictions=predicted, references=labels, num_classes=num_classes),
            **mean_ap.compute(predictions=logits.tolist(), references=labels.tolist()),
        }

    return compute


# ------------------------------------------------------------------------------------------------------------ main


def run(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((ModelArguments, DataArguments, AugmentArguments, RunArguments, TrainingArguments))
    try:
        model_args, data_args, aug_args, run_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as err:  # TrainingArguments' own checks, unknown flags
        parser.error(one_line(err))
    check_arguments(parser, model_args, data_args, aug_args, training_args, run_args)
    check_model_arguments(model_args)
    check_metric_for_best_model(training_args, None)
    do_train = wants_training(training_args, argv)
    lock = lock_output_dir(parser, training_args)
    try:
        return finetune(parser, model_args, data_args, aug_args, run_args, training_args, do_train, lock)
    finally:
        if lock is not None:
            lock.release()


def wants_training(training_args, argv: list[str] | None) -> bool:
    """Whether this run trains. It does unless `--do_eval` or `--do_predict` was given on the command line without
    `--do_train` (an evaluation-only run of a fine-tuned model). `--eval_strategy` alone sets the Trainer's
    `do_eval` too, but asks for evaluation during training, not instead of it, so it never turns training off."""
    if training_args.do_train:
        return True
    tokens = sys.argv[1:] if argv is None else argv
    given = {token.split("=", 1)[0] for token in tokens if token.startswith("--")}
    asked_eval = "--do_eval" in given and training_args.do_eval
    asked_predict = "--do_predict" in given and training_args.do_predict
    return not (asked_eval or asked_predict)


def finetune(parser, model_args, data_args, aug_args, run_args, training_args, do_train: bool, lock=None) -> int:
    """Everything after the argument checks, while the main process holds the output folder's lock."""
    check_output_dir(parser, training_args, run_args)
    if run_args.overwrite_output_dir and training_args.process_index == 0:
        removed = clear_output_dir(Path(training_args.output_dir))
        if removed:
            logger.warning("--overwrite_output_dir: deleted %s in %s", ", ".join(removed), training_args.output_dir)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    training_args.do_train = do_train
    if not do_train:
        logger.info("evaluation only (--do_eval / --do_predict without --do_train): no training, no model saved")
    training_args.remove_unused_columns = False  # the transform produces the model inputs from the audio column
    training_args.label_names = ["labels"]
    set_seed(training_args.seed)

    splits, space = prepare_splits(data_args, training_args.seed)
    logger.info(
        "labels: %d (%s), splits: %s",
        len(space.labels),
        "multi-label" if space.multi_label else "single-label",
        {k: len(v) for k, v in splits.items() if v is not None},
    )
    check_metric_for_best_model(training_args, space)
    model, feature_extractor = build_model(model_args, space)
    if model_args.mode == "linear_probe":
        for param in model.base_model.parameters():  # the encoder: AxLSTMModel or SSASTModel
            param.requires_grad_(False)

    max_samples = int(data_args.max_length_seconds * TARGET_SAMPLING_RATE)
    min_samples = getattr(feature_extractor, "min_num_samples", 201)
    for split, data in splits.items():
        if data is not None:
            data.set_transform(DecodeAndCrop(data_args.audio_column, max_samples, min_samples, split == "train"))
    if training_args.do_predict and not do_train and splits["test"] is None:
        raise DatasetInputError("--do_predict: the dataset has no test split to predict on.")
    # The CPU allocator and the fused kernels only once the data and the model loaded (a refused run never builds).
    if training_args.device.type == "cpu" and run_args.cpu_allocator == "tuned":
        tune_cpu_allocator()
    if do_train and training_args.device.type == "cpu" and run_args.cpu_kernels == "fused":
        enable_fused_cpu_kernels(model)  # built before the first step: the build is not timed as training

    trainer = AxLSTMTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=feature_extractor,
        data_collator=AudioCollator(feature_extractor, space.multi_label),
        compute_metrics=make_compute_metrics(space),
        augment=aug_args,
        multi_label=space.multi_label,
        layer_decay=model_args.layer_decay if model_args.mode == "lld" else None,
    )
    if do_train:
        result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
    if do_train or training_args.do_eval:
        metrics = trainer.evaluate(splits["validation"], metric_key_prefix="eval")
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    if splits["test"] is not None and (do_train or training_args.do_predict):
        test_metrics = trainer.evaluate(splits["test"], metric_key_prefix="test")
        trainer.log_metrics("test", test_metrics)
        trainer.save_metrics("test", test_metrics)
    if training_args.push_to_hub:
        if lock is not None:
            lock.release()  # deletes the lock file, which would otherwise be uploaded with the folder
        trainer.push_to_hub(
            finetuned_from=model_args.model_name_or_path,
            tasks="audio-classification",
            dataset=data_args.dataset_name,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except (DatasetInputError, AudioDecodeError, ModelInputError, PretrainingError) as err:
        print(f"finetune.py: error: {one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        line = os_error_line(err, "the run's files")  # a read-only or full output folder, a file in the way
        if line is None:
            raise
        print(f"finetune.py: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

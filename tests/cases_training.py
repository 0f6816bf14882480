# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Bad inputs to the training scripts: examples/pretrain.py, examples/prepare_features.py, examples/finetune.py.

Most are rejected while the arguments are checked; a few after reading data (a NaN clip, a truncated feature shard).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .badinputs import TINY_FLAGS, Cli


def _pretrain(*extra: str):
    """argv of a 1-step pretraining run on ctx.wav_dir plus `extra`."""

    def argv(ctx, tmp_path: Path) -> list[str]:
        source = ["--train_dir", str(ctx.wav_dir)]
        out = ["--output_dir", str(tmp_path / "out")]
        return [*source, *out, *TINY_FLAGS, "--max_train_steps", "1", *extra]

    return argv


def _pretrain_bad(flag: str, value: str, expected: str) -> Cli:
    return Cli(
        f"pretrain-{flag.replace('_', '-')}-{value}",
        "pretrain",
        _pretrain(f"--{flag}", value),
        rf"--{flag}={value}\b.*expected {expected}",
    )


def _clips(tmp_path: Path, bad: float | None, name: str = "bad.wav") -> Path:
    """Two good 0.5 s float WAV clips and, with `bad`, one whose middle samples are `bad` (NaN or inf)."""
    import soundfile as sf

    folder = tmp_path / "clips"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        sf.write(folder / f"good{i}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000, "FLOAT")
    if bad is not None:
        wave = (0.1 * rng.standard_normal(8000)).astype(np.float32)
        wave[4000:4010] = bad
        sf.write(folder / name, wave, 16000, "FLOAT")
    return folder


def _bad_clip_run(bad: float, *extra: str):
    def argv(ctx, tmp_path):
        folder = _clips(tmp_path, bad)
        return ["--train_dir", str(folder), "--output_dir", str(tmp_path / "out"), *TINY_FLAGS,
                "--max_train_steps", "1", "--per_device_train_batch_size", "3", "--validation_fraction", "0",
                *extra]  # fmt: skip

    return argv


def _features(ctx, tmp_path: Path) -> Path:
    from .badinputs import load_example

    folder = tmp_path / "feats"
    load_example("prepare_features").main(
        ["--train_dir", str(ctx.wav_dir), "--output_dir", str(folder), "--clips_per_shard", "3"]
    )
    return folder


def _truncated_shard(ctx, tmp_path):
    folder = _features(ctx, tmp_path)
    shard = sorted(folder.glob("*.parquet"))[1]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    return [
        "--features_dir",
        str(folder),
        "--output_dir",
        str(tmp_path / "out"),
        *TINY_FLAGS,
        "--max_train_steps",
        "1",
    ]


def _stale_shard(ctx, tmp_path):
    folder = _features(ctx, tmp_path)
    shard = sorted(folder.glob("*.parquet"))[0]
    (folder / "train-00000-of-00009.parquet").write_bytes(shard.read_bytes())  # left over from an earlier run
    return [
        "--features_dir",
        str(folder),
        "--output_dir",
        str(tmp_path / "out"),
        *TINY_FLAGS,
        "--max_train_steps",
        "1",
    ]


def _non_empty_out(script_args):
    def argv(ctx, tmp_path):
        out = tmp_path / "out"
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"an earlier run's model")
        return script_args(ctx, tmp_path)

    return argv


def _file_out(script_args):
    def argv(ctx, tmp_path):
        (tmp_path / "out").write_text("a file, not a folder")
        return script_args(ctx, tmp_path)

    return argv


def _empty_dir(flag_builder):
    def argv(ctx, tmp_path):
        (tmp_path / "empty" / "sub").mkdir(parents=True)
        (tmp_path / "empty" / "sub" / "notes.txt").write_text("no audio here")
        return flag_builder(tmp_path / "empty", tmp_path)

    return argv


PRETRAIN_CASES = [
    _pretrain_bad("crop_frames", "-5", "a positive integer"),
    _pretrain_bad("crop_frames", "0", "a positive integer"),
    _pretrain_bad("learning_rate", "nan", "a finite number > 0"),
    _pretrain_bad("learning_rate", "inf", "a finite number > 0"),
    _pretrain_bad("learning_rate", "-0.001", "a finite number > 0"),
    _pretrain_bad("num_workers", "-1", "an integer >= 0"),
    _pretrain_bad("checkpointing_steps", "0", "a positive integer"),
    _pretrain_bad("checkpointing_steps", "-2", "a positive integer"),
    _pretrain_bad("warmup_steps", "-1", "an integer >= 0"),
    _pretrain_bad("warmup_ratio", "1.0", r"a number in \[0, 1\)"),
    _pretrain_bad("warmup_ratio", "-0.1", r"a number in \[0, 1\)"),
    _pretrain_bad("validation_fraction", "1.0", r"a number in \[0, 1\)"),
    _pretrain_bad("validation_fraction", "nan", r"a number in \[0, 1\)"),
    _pretrain_bad("weight_decay", "-0.05", "a finite number >= 0"),
    _pretrain_bad("adam_beta1", "1.0", r"a number in \[0, 1\)"),
    _pretrain_bad("adam_beta2", "-0.5", r"a number in \[0, 1\)"),
    _pretrain_bad("adam_epsilon", "0.0", "a finite number > 0"),
    _pretrain_bad("max_grad_norm", "0.0", "a finite number > 0"),
    _pretrain_bad("max_grad_norm", "-1.0", "a finite number > 0"),
    _pretrain_bad("mask_ratio", "0.0", r"a number in \(0, 1\)"),
    _pretrain_bad("mask_ratio", "1.0", r"a number in \(0, 1\)"),
    _pretrain_bad("checkpoints_total_limit", "0", "a positive integer"),
    _pretrain_bad("validation_steps", "0", "a positive integer"),
    _pretrain_bad("per_device_train_batch_size", "0", "a positive integer"),
    _pretrain_bad("gradient_accumulation_steps", "0", "a positive integer"),
    _pretrain_bad("max_train_steps", "0", "a positive integer"),
    _pretrain_bad("num_train_epochs", "0", "a positive integer"),
    _pretrain_bad("max_validation_clips", "-1", "an integer >= 0"),
    _pretrain_bad("stop_after_steps", "0", "a positive integer"),
    _pretrain_bad("seed", "-3", "an integer >= 0"),
    _pretrain_bad("logging_steps", "0", "a positive integer"),
    _pretrain_bad("prefetch_factor", "0", "a positive integer"),
    Cli(
        "pretrain-prefetch-factor-without-workers",
        "pretrain",
        _pretrain("--prefetch_factor", "4"),
        r"--prefetch_factor=4 needs --num_workers >= 1",
    ),
    _pretrain_bad("hidden_size", "0", "a positive integer"),
    _pretrain_bad("num_heads", "-4", "a positive integer"),
    Cli("pretrain-crop-frames-not-int", "pretrain", _pretrain("--crop_frames", "1.5"), r"--crop_frames.*invalid int"),
    Cli("pretrain-loss-on-bad-choice", "pretrain", _pretrain("--loss_on", "some"), r"--loss_on.*invalid choice"),
    Cli(
        "pretrain-resume-missing-folder",
        "pretrain",
        lambda ctx, tmp: _pretrain("--resume_from_checkpoint", str(tmp / "nowhere" / "checkpoint-4"))(ctx, tmp),
        r"--resume_from_checkpoint '.*checkpoint-4' does not exist; expected a checkpoint folder or 'latest'",
    ),
    Cli(
        "pretrain-resume-a-file",
        "pretrain",
        lambda ctx, tmp: (
            (tmp / "ckpt").write_text("x") and _pretrain("--resume_from_checkpoint", str(tmp / "ckpt"))(ctx, tmp)
        ),
        r"--resume_from_checkpoint '.*ckpt' is a file",
    ),
    Cli(
        "pretrain-overwrite-and-resume",
        "pretrain",
        _pretrain("--overwrite_output_dir", "--resume_from_checkpoint", "latest"),
        r"--overwrite_output_dir deletes the checkpoints --resume_from_checkpoint",
    ),
    Cli(
        "pretrain-train-dir-missing",
        "pretrain",
        lambda ctx, tmp: ["--train_dir", str(tmp / "nowhere"), "--output_dir", str(tmp / "out"), *TINY_FLAGS],
        r"--train_dir '.*nowhere' does not exist; expected a folder",
    ),
    Cli(
        "pretrain-train-dir-is-a-file",
        "pretrain",
        lambda ctx, tmp: [
            "--train_dir",
            str(next(ctx.wav_dir.rglob("*.wav"))),
            "--output_dir",
            str(tmp / "out"),
            *TINY_FLAGS,
        ],  # fmt: skip
        r"--train_dir '.*\.wav' is a file; expected a folder",
    ),
    Cli(
        "pretrain-train-dir-empty",
        "pretrain",
        _empty_dir(lambda folder, tmp: ["--train_dir", str(folder), "--output_dir", str(tmp / "out"), *TINY_FLAGS]),
        r"--train_dir '.*empty' holds no audio files",
    ),
    Cli(
        "pretrain-features-dir-missing",
        "pretrain",
        lambda ctx, tmp: ["--features_dir", str(tmp / "nofeats"), "--output_dir", str(tmp / "out"), *TINY_FLAGS],
        r"--features_dir '.*nofeats' does not exist",
    ),
    Cli(
        "pretrain-two-data-sources",
        "pretrain",
        _pretrain("--features_dir", "feats"),
        r"exactly one data source: --train_dir, --dataset_name or --features_dir",
    ),
    Cli(
        "pretrain-output-dir-not-empty",
        "pretrain",
        _non_empty_out(_pretrain()),
        r"--output_dir '.*out' is not empty \(model\.safetensors\).*--resume_from_checkpoint latest.*"
        r"--overwrite_output_dir",
    ),
    Cli("pretrain-output-dir-is-a-file", "pretrain", _file_out(_pretrain()), r"--output_dir '.*out' is a file"),
    Cli(
        "pretrain-features-truncated-shard",
        "pretrain",
        _truncated_shard,
        r"feature shard '.*feats/train-00001-of-0000\d\.parquet' is damaged or truncated",
    ),
    Cli(
        "pretrain-features-stale-shard",
        "pretrain",
        _stale_shard,
        r"--features_dir '.*feats' holds \d+ clips but axlstm_features\.json records \d+ \(a shard is missing, or left",
    ),
    Cli(
        "pretrain-nan-clip",
        "pretrain",
        _bad_clip_run(float("nan")),
        r"clip 'bad\.wav' \(dataset index 0\): 10 of its 8000 audio samples are NaN or inf; remove or repair it",
    ),
    Cli(
        "pretrain-inf-clip-in-a-worker",
        "pretrain",
        _bad_clip_run(float("inf"), "--num_workers", "1"),
        r"^pretrain\.py: error: clip 'bad\.wav' \(dataset index 0\): 10 of its 8000 audio samples are NaN or inf",
    ),
]


def _prepare(*extra: str):
    def argv(ctx, tmp_path):
        return ["--train_dir", str(ctx.wav_dir), "--output_dir", str(tmp_path / "out"), *extra]

    return argv


def _prepare_bad(flag: str, value: str) -> Cli:
    return Cli(
        f"prepare-{flag.replace('_', '-')}-{value}",
        "prepare_features",
        _prepare(f"--{flag}", value),
        rf"--{flag}={value} is invalid; expected a positive integer",
    )


def _prepare_bad_clip(bad: float):
    def argv(ctx, tmp_path):
        return ["--train_dir", str(_clips(tmp_path, bad)), "--output_dir", str(tmp_path / "out")]

    return argv


PREPARE_CASES = [
    _prepare_bad("clips_per_shard", "0"),
    _prepare_bad("clips_per_shard", "-3"),
    _prepare_bad("num_mel_bins", "0"),
    _prepare_bad("num_proc", "0"),
    _prepare_bad("sampling_rate", "0"),
    Cli("prepare-format-bad-choice", "prepare_features", _prepare("--format", "csv"), r"--format.*invalid choice"),
    Cli(
        "prepare-no-source",
        "prepare_features",
        lambda ctx, tmp: ["--output_dir", str(tmp / "out")],
        r"exactly one of --train_dir and --dataset_name",
    ),
    Cli(
        "prepare-train-dir-missing",
        "prepare_features",
        lambda ctx, tmp: ["--train_dir", str(tmp / "nowhere"), "--output_dir", str(tmp / "out")],
        r"--train_dir '.*nowhere' does not exist",
    ),
    Cli(
        "prepare-train-dir-empty",
        "prepare_features",
        _empty_dir(lambda folder, tmp: ["--train_dir", str(folder), "--output_dir", str(tmp / "out")]),
        r"--train_dir '.*empty' holds no audio files",
    ),
    Cli(
        "prepare-dataset-missing",
        "prepare_features",
        lambda ctx, tmp: ["--dataset_name", str(tmp / "nods"), "--output_dir", str(tmp / "out")],
        r"cannot load --dataset_name '.*nods'",
    ),
    Cli(
        "prepare-output-dir-not-empty",
        "prepare_features",
        _non_empty_out(_prepare()),
        r"--output_dir '.*out' is not empty; pass --overwrite_output_dir",
    ),
    Cli("prepare-output-dir-is-a-file", "prepare_features", _file_out(_prepare()), r"--output_dir '.*out' is a file"),
    Cli(
        "prepare-nan-clip",
        "prepare_features",
        _prepare_bad_clip(float("nan")),
        r"clip '.*bad\.wav': 10 of its 8000 audio samples are NaN or inf; remove or repair it \(nothing was written\)",
    ),
    Cli(
        "prepare-inf-clip",
        "prepare_features",
        _prepare_bad_clip(float("-inf")),
        r"clip '.*bad\.wav': 10 of its 8000 audio samples are NaN or inf",
    ),
]


def _finetune(*extra: str):
    """argv of a tiny CPU fine-tuning run on ctx.wav_dir (an audiofolder) plus `extra`."""

    def argv(ctx, tmp_path):
        return ["--model_name_or_path", str(ctx.classifier_dir), "--dataset_name", str(ctx.wav_dir),
                "--output_dir", str(tmp_path / "out"), "--use_cpu", "--report_to", "none", "--max_steps", "1",
                *extra]  # fmt: skip

    return argv


def _finetune_bad(flag: str, value: str, expected: str) -> Cli:
    return Cli(
        f"finetune-{flag.replace('_', '-')}-{value}",
        "finetune",
        _finetune(f"--{flag}", value),
        rf"--{flag} {value}\b.* is invalid; expected {expected}",
    )


FINETUNE_CASES = [
    Cli("finetune-mode-bad", "finetune", _finetune("--mode", "half"), r"--mode 'half' is invalid; expected full"),
    _finetune_bad("layer_decay", "0.0", r"a number in \(0, 1\]"),
    _finetune_bad("layer_decay", "1.5", r"a number in \(0, 1\]"),
    Cli(
        "finetune-pooling-bad",
        "finetune",
        _finetune("--classifier_pooling", "max"),
        r"--classifier_pooling 'max' is invalid; expected mean or cls",
    ),
    _finetune_bad("validation_split_percentage", "0.0", r"a percentage in \(0, 100\)"),
    _finetune_bad("test_split_percentage", "100.0", r"a percentage in \(0, 100\)"),
    _finetune_bad("max_length_seconds", "0.0", "a finite number of seconds > 0"),
    _finetune_bad("max_length_seconds", "nan", "a finite number of seconds > 0"),
    _finetune_bad("max_train_samples", "0", "a positive integer"),
    _finetune_bad("max_eval_samples", "-1", "a positive integer"),
    _finetune_bad("time_masks", "-1", "an integer >= 0"),
    _finetune_bad("freq_mask_width", "-8", "an integer >= 0"),
    _finetune_bad("mixup_alpha", "-0.5", "a finite number >= 0"),
    _finetune_bad("learning_rate", "nan", "a finite number > 0"),
    _finetune_bad("learning_rate", "-0.0001", "a finite number > 0"),
    _finetune_bad("num_train_epochs", "0.0", "a finite number > 0"),
    _finetune_bad("max_steps", "0", "a positive integer"),
    _finetune_bad("weight_decay", "-0.1", "a finite number >= 0"),
    _finetune_bad("adam_beta1", "1.0", r"a number in \[0, 1\)"),
    _finetune_bad("adam_epsilon", "0.0", "a finite number > 0"),
    _finetune_bad("max_grad_norm", "-1.0", "a finite number >= 0"),
    Cli(  # TrainingArguments checks this one itself; its message reaches the user as one error line
        "finetune-warmup-steps-negative",
        "finetune",
        _finetune("--warmup_steps", "-1.0"),
        r"warmup_steps = -1\.0, Expected value warmup_steps >= 0",
    ),
    _finetune_bad("label_smoothing_factor", "1.0", r"a number in \[0, 1\)"),
    _finetune_bad("per_device_train_batch_size", "0", "a positive integer"),
    _finetune_bad("gradient_accumulation_steps", "0", "a positive integer"),
    _finetune_bad("save_total_limit", "0", "a positive integer"),
    _finetune_bad("dataloader_num_workers", "-1", "an integer >= 0"),
    _finetune_bad("seed", "-1", "an integer >= 0"),
    Cli(
        "finetune-unknown-flag",
        "finetune",
        _finetune("--max_train_step", "3"),
        r"arguments are not used by the HfArgumentParser: \['--max_train_step', '3'\]",
    ),
    Cli(
        "finetune-eval-strategy-bad-choice",
        "finetune",
        _finetune("--eval_strategy", "sometimes"),
        r"--eval_strategy.*invalid choice: 'sometimes'",
    ),
    Cli(
        "finetune-resume-missing-folder",
        "finetune",
        lambda ctx, tmp: _finetune("--resume_from_checkpoint", str(tmp / "nowhere"))(ctx, tmp),
        r"--resume_from_checkpoint '.*nowhere' does not exist; expected a checkpoint folder or 'latest'",
    ),
    Cli(
        "finetune-resume-latest-without-checkpoints",
        "finetune",
        _finetune("--resume_from_checkpoint", "latest"),
        r"--resume_from_checkpoint latest: --output_dir '.*out' has no checkpoint-\* folder",
    ),
    Cli(
        "finetune-overwrite-and-resume",
        "finetune",
        _finetune("--overwrite_output_dir", "--resume_from_checkpoint", "latest"),
        r"--overwrite_output_dir deletes the checkpoints --resume_from_checkpoint",
    ),
    Cli(
        "finetune-output-dir-not-empty",
        "finetune",
        _non_empty_out(_finetune()),
        r"--output_dir '.*out' is not empty \(model\.safetensors\): pass --resume_from_checkpoint.*"
        r"--overwrite_output_dir",
    ),
    Cli("finetune-output-dir-is-a-file", "finetune", _file_out(_finetune()), r"--output_dir '.*out' is a file"),
    Cli(
        "finetune-dataset-missing",
        "finetune",
        lambda ctx, tmp: _finetune()(ctx, tmp)[:3] + [str(tmp / "nods")] + _finetune()(ctx, tmp)[4:],
        r"^finetune\.py: error: dataset '.*nods' does not exist",
    ),
]

CASES: list = [*PRETRAIN_CASES, *PREPARE_CASES, *FINETUNE_CASES]

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


def _pretrain_from(model, *extra: str):
    """argv of a 1-step pretraining run that continues from `model` (no size flags)."""

    def argv(ctx, tmp_path: Path) -> list[str]:
        return ["--train_dir", str(ctx.wav_dir), "--output_dir", str(tmp_path / "out"), "--model_name_or_path",
                str(model), "--max_train_steps", "1", "--no_progress_bar", *extra]  # fmt: skip

    return argv


def _folder_with_config(tmp_path: Path, config) -> Path:
    """A folder `model` with `config` as its config.json (a dict as JSON, a str as is, None: no config.json)."""
    import json

    folder = tmp_path / "model"
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return folder


def _config_only_model(ctx, tmp_path: Path) -> Path:
    """An AxLSTM config.json and a weights file holding none of the encoder's tensors."""
    import shutil

    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(ctx.pretrain_dir / "config.json", folder / "config.json")
    save_file({"unrelated.weight": torch.zeros(2)}, str(folder / "model.safetensors"))
    return folder


def _users_model_out(ctx, tmp_path: Path) -> bool:
    """--output_dir holding a user's model (config.json, model.safetensors) and no run."""
    import shutil

    out = tmp_path / "out"
    out.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(ctx.pretrain_dir / name, out / name)
    return True


def _under_a_file(script_args):
    """--output_dir inside a file (fails with ENOTDIR, for root too), replacing the argv's --output_dir."""

    def argv(ctx, tmp_path):
        (tmp_path / "a_file").write_text("a file, not a folder")
        args = script_args(ctx, tmp_path)
        args[args.index("--output_dir") + 1] = str(tmp_path / "a_file" / "out")
        return args

    return argv


def _saved_dataset_args(ctx, tmp_path: Path, dict_: bool, split: str, script: str = "pretrain") -> list[str]:
    """A `save_to_disk` folder of the wav clips (a DatasetDict with splits train / other, or a single Dataset that
    is the train split) and the argv that asks for `split` of it."""
    import datasets

    files = sorted(str(p) for p in ctx.wav_dir.rglob("*.wav"))
    train = datasets.Dataset.from_dict({"audio": files[:3]}, split="train")
    data = datasets.DatasetDict({"train": train, "other": datasets.Dataset.from_dict({"audio": files[3:]})})
    (data if dict_ else train).save_to_disk(str(tmp_path / "ds"))
    args = ["--dataset_name", str(tmp_path / "ds"), "--train_split", split, "--output_dir", str(tmp_path / "out")]
    return [*args, *TINY_FLAGS, "--max_train_steps", "1"] if script == "pretrain" else args


def _copy_of(folder: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(folder, to)
    return to


def _uninstalled_tracker() -> str:
    """A tracker accelerate knows whose package is not installed here."""
    from accelerate.tracking import get_available_trackers
    from accelerate.utils import LoggerType

    available = {str(t) for t in get_available_trackers()}
    return next(t for t in LoggerType.list() if t != "all" and t not in available)


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
    _pretrain_bad("hidden_size", "1000000", "a positive integer up to 8192"),
    _pretrain_bad("num_hidden_layers", "100000", "a positive integer up to 256"),
    _pretrain_bad("crop_frames", "10000000", "a positive integer up to 60000"),
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
        "pretrain-extend-schedule-without-resume",
        "pretrain",
        _pretrain("--extend_schedule"),
        r"--extend_schedule continues a run from a checkpoint: give --resume_from_checkpoint",
    ),
    Cli(
        "pretrain-model-missing",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(tmp / "nomodel")(ctx, tmp),
        r"--model_name_or_path '.*nomodel' does not exist; expected a local save_pretrained folder",
    ),
    Cli(
        "pretrain-model-wrong-type",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(_folder_with_config(tmp, {"model_type": "bert"}))(ctx, tmp),
        r"--model_name_or_path '.*model' holds a 'bert' model; expected one of \['axlstm', 'ssast'\]",
    ),
    Cli(
        "pretrain-model-without-config",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(_folder_with_config(tmp, None))(ctx, tmp),
        r"--model_name_or_path '.*model' has no config\.json",
    ),
    Cli(
        "pretrain-model-config-not-json",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(_folder_with_config(tmp, "{not json"))(ctx, tmp),
        r"--model_name_or_path '.*model': config\.json is not valid JSON",
    ),
    Cli(
        "pretrain-model-is-a-text-file",
        "pretrain",
        lambda ctx, tmp: (tmp / "model.txt").write_text("x") and _pretrain_from(tmp / "model.txt")(ctx, tmp),
        r"--model_name_or_path '.*model\.txt' is a file but not a \.pth checkpoint",
    ),
    Cli(
        "pretrain-model-with-preset",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(ctx.pretrain_dir, "--preset", "small")(ctx, tmp),
        r"--model_name_or_path takes the architecture from '.*pretrained'; --preset would contradict it",
    ),
    Cli(
        "pretrain-model-with-size-flags",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(ctx.pretrain_dir, "--hidden_size", "64", "--num_heads", "2")(ctx, tmp),
        r"--hidden_size, --num_heads would contradict it",
    ),
    Cli(
        "pretrain-model-type-contradicts",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(ctx.pretrain_dir, "--model_type", "ssast")(ctx, tmp),
        r"--model_type ssast contradicts --model_name_or_path '.*pretrained', a axlstm model",
    ),
    Cli(
        "pretrain-model-encoder-weights-missing",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(_config_only_model(ctx, tmp))(ctx, tmp),
        r"cannot load --model_name_or_path '.*model'|--model_name_or_path '.*model' lacks encoder weights",
    ),
    Cli(
        "pretrain-resume-latest-over-a-users-model",
        "pretrain",
        lambda ctx, tmp: _users_model_out(ctx, tmp) and _pretrain("--resume_from_checkpoint", "latest")(ctx, tmp),
        r"--resume_from_checkpoint latest: '.*out/checkpoints' holds no checkpoint, and --output_dir '.*out' holds "
        r"files a new run would overwrite \(config\.json, model\.safetensors\): not starting from scratch",
    ),
    Cli(
        "pretrain-fp16-on-a-cpu",
        "pretrain",
        _pretrain("--mixed_precision", "fp16"),
        r"--mixed_precision fp16 cannot run on a CPU: accelerate has no fp16 autocast there and would train in "
        r"float32\. Use --mixed_precision bf16",
    ),
    Cli(
        "pretrain-output-dir-under-a-file",
        "pretrain",
        _under_a_file(_pretrain()),
        r"cannot create or write --output_dir '.*a_file/out': Not a directory \(ENOTDIR\)",
    ),
    Cli(
        "pretrain-train-split-of-a-single-saved-dataset",
        "pretrain",
        lambda ctx, tmp: _saved_dataset_args(ctx, tmp, dict_=False, split="test"),
        r"--train_split 'test': --dataset_name '.*ds' is a single saved Dataset.*not a DatasetDict",
    ),
    Cli(
        "pretrain-train-split-not-in-the-saved-dict",
        "pretrain",
        lambda ctx, tmp: _saved_dataset_args(ctx, tmp, dict_=True, split="validation"),
        r"--train_split 'validation' is not a split of --dataset_name '.*ds'; its splits are \['other', 'train'\]",
    ),
    Cli(
        "pretrain-model-is-the-output-dir",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(_copy_of(ctx.pretrain_dir, tmp / "out"), "--overwrite_output_dir")(ctx, tmp),
        r"--model_name_or_path '.*out' is the --output_dir: the new run would write over the model it starts from",
    ),
    Cli(
        "pretrain-model-inside-the-output-dir-with-overwrite",
        "pretrain",
        lambda ctx, tmp: _pretrain_from(
            _copy_of(ctx.pretrain_dir, tmp / "out" / "checkpoints" / "checkpoint-4" / "pretrained"),
            "--overwrite_output_dir",
        )(ctx, tmp),
        r"--model_name_or_path '.*pretrained' is inside --output_dir, which --overwrite_output_dir would clear",
    ),
    Cli(
        "pretrain-report-to-unknown",
        "pretrain",
        _pretrain("--with_tracking", "--report_to", "nosuch"),
        r"--report_to 'nosuch' is not a tracker accelerate knows; expected one of \['aim', 'tensorboard'",
    ),
    Cli(
        "pretrain-report-to-not-installed",
        "pretrain",
        lambda ctx, tmp: _pretrain("--with_tracking", "--report_to", _uninstalled_tracker())(ctx, tmp),
        r"--report_to \w+: its package is not installed, so --with_tracking would track nothing",
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
        "prepare-output-dir-under-a-file",
        "prepare_features",
        _under_a_file(_prepare()),
        r"cannot write the features: Not a directory \(ENOTDIR\): '.*a_file/out'",
    ),
    Cli(
        "prepare-train-split-of-a-single-saved-dataset",
        "prepare_features",
        lambda ctx, tmp: _saved_dataset_args(ctx, tmp, dict_=False, split="other", script="prepare"),
        r"--train_split 'other': --dataset_name '.*ds' is a single saved Dataset",
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


def _scratch(*extra: str):
    """argv of a tiny CPU fine-tuning run of a model built from the tiny preset (--config_name) plus `extra`."""

    def argv(ctx, tmp_path):
        return ["--config_name", "tiny", "--dataset_name", str(ctx.wav_dir), "--output_dir", str(tmp_path / "out"),
                "--use_cpu", "--report_to", "none", "--max_steps", "1", *extra]  # fmt: skip

    return argv


def _half_written(out: Path, step: int, state: str | None = None) -> Path:
    """A Trainer checkpoint folder cut short by a kill: the model files, no optimizer; `state`: a torn
    trainer_state.json."""
    folder = out / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    if state is not None:
        (folder / "trainer_state.json").write_text(state)
    return folder


def _from_output_dir(args: list[str], model: Path, tmp_path: Path, inside: str | None = None) -> list[str]:
    """`args` with --model_name_or_path pointing at a copy of `model` that is the --output_dir (or, with `inside`,
    that subfolder of it)."""
    out = _copy_of(model, tmp_path / "out" / inside if inside else tmp_path / "out")
    args[args.index("--model_name_or_path") + 1] = str(out)
    return args


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
        "finetune-config-overrides-typo",
        "finetune",
        _finetune("--config_overrides", "hiden_size=32"),
        r"--config_overrides key 'hiden_size' is not a setting of AxLSTMConfig; did you mean 'hidden_size'\?",
    ),
    Cli(
        "finetune-config-overrides-typo-from-scratch",
        "finetune",
        _scratch("--config_overrides", "num_hiden_layers=2"),
        r"--config_overrides key 'num_hiden_layers' is not a setting of AxLSTMConfig; did you mean "
        r"'num_hidden_layers'\?",
    ),
    Cli(
        "finetune-config-overrides-not-a-number",
        "finetune",
        _scratch("--config_overrides", "hidden_size=abc"),
        r"--config_overrides hidden_size='abc': hidden_size='abc' is invalid; expected a positive integer",
    ),
    Cli(
        "finetune-config-overrides-zero-layers",
        "finetune",
        _scratch("--config_overrides", "num_hidden_layers=0"),
        r"--config_overrides num_hidden_layers=0: num_hidden_layers=0 is invalid; expected a positive integer",
    ),
    Cli(
        "finetune-config-overrides-not-key-value",
        "finetune",
        _scratch("--config_overrides", "hidden_size"),
        r"--config_overrides item 'hidden_size' is not key=value",
    ),
    Cli(
        "finetune-fp16-on-a-cpu",
        "finetune",
        _finetune("--fp16"),
        r"--fp16 cannot run on a CPU: the Trainer has no fp16 autocast there and would train in float32",
    ),
    Cli(
        "finetune-output-dir-under-a-file",
        "finetune",
        _under_a_file(_finetune()),
        r"cannot create or write --output_dir '.*a_file/out': Not a directory \(ENOTDIR\)",
    ),
    Cli(
        "finetune-resume-an-incomplete-checkpoint",
        "finetune",
        lambda ctx, tmp: _finetune("--resume_from_checkpoint", str(_half_written(tmp / "out", 3)))(ctx, tmp),
        r"--resume_from_checkpoint '.*checkpoint-3' cannot be resumed: it has no trainer_state\.json",
    ),
    Cli(
        "finetune-resume-latest-only-incomplete-checkpoints",
        "finetune",
        lambda ctx, tmp: (
            _half_written(tmp / "out", 2)
            and _half_written(tmp / "out", 4, state='{"glob')
            and _finetune("--resume_from_checkpoint", "latest")(ctx, tmp)
        ),
        r"no complete checkpoint in '.*out' \(checkpoint-4: its trainer_state\.json is truncated or damaged .*; "
        r"checkpoint-2: it has no trainer_state\.json",
    ),
    Cli(
        "finetune-model-is-the-output-dir",
        "finetune",
        lambda ctx, tmp: _from_output_dir(_finetune("--overwrite_output_dir")(ctx, tmp), ctx.classifier_dir, tmp),
        r"--model_name_or_path '.*out' is the --output_dir: the run would write over the model it starts from",
    ),
    Cli(
        "finetune-metric-for-best-model-unknown",
        "finetune",
        _finetune("--metric_for_best_model", "f1"),
        r"--metric_for_best_model 'f1' is not a metric this script reports; expected one of \['loss', 'accuracy', "
        r"'macro_f1', 'mAP'\]",
    ),
    Cli(
        "finetune-model-inside-the-output-dir-with-overwrite",
        "finetune",
        lambda ctx, tmp: _from_output_dir(
            _finetune("--overwrite_output_dir")(ctx, tmp), ctx.classifier_dir, tmp, "checkpoint-5"
        ),  # fmt: skip
        r"--model_name_or_path '.*out/checkpoint-5' is inside --output_dir, which --overwrite_output_dir would clear",
    ),
    Cli(
        "finetune-dataset-missing",
        "finetune",
        lambda ctx, tmp: _finetune()(ctx, tmp)[:3] + [str(tmp / "nods")] + _finetune()(ctx, tmp)[4:],
        r"^finetune\.py: error: dataset '.*nods' does not exist",
    ),
]

CASES: list = [*PRETRAIN_CASES, *PREPARE_CASES, *FINETUNE_CASES]

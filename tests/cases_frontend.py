# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Bad inputs to the front end: AxLSTMConfig, AxLSTMFeatureExtractor, `hf_axlstm.audio`, `hf_axlstm.hear` and
`examples/evaluate_embeddings.py`."""

from __future__ import annotations

import json
import shutil

import numpy as np

from .badinputs import Api, Cli

SR = 16000
NAN = float("nan")
INF = float("inf")


def _noise(samples: int = 4000, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(samples)).astype(np.float32)


# ------------------------------------------------------------------------------------------------------- config


def _config(**kwargs):
    from hf_axlstm import AxLSTMConfig

    return lambda ctx, tmp: AxLSTMConfig(hidden_size=32, num_hidden_layers=2, **kwargs)


def _edited_json(ctx, tmp, source: str, file: str, **changes):
    """A copy of one of ctx's saved folders with `changes` written into its JSON `file`; returns the folder."""
    folder = tmp / "edited"
    shutil.copytree(getattr(ctx, source), folder)
    path = folder / file
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return folder


def _config_from_invalid_json(ctx, tmp):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(_edited_json(ctx, tmp, "pretrain_dir", "config.json", num_heads="4"))


def _config_override(ctx, tmp):
    from hf_axlstm import AxLSTMConfig

    return AxLSTMConfig.from_pretrained(ctx.pretrain_dir, use_cls_token="no")


CONFIG = [
    Api("config-str-num-heads", _config(num_heads="4"), ValueError, r"num_heads='4' is invalid; expected a positive"),
    Api("config-str-hidden-size", _config(chunk_size="64"), ValueError, r"chunk_size='64' is invalid; .* got a str"),
    Api("config-nan-norm-eps", _config(norm_eps=NAN), ValueError, r"norm_eps=nan is invalid; expected a finite"),
    Api("config-inf-final-norm-eps", _config(final_norm_eps=INF), ValueError, r"final_norm_eps=inf is invalid"),
    Api("config-nan-mlstm-eps", _config(mlstm_eps=NAN), ValueError, r"mlstm_eps=nan is invalid"),
    Api("config-nan-initializer-range", _config(initializer_range=NAN), ValueError, r"initializer_range=nan"),
    Api("config-inf-input-gate-std", _config(input_gate_bias_std=INF), ValueError, r"input_gate_bias_std=inf"),
    Api(
        "config-nan-forget-gate-bias",
        _config(forget_gate_bias_range=(NAN, 6.0)),
        ValueError,
        r"forget_gate_bias_range\[0\]=nan is invalid",
    ),
    Api(
        "config-forget-gate-low-above-high",
        _config(forget_gate_bias_range=(6.0, 3.0)),
        ValueError,
        r"forget_gate_bias_range=\[6.0, 3.0\] is invalid; expected low <= high",
    ),
    Api("config-nan-mask-ratio", _config(mask_ratio=NAN), ValueError, r"mask_ratio=nan is invalid"),
    Api("config-nan-drop-path", _config(drop_path_rate=NAN), ValueError, r"drop_path_rate=nan is invalid"),
    Api(
        "config-fractional-patch-size",
        _config(patch_size=[4.7, 16]),
        ValueError,
        r"patch_size=\[4.7, 16\] is invalid: patch_size\[0\]=4.7 .* not a fractional",
    ),
    Api("config-str-use-cls-token", _config(use_cls_token="yes"), ValueError, r"use_cls_token='yes' is invalid"),
    Api(
        "config-int-alternate-directions",
        _config(alternate_directions=1),
        ValueError,
        r"alternate_directions=1 is invalid; expected True or False",
    ),
    Api("config-invalid-config-json", _config_from_invalid_json, ValueError, r"num_heads='4' is invalid"),
    Api("config-from-pretrained-override", _config_override, ValueError, r"use_cls_token='no' is invalid"),
]


# ----------------------------------------------------------------------------------------------- feature extractor


def _extract(audio_fn, **kwargs):
    def call(ctx, tmp):
        from hf_axlstm import AxLSTMFeatureExtractor

        return AxLSTMFeatureExtractor()(audio_fn(), **kwargs)

    return call


def _extractor(**kwargs):
    def call(ctx, tmp):
        from hf_axlstm import AxLSTMFeatureExtractor

        return AxLSTMFeatureExtractor(**kwargs)

    return call


def _with_nan():
    bad = _noise()
    bad[100] = NAN
    return [_noise(), bad]


def _extractor_from_invalid_json(ctx, tmp):
    from transformers import AutoFeatureExtractor

    folder = _edited_json(ctx, tmp, "classifier_dir", "preprocessor_config.json", f_min=9000.0)
    return AutoFeatureExtractor.from_pretrained(folder)


EXTRACTOR = [
    Api(
        "extractor-huge-samples-nan-log-mel",
        _extract(lambda: [_noise(), np.full(4000, 1e30, np.float32)], sampling_rate=SR),
        ValueError,
        r"Clip 1 of `raw_speech` gives NaN log-mel features: its samples reach \|x\| = 1e\+30",
    ),
    Api("extractor-nan-sample", _extract(_with_nan, sampling_rate=SR), ValueError, r"Clip 1 of `raw_speech` .* NaN"),
    Api(
        "extractor-float64-beyond-float32",
        _extract(lambda: np.full(4000, 1e200), sampling_rate=SR),
        ValueError,
        r"`raw_speech` has samples up to \|x\| = 1e\+200, beyond the float32 range",
    ),
    Api(
        "extractor-sampling-rate-str",
        _extract(_noise, sampling_rate="16000"),
        TypeError,
        r"`sampling_rate` must be a number of Hz, got '16000'",
    ),
    Api(
        "extractor-sampling-rate-mismatch",
        _extract(_noise, sampling_rate=44100),
        ValueError,
        r"`sampling_rate`=44100 does not match the model",
    ),
    Api(
        "extractor-complex-audio",
        _extract(lambda: _noise().astype(np.complex64), sampling_rate=SR),
        TypeError,
        r"`raw_speech` has unsupported dtype complex64",
    ),
    Api(
        "extractor-uint16-audio",
        _extract(lambda: _noise().astype(np.uint16), sampling_rate=SR),
        TypeError,
        r"`raw_speech` has unsupported dtype uint16",
    ),
    Api(
        "extractor-bare-stereo-samples-channels",
        _extract(lambda: np.stack([_noise(), _noise(seed=1)], axis=1), sampling_rate=SR),
        ValueError,
        r"Clip 0 of `raw_speech` has 2 samples.*wrap it in a list",
    ),
    Api(
        "extractor-empty-clip",
        _extract(lambda: [_noise(), np.zeros(0, np.float32)], sampling_rate=SR),
        ValueError,
        r"Clip 1 of `raw_speech` is empty",
    ),
    Api(
        "extractor-path-in-batch",
        _extract(lambda: [_noise(), "clip.wav"], sampling_rate=SR),
        TypeError,
        r"clip 1 of `raw_speech` is a str; file paths .* not supported",
    ),
    Api(
        "extractor-truncation-str",
        _extract(_noise, sampling_rate=SR, truncation="yes", max_length=10),
        TypeError,
        r"`truncation` must be True, False or None, got 'yes'",
    ),
    Api(
        "extractor-max-length-without-effect",
        _extract(_noise, sampling_rate=SR, max_length=10),
        ValueError,
        r"`max_length`=10 has no effect with padding=True",
    ),
    Api(
        "extractor-return-tensors-tf",
        _extract(_noise, sampling_rate=SR, return_tensors="tf"),
        ValueError,
        r"`return_tensors` must be \"pt\", \"np\" or None, got 'tf'",
    ),
    Api(
        "extractor-padding-side",
        _extract(_noise, sampling_rate=SR, padding_side="top"),
        ValueError,
        r"`padding_side` must be \"right\" or \"left\", got 'top'",
    ),
    Api(
        "extractor-device-name",
        _extract(_noise, sampling_rate=SR, device="gpu"),
        ValueError,
        r"`device`='gpu' is not a torch device",
    ),
    Api(
        "extractor-misspelt-kwarg",
        _extract(_noise, sample_rate=SR),
        TypeError,
        r"unexpected keyword argument\(s\) \['sample_rate'\]",
    ),
    Api(
        "extractor-f-min-above-f-max",
        _extractor(f_min=4000.0, f_max=100.0),
        ValueError,
        r"f_min < f_max .* got f_min=4000.0, f_max=100.0",
    ),
    Api(
        "extractor-zero-log-offset", _extractor(log_offset=0.0), ValueError, r"`log_offset` must be a positive .* 0.0"
    ),
    Api("extractor-str-hop-length", _extractor(hop_length="160"), ValueError, r"`hop_length` must be .* got '160'"),
    Api("extractor-nan-padding-value", _extractor(padding_value=NAN), ValueError, r"`padding_value` must be a finite"),
    Api(
        "extractor-invalid-preprocessor-json",
        _extractor_from_invalid_json,
        ValueError,
        r"got f_min=9000.0, f_max=8000.0",
    ),
]


# ------------------------------------------------------------------------------------------------------------ audio


def _audio(name: str, *args, **kwargs):
    def call(ctx, tmp):
        from hf_axlstm import audio

        return getattr(audio, name)(*args, **kwargs)

    return call


AUDIO = [
    Api(
        "audio-resample-fractional-rate",
        _audio("resample", np.zeros(100, np.float32), 44100.5),
        ValueError,
        r"orig_sr=44100.5 is invalid; expected a positive whole number of Hz",
    ),
    Api(
        "audio-resample-2d",
        _audio("resample", np.zeros((2, 100), np.float32), 8000),
        ValueError,
        r"resample takes mono audio of shape \(samples,\), got shape \(2, 100\)",
    ),
    Api(
        "audio-load-missing-file",
        lambda ctx, tmp: _audio("load_audio", tmp / "missing.wav")(ctx, tmp),
        ValueError,
        r"audio file '.*missing.wav' does not exist",
    ),
    Api("audio-load-int", _audio("load_audio", 5), ValueError, r"cannot read audio from 5 \(int\)"),
    Api(
        "audio-decode-bad-sampling-rate",
        _audio("decode_audio_value", {"array": np.zeros(100), "sampling_rate": "x", "path": "a.wav"}),
        ValueError,
        r"audio dict of 'a.wav': sampling_rate='x' is invalid",
    ),
    Api(
        "audio-decode-ragged-array",
        _audio("decode_audio_value", {"array": [[1.0, 2.0], [3.0]], "sampling_rate": SR}),
        ValueError,
        r"audio cannot be read as an array of samples",
    ),
    Api(
        "audio-float64-beyond-float32",
        _audio("to_float32", np.full(10, 1e300)),
        ValueError,
        r"audio has samples up to \|x\| = 1e\+300, beyond the float32 range",
    ),
]


# ------------------------------------------------------------------------------------------------------------- hear


def _hear_embed(audio_fn, timestamps: bool = False):
    def call(ctx, tmp):
        from hf_axlstm import hear

        model = hear.load_model(ctx.model("base"), device="cpu")
        fn = hear.get_timestamp_embeddings if timestamps else hear.get_scene_embeddings
        return fn(audio_fn(), model)

    return call


def _load(path_fn, **kwargs):
    def call(ctx, tmp):
        from hf_axlstm import hear

        return hear.load_model(path_fn(ctx, tmp), **kwargs)

    return call


def _torch_audio(kind: str):
    import torch

    audio = torch.from_numpy(np.stack([_noise(), _noise(seed=1)]))
    if kind == "nan":
        audio[1, 50] = NAN
    elif kind == "huge":
        audio[1] = 1e30
    elif kind == "int":
        audio = (audio * 1000).to(torch.int16)
    elif kind == "1d":
        audio = audio[0]
    return audio


def _no_such_cuda_device():
    import torch

    return f"cuda:{torch.cuda.device_count() + 7}"


HEAR = [
    Api(
        "hear-missing-folder",
        _load(lambda ctx, tmp: str(tmp / "no" / "such" / "model")),
        OSError,
        r"model_path '.*no/such/model' does not exist locally and is not a valid Hub model id",
    ),
    Api(
        "hear-invalid-hub-id",
        _load(lambda ctx, tmp: "a/b/c"),
        OSError,
        r"model_path 'a/b/c' does not exist locally and is not a valid Hub model id",
    ),
    Api(
        "hear-folder-without-config",
        _load(lambda ctx, tmp: tmp),
        OSError,
        r"model_path '.*' is a folder without config.json",
    ),
    Api(
        "hear-invalid-preprocessor-config",
        _load(
            lambda ctx, tmp: _edited_json(ctx, tmp, "pretrain_dir", "preprocessor_config.json", hop_length=0),
            device="cpu",
        ),
        ValueError,
        r"`hop_length` must be a positive integer, got 0",
    ),
    Api(
        "hear-cuda-device-not-there",
        lambda ctx, tmp: _load(lambda c, t: c.model("base"), device=_no_such_cuda_device())(ctx, tmp),
        ValueError,
        r"device='cuda:\d+' (was requested but CUDA is not available|: this machine has)",
    ),
    Api(
        "hear-device-name",
        _load(lambda ctx, tmp: ctx.model("base"), device="gpu"),
        ValueError,
        r"device='gpu' is not a torch device",
    ),
    Api(
        "hear-bad-layout",
        _load(lambda ctx, tmp: ctx.model("base"), layout="freq_major"),
        ValueError,
        r"layout='freq_major' is invalid; expected one of \['time_major', 'official'\]",
    ),
    Api(
        "hear-bad-mode",
        _load(lambda ctx, tmp: ctx.model("base"), mode="chunks"),
        ValueError,
        r"mode='chunks' is invalid; expected one of \['windows', 'whole'\]",
    ),
    Api(
        "hear-audio-1d",
        _hear_embed(lambda: _torch_audio("1d")),
        ValueError,
        r"audio has shape \(4000,\); the HEAR API takes \(n_sounds, n_samples\)",
    ),
    Api(
        "hear-audio-int16",
        _hear_embed(lambda: _torch_audio("int"), timestamps=True),
        TypeError,
        r"audio must be a float tensor, got torch.int16",
    ),
    Api("hear-audio-nan", _hear_embed(lambda: _torch_audio("nan")), ValueError, r"audio\[1\] has NaN samples"),
    Api(
        "hear-audio-huge",
        _hear_embed(lambda: _torch_audio("huge"), timestamps=True),
        ValueError,
        r"audio\[1\] gives non-finite log-mel features: its samples reach \|x\| = 1e\+30",
    ),
    Api(
        "hear-audio-numpy",
        _hear_embed(lambda: _noise()[None]),
        TypeError,
        r"audio must be a torch.Tensor .* got ndarray",
    ),
]


# ----------------------------------------------------------------------------------------------- evaluate_embeddings


def _task(tmp, **spec) -> str:
    path = tmp / "task.json"
    path.write_text(json.dumps(spec))
    return str(path)


def _eval(task_fn=None, models=("logmel=logmel",), extra=()):
    def argv(ctx, tmp):
        task = task_fn(ctx, tmp) if task_fn else _task(tmp, data=str(ctx.wav_dir))
        model_flags = [flag for m in models for flag in ("--model", m.format(ctx=ctx, tmp=tmp))]
        return ["--task", task, *model_flags, "--output_dir", str(tmp / "out"), *extra]

    return argv


def _nan_clip_task(ctx, tmp):
    import soundfile as sf

    rows = ["path,label"]
    for i in range(6):
        wave = _noise(4000, seed=i)
        if i == 4:
            wave[10] = NAN
        sf.write(tmp / f"{i}.wav", wave, SR, subtype="FLOAT")
        rows.append(f"{tmp / f'{i}.wav'},{'ab'[i % 2]}")
    (tmp / "clips.csv").write_text("\n".join(rows) + "\n")
    spec = {"data": str(tmp / "clips.csv"), "audio_column": "path", "validation_fraction": 0.2, "test_fraction": 0.2}
    return _task(tmp, **spec)


def _output_is_a_file(ctx, tmp):
    (tmp / "out").write_text("not a folder")
    return _task(tmp, data=str(ctx.wav_dir))


EVALUATE = [
    Cli(
        "evaluate-missing-model-folder",
        "evaluate_embeddings",
        _eval(models=("m={tmp}/no/such/model",)),
        r"--model spec '.*no/such/model': '.*' does not exist locally and is not a valid Hub model id",
    ),
    Cli(
        "evaluate-random-without-source",
        "evaluate_embeddings",
        _eval(models=("r=random:",)),
        r"--model spec 'random:' needs a source",
    ),
    Cli(
        "evaluate-model-name-with-slash",
        "evaluate_embeddings",
        _eval(models=("a/b=logmel",)),
        r"--model name 'a/b' is invalid: it names a cache folder",
    ),
    Cli(
        "evaluate-cuda-device-not-there",
        "evaluate_embeddings",
        lambda ctx, tmp: _eval(extra=("--device", _no_such_cuda_device()))(ctx, tmp),
        r"--device: device='cuda:\d+' (was requested but CUDA is not available|: this machine has)",
    ),
    Cli("evaluate-device-name", "evaluate_embeddings", _eval(extra=("--device", "gpu")), r"device='gpu' is not"),
    Cli("evaluate-lr-zero", "evaluate_embeddings", _eval(extra=("--lr", "0")), r"--lr 0.0 is invalid"),
    Cli("evaluate-lr-nan", "evaluate_embeddings", _eval(extra=("--lr", "nan")), r"--lr nan is invalid"),
    Cli(
        "evaluate-batch-size-one",
        "evaluate_embeddings",
        _eval(extra=("--batch_size", "1")),
        r"--batch_size 1 is invalid; expected an integer >= 2",
    ),
    Cli("evaluate-max-epochs-zero", "evaluate_embeddings", _eval(extra=("--max_epochs", "0")), r"--max_epochs 0 is"),
    Cli("evaluate-patience-zero", "evaluate_embeddings", _eval(extra=("--patience", "0")), r"--patience 0 is invalid"),
    Cli(
        "evaluate-embed-batch-size-zero",
        "evaluate_embeddings",
        _eval(extra=("--embed_batch_size", "0")),
        r"--embed_batch_size 0 is invalid",
    ),
    Cli("evaluate-dropout-one", "evaluate_embeddings", _eval(extra=("--dropout", "1")), r"--dropout 1.0 is invalid"),
    Cli(
        "evaluate-negative-seed",
        "evaluate_embeddings",
        _eval(extra=("--seeds", "0", "-3")),
        r"--seeds -3 is out of range",
    ),
    Cli(
        "evaluate-repeated-seed",
        "evaluate_embeddings",
        _eval(extra=("--seeds", "1", "1")),
        r"--seeds \[1, 1\] repeats a seed",
    ),
    Cli("evaluate-seed-not-int", "evaluate_embeddings", _eval(extra=("--seeds", "x")), r"--seeds: invalid int value"),
    Cli(
        "evaluate-output-dir-is-a-file",
        "evaluate_embeddings",
        _eval(task_fn=_output_is_a_file),
        r"--output_dir '.*out' exists and is not a directory",
    ),
    Cli(
        "evaluate-task-missing",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: str(tmp / "missing.json")),
        r"task spec '.*missing.json' does not exist",
    ),
    Cli(
        "evaluate-task-not-an-object",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: (tmp / "t.json").write_text("[1, 2]") and str(tmp / "t.json")),
        r"task spec '.*t.json' must be a JSON object, got a list",
    ),
    Cli(
        "evaluate-task-fraction-out-of-range",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: _task(tmp, data=str(ctx.wav_dir), validation_fraction=1.5)),
        r"'validation_fraction' = 1.5 is invalid; expected a number strictly between 0 and 1",
    ),
    Cli(
        "evaluate-task-fractions-leave-nothing",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: _task(tmp, data="x", validation_fraction=0.5, test_fraction=0.5)),
        r"validation_fraction \+ test_fraction must be below 1",
    ),
    Cli(
        "evaluate-task-max-seconds-negative",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: _task(tmp, data=str(ctx.wav_dir), max_seconds=-2)),
        r"'max_seconds' = -2 is invalid; expected a positive number of seconds",
    ),
    Cli(
        "evaluate-task-multi-label-str",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: _task(tmp, data=str(ctx.wav_dir), multi_label="yes")),
        r"'multi_label' = 'yes' is invalid; expected true, false or null",
    ),
    Cli(
        "evaluate-task-name-with-slash",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: _task(tmp, data=str(ctx.wav_dir), name="../x")),
        r"'name' = '../x' is invalid; expected a non-empty name without path separators",
    ),
    Cli(
        "evaluate-task-split-seed-str",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: _task(tmp, data=str(ctx.wav_dir), split_seed="0")),
        r"'split_seed' = '0' is invalid; expected a non-negative integer",
    ),
    Cli(
        "evaluate-task-unknown-split",
        "evaluate_embeddings",
        _eval(task_fn=lambda ctx, tmp: _task(tmp, data=str(ctx.wav_dir), splits={"dev": "validation"})),
        r"'splits' has unknown splits \['dev'\]",
    ),
    Cli(
        "evaluate-task-train-split-too-small",
        "evaluate_embeddings",
        _eval(),  # the corpus has one train clip per class: after carving a validation split, one is left
        r"task 'task': the train split has 1 clip; need at least 2",
    ),
    Cli(
        "evaluate-nan-audio-clip",
        "evaluate_embeddings",
        _eval(task_fn=_nan_clip_task),
        r"audio '.*4.wav' has NaN or Inf samples",
    ),
]

CASES: list = [*CONFIG, *EXTRACTOR, *AUDIO, *HEAR, *EVALUATE]

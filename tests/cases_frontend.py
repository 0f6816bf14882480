# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Bad inputs to the front end: AxLSTMConfig / SSASTConfig, AxLSTMFeatureExtractor, `hf_axlstm.audio`,
`hf_axlstm.data`, the audio-classification pipeline, `hf_axlstm.hear` and `examples/evaluate_embeddings.py`.

Integer audio is not a bad input for the extractor: int8, uint8, int16 and int32 PCM are scaled to [-1, 1) (tested in
tests/test_feature_extraction_axlstm.py); only other integer dtypes (uint16, int64, ...) are refused below. The HEAR
API (`hf_axlstm.hear`) takes float tensors only, as the HEAR specification says."""

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

    return lambda ctx, tmp: AxLSTMConfig(**{"hidden_size": 32, "num_hidden_layers": 2, **kwargs})


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


def _ssast_config(**kwargs):
    from hf_axlstm import SSASTConfig

    return lambda ctx, tmp: SSASTConfig(
        **{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, **kwargs}
    )


def _config_json(**changes):
    def call(ctx, tmp):
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(_edited_json(ctx, tmp, "classifier_dir", "config.json", **changes))

    return call


def _pipeline(inputs_fn, folder_fn=None, **call_kwargs):
    def call(ctx, tmp):
        from transformers import pipeline

        folder = folder_fn(ctx, tmp) if folder_fn else ctx.classifier_dir
        return pipeline("audio-classification", model=str(folder))(inputs_fn(tmp), **call_kwargs)

    return call


def _truncated_wav(tmp, name: str = "cut.wav"):
    import soundfile as sf

    path = tmp / name
    sf.write(path, _noise(16000), SR, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:60])  # the header and 8 samples of 16000
    return path


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
    Api(
        "config-hidden-size-huge",
        _config(hidden_size=2**16),
        ValueError,
        r"hidden_size=65536 is too large; expected at most 4096",
    ),
    Api(
        "config-json-frames-per-window-huge",
        _config_json(frames_per_window=1e8),
        ValueError,
        r"frames_per_window=100000000.0 is too large; expected at most 6000",
    ),
    Api("config-layers-huge", _config(num_hidden_layers=10**6), ValueError, r"num_hidden_layers=1000000 is too large"),
    Api("config-chunk-size-huge", _config(chunk_size=2**20), ValueError, r"chunk_size=1048576 is too large"),
    Api("config-conv-kernel-huge", _config(conv_kernel_size=10**5), ValueError, r"conv_kernel_size=100000 is too"),
    Api("config-expansion-huge", _config(expansion_factor=1000), ValueError, r"expansion_factor=1000 is too large"),
    Api("config-mel-bins-huge", _config(num_mel_bins=16 * 10**4), ValueError, r"num_mel_bins=160000 is too large"),
    Api(
        "config-patch-size-huge",
        _config(patch_size=[4, 10**6]),
        ValueError,
        r"patch_size\[1\]=1000000 is too large; expected at most 1024",
    ),
    Api("config-num-labels-huge", _config(num_labels=10**9), ValueError, r"num_labels=1000000000 is too large"),
    Api("config-num-labels-zero", _config(num_labels=0), ValueError, r"num_labels=0 is invalid; expected a positive"),
    Api(
        "config-id2label-gap",
        _config(id2label={0: "a", 5: "b"}),
        ValueError,
        r"id2label has the keys \[0, 5\]; expected the class indices 0..1",
    ),
    Api(
        "config-json-id2label-gap",
        _config_json(id2label={"0": "tone", "5": "noise"}, label2id={"tone": 0, "noise": 5}),
        ValueError,
        r"id2label has the keys \[0, 5\]; expected the class indices 0..1",
    ),
    Api(
        "config-id2label-name-key",
        _config(id2label={"dog": "dog", "cat": "cat"}),
        ValueError,
        r"id2label has the key 'dog'; expected class indices",
    ),
    Api(
        "config-id2label-duplicate-index",
        _config(id2label={0: "a", "0": "b"}),
        ValueError,
        r"id2label has the keys \[0, 0\]; expected the class indices 0..1, each once",
    ),
    Api("ssast-config-hidden-size-huge", _ssast_config(hidden_size=2**16), ValueError, r"hidden_size=65536 is too"),
    Api("ssast-config-mlp-ratio-huge", _ssast_config(mlp_ratio=1000), ValueError, r"mlp_ratio=1000 is too large"),
    Api(
        "ssast-config-heads-huge",
        _ssast_config(num_attention_heads=2**12),
        ValueError,
        r"num_attention_heads=4096 is too large",
    ),
    Api(
        "ssast-config-frames-per-window-huge",
        _ssast_config(frames_per_window=10**8),
        ValueError,
        r"frames_per_window=100000000 is too large",
    ),
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


def _extractor_from_json(ctx, tmp, **changes):
    from transformers import AutoFeatureExtractor

    return AutoFeatureExtractor.from_pretrained(
        _edited_json(ctx, tmp, "classifier_dir", "preprocessor_config.json", **changes)
    )


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
        _extract(_noise, sampling_rate=SR, max_length=32000),
        ValueError,
        r"`max_length`=32000 has no effect with padding=True",
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
    Api(
        "extractor-int64-audio",
        _extract(lambda: (_noise() * 1000).astype(np.int64), sampling_rate=SR),
        TypeError,
        r"`raw_speech` has unsupported dtype int64: pass float audio, or integer PCM as int16, int32, int8 or uint8",
    ),
    Api(
        "extractor-crafted-n-fft-json",
        lambda ctx, tmp: _extractor_from_json(ctx, tmp, n_fft=2**22, win_length=400),
        ValueError,
        r"`n_fft`=4194304 is too large: at most 32768",
    ),
    Api("extractor-feature-size-huge", _extractor(feature_size=10**7), ValueError, r"`feature_size`=10000000 is too"),
    Api("extractor-hop-length-huge", _extractor(hop_length=10**6), ValueError, r"`hop_length`=1000000 is too large"),
    Api(
        "extractor-sampling-rate-huge",
        _extractor(sampling_rate=10**9),
        ValueError,
        r"`sampling_rate`=1000000000 is too large: at most 768000",
    ),
    Api(
        "extractor-max-length-huge",
        _extract(_noise, sampling_rate=SR, padding="max_length", max_length=10**10),
        ValueError,
        r"`max_length`=10000000000 samples is too large: at most 57600000",
    ),
    Api(
        "extractor-max-frames-huge",
        _extract(_noise, sampling_rate=SR, padding="max_length", max_frames=10**9),
        ValueError,
        r"`max_frames`=1000000000 is too large: at most 360001 frames",
    ),
    Api(
        "extractor-pad-to-multiple-huge",
        _extract(_noise, sampling_rate=SR, pad_to_multiple_of=10**9),
        ValueError,
        r"`pad_to_multiple_of`=1000000000 is too large",
    ),
    Api(
        "extractor-max-length-given-in-frames",
        _extract(_noise, sampling_rate=SR, padding="max_length", max_length=200),
        ValueError,
        r"`max_length`=200 counts samples of raw audio, .* pass `max_frames=200` instead",
    ),
    Api(
        "extractor-max-length-and-max-frames",
        _extract(_noise, sampling_rate=SR, truncation=True, max_length=32000, max_frames=200),
        ValueError,
        r"Pass either `max_length` \(samples\) or `max_frames` \(frames\), not both",
    ),
    Api(
        "extractor-max-frames-str",
        _extract(_noise, sampling_rate=SR, truncation=True, max_frames="200"),
        ValueError,
        r"`max_frames` must be a positive integer \(a number of frames\), got '200'",
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
    Api(
        "audio-truncated-wav",
        lambda ctx, tmp: _audio("load_audio", _truncated_wav(tmp))(ctx, tmp),
        ValueError,
        r"audio file '.*cut.wav' is truncated: its WAV header declares 16000 frames but the file holds only 8",
    ),
    Api(
        "audio-truncated-wav-bytes",
        lambda ctx, tmp: _audio("decode_audio_value", {"path": "a.wav", "bytes": _truncated_wav(tmp).read_bytes()})(
            ctx, tmp
        ),
        ValueError,
        r"cannot decode audio bytes of 'a.wav': .* is truncated",
    ),
    Api(
        "data-truncated-wav-in-split",
        lambda ctx, tmp: _check_files([str(_truncated_wav(tmp))]),
        ValueError,
        r"audio file '.*cut.wav' is truncated: .* \(split 'train'\)",
    ),
    Api(
        "data-find-files-extension-str-empty",
        lambda ctx, tmp: _audio("find_audio_files", tmp, extensions=("",))(ctx, tmp),
        ValueError,
        r"extensions=\(''(,)?\) is invalid",
    ),
]


def _check_files(paths):
    import datasets

    from hf_axlstm.data import check_audio_files

    return check_audio_files(datasets.Dataset.from_dict({"audio": paths}), "audio", "train")


def _gap_labels(ctx, tmp):
    folder = tmp / "gap"
    shutil.copytree(ctx.classifier_dir, folder)
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["id2label"] = {"0": "tone", "5": "noise"}
    config.pop("label2id", None)
    path.write_text(json.dumps(config))
    return folder


PIPELINE = [
    Api(
        "pipeline-missing-file",
        _pipeline(lambda tmp: str(tmp / "missing.wav")),
        ValueError,
        r"audio file '.*missing.wav' does not exist",
    ),
    Api(
        "pipeline-undecodable-bytes",
        _pipeline(lambda tmp: b"RIFF not really a wav"),
        ValueError,
        r"cannot read audio file '<in-memory audio bytes>'",
    ),
    Api(
        "pipeline-truncated-wav",
        _pipeline(lambda tmp: str(_truncated_wav(tmp))),
        ValueError,
        r"audio file '.*cut.wav' is truncated",
    ),
    Api(
        "pipeline-dict-without-rate",
        _pipeline(lambda tmp: {"raw": _noise()}),
        ValueError,
        r"needs a 'sampling_rate' beside its 'raw' / 'array' samples",
    ),
    Api(
        "pipeline-dict-without-samples",
        _pipeline(lambda tmp: {"sampling_rate": SR}),
        ValueError,
        r"needs 'raw' or 'array' with 'sampling_rate' .* got the keys \['sampling_rate'\]",
    ),
    Api(
        "pipeline-dict-rate-str",
        _pipeline(lambda tmp: {"raw": _noise(), "sampling_rate": "44.1k"}),
        ValueError,
        r"sampling_rate='44.1k' is invalid; expected a positive whole number of Hz",
    ),
    Api(
        "pipeline-array-rate-fractional",
        _pipeline(lambda tmp: _noise(), sampling_rate=44100.5),
        ValueError,
        r"sampling_rate=44100.5 is invalid; expected a positive whole number of Hz",
    ),
    Api(
        "pipeline-unsupported-input",
        _pipeline(lambda tmp: 3.5),
        ValueError,
        r"cannot classify an input of type float",
    ),
    Api(
        "pipeline-rate-huge",
        _pipeline(lambda tmp: {"raw": _noise(), "sampling_rate": 10**9}),
        ValueError,
        r"sampling_rate=1000000000 is invalid; expected at most 768000 Hz",
    ),
    Api(
        "pipeline-rate-tiny-would-explode",
        _pipeline(lambda tmp: np.zeros(10**7, np.float32), sampling_rate=1),
        ValueError,
        r"resampling 10000000 samples from 1 Hz to 16000 Hz would give 160000000000 samples, more than 12 hours",
    ),
    Api(
        "pipeline-rate-with-a-file",
        _pipeline(lambda tmp: str(tmp / "a.wav"), sampling_rate=44100),
        ValueError,
        r"sampling_rate=44100 applies to a bare numpy array or tensor of samples; a str carries its own rate",
    ),
    Api("pipeline-top-k-zero", _pipeline(lambda tmp: _noise(), top_k=0), ValueError, r"top_k=0 is invalid"),
    Api("pipeline-top-k-str", _pipeline(lambda tmp: _noise(), top_k="2"), ValueError, r"top_k='2' is invalid"),
    Api(
        "pipeline-id2label-gap",
        _pipeline(lambda tmp: _noise(), folder_fn=_gap_labels),
        ValueError,
        r"id2label has the keys \[0, 5\]; expected the class indices 0..1",
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
        "hear-window-batch-size-before-download",
        _load(lambda ctx, tmp: "some-user/not-downloaded", window_batch_size=0),
        ValueError,
        r"window_batch_size=0 is invalid; expected a positive integer",
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

CASES: list = [*CONFIG, *EXTRACTOR, *AUDIO, *PIPELINE, *HEAR, *EVALUATE]

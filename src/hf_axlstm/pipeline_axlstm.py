# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""`pipeline("audio-classification")` for AxLSTM and SSAST models without ffmpeg, torchaudio or torchcodec.

transformers' `AudioClassificationPipeline` decodes file paths and bytes with the `ffmpeg` binary and resamples with
torchaudio. [`AxLSTMAudioClassificationPipeline`] decodes with soundfile (WAV, FLAC, OGG/Vorbis, MP3, ...), averages
channels to mono and resamples with `hf_axlstm.audio` (a polyphase FIR filter), then hands the waveform to the stock
pipeline, which runs the feature extractor, the model and the post-processing unchanged.

How it is chosen:
- with hf_axlstm installed: `import hf_axlstm` calls [`register_pipeline`], which points the task
  `"audio-classification"` of transformers' pipeline registry at [`AudioClassificationPipelineSelector`]. The selector
  builds this pipeline for a model whose `config.model_type` is `"axlstm"` or `"ssast"` and transformers' own
  `AudioClassificationPipeline` for every other model, so no other model's behaviour changes.
  `pipeline("audio-classification", model=folder)` then needs no extra argument (`pipeline_class=
  AxLSTMAudioClassificationPipeline` names it explicitly, e.g. for a model object of another class).
- as Hub remote code: `classify.save_pretrained(folder)` / `classify.push_to_hub(repo)` (transformers' way to share a
  custom pipeline) writes `custom_pipelines` into `config.json` and copies this file, `audio.py` and the waveform rules
  `audio_rules_axlstm.py` (self-contained: numpy, torch, transformers; soundfile and scipy imported when needed), so `pipeline("audio-classification", model=repo,
  trust_remote_code=True)` runs this class without hf_axlstm. Where hf_axlstm is imported, the configs hide that entry
  (the registry above serves the task), so such a folder loads without `trust_remote_code`.
"""

from __future__ import annotations

import io
import numbers
import os
import sys
from typing import Any

import numpy as np
from transformers import AudioClassificationPipeline, AutoModelForAudioClassification

from .audio import AudioDecodeError, decode_audio_value, load_audio, prepare_waveform, to_float32, to_mono

MODEL_TYPES = ("axlstm", "ssast")
TASK = "audio-classification"

__all__ = [
    "AudioClassificationPipelineSelector",
    "AxLSTMAudioClassificationPipeline",
    "decode_pipeline_input",
    "register_pipeline",
]


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _fetch(url: str) -> bytes:
    """The bytes behind an http(s) URL (as transformers' pipeline fetches them)."""
    from huggingface_hub.utils import httpx

    return httpx.get(url, follow_redirects=True).content


def decode_pipeline_input(inputs: Any, sampling_rate: int, input_sampling_rate: int | None = None) -> np.ndarray:
    """Any input `pipeline("audio-classification")` accepts -> mono float32 samples at `sampling_rate`, with soundfile
    and `hf_axlstm.audio` only (no ffmpeg, torchaudio or torchcodec).

    Args:
        inputs: one of
            - a file path (`str` or `os.PathLike`; an `http(s)://` URL is fetched first) or the encoded file as
              `bytes`: decoded with soundfile at the file's own rate;
            - a dict with `"raw"` or `"array"` and `"sampling_rate"` (the pipeline's and `datasets`' forms), or an
              undecoded `datasets` value `{"path", "bytes"}` (`Audio(decode=False)`);
            - a numpy array or torch tensor of samples, at `input_sampling_rate` (default: `sampling_rate`); 1-D is
              mono, 2-D is one multi-channel clip (the shorter axis holds the channels);
            - a torchcodec `AudioDecoder` (what `datasets` yields where torchcodec works).
            Integer PCM (int8, uint8, int16, int32) is scaled to [-1, 1).
        sampling_rate: the rate the feature extractor expects (Hz).
        input_sampling_rate: the rate of a bare array or tensor, when it is not `sampling_rate`.

    Returns:
        `np.ndarray` of shape `(samples,)`, float32, at `sampling_rate`.

    Raises:
        `hf_axlstm.audio.AudioDecodeError` (a `ValueError`) naming the file or value that cannot be decoded.
    """
    if isinstance(inputs, os.PathLike):
        inputs = os.fspath(inputs)
    if isinstance(inputs, str):
        if inputs.startswith(("http://", "https://")):
            inputs = _fetch(inputs)
        else:
            return load_audio(inputs, sampling_rate)
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        return load_audio(io.BytesIO(bytes(inputs)), sampling_rate)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().cpu().numpy()
    if isinstance(inputs, dict):
        if "raw" in inputs or "array" in inputs:
            if "sampling_rate" not in inputs:
                raise AudioDecodeError(
                    "a dict given to the audio-classification pipeline needs a 'sampling_rate' beside its "
                    f"'raw' / 'array' samples; got the keys {sorted(inputs)}."
                )
            array = inputs["raw"] if inputs.get("raw") is not None else inputs.get("array")
            if torch is not None and isinstance(array, torch.Tensor):
                array = array.detach().cpu().numpy()
            return decode_audio_value({"array": array, "sampling_rate": inputs["sampling_rate"]}, sampling_rate)
        if inputs.get("bytes") is not None or inputs.get("path"):
            return decode_audio_value(inputs, sampling_rate)
        raise AudioDecodeError(
            "a dict given to the audio-classification pipeline needs 'raw' or 'array' with 'sampling_rate' (or "
            f"'path' / 'bytes' of an encoded file); got the keys {sorted(inputs)}."
        )
    if hasattr(inputs, "get_all_samples"):  # torchcodec.decoders.AudioDecoder
        return decode_audio_value(inputs, sampling_rate)
    if isinstance(inputs, (np.ndarray, list)):
        if input_sampling_rate is None or input_sampling_rate == sampling_rate:
            return to_mono(to_float32(np.asarray(inputs))).astype(np.float32, copy=False)
        return prepare_waveform(np.asarray(inputs), input_sampling_rate, sampling_rate)
    raise AudioDecodeError(
        f"cannot classify an input of type {type(inputs).__name__}; expected a file path, the file's bytes, a dict "
        "with 'raw' / 'array' and 'sampling_rate', or a numpy array / torch tensor of samples."
    )


class AxLSTMAudioClassificationPipeline(AudioClassificationPipeline):
    """transformers' audio-classification pipeline, decoding with soundfile and resampling with `hf_axlstm.audio`
    (see [`decode_pipeline_input`] for the inputs it takes); no ffmpeg, torchaudio or torchcodec.

    A call also takes `sampling_rate=`, the rate of a bare numpy array or tensor (resampled to the feature
    extractor's): `classify(samples, sampling_rate=44100)`.
    """

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, sampling_rate=None, **kwargs):
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
            raise ValueError(f"top_k={top_k!r} is invalid; expected a positive integer (or None for every label).")
        preprocess, forward, postprocess = super()._sanitize_parameters(
            top_k=top_k, function_to_apply=function_to_apply, **kwargs
        )
        if sampling_rate is not None:
            preprocess["sampling_rate"] = sampling_rate
        return preprocess, forward, postprocess

    def preprocess(self, inputs, sampling_rate=None):
        if sampling_rate is not None and not isinstance(inputs, (np.ndarray, list)) and not _is_tensor(inputs):
            raise ValueError(
                f"sampling_rate={sampling_rate!r} applies to a bare numpy array or tensor of samples; a "
                f"{type(inputs).__name__} carries its own rate (a file's header, a dict's 'sampling_rate')."
            )
        target = self.feature_extractor.sampling_rate
        wave = decode_pipeline_input(inputs, target, input_sampling_rate=sampling_rate)
        return super().preprocess(np.ascontiguousarray(wave, dtype=np.float32))


# What transformers' `Pipeline.save_pretrained` / `push_to_hub` reads to share a custom pipeline: it writes
# `custom_pipelines` into the folder's config.json and copies this file, `audio.py` and `audio_rules_axlstm.py` next to it, so that
# `pipeline("audio-classification", model=<that folder or Hub repo>, trust_remote_code=True)` runs this class where
# hf_axlstm is not installed.
AxLSTMAudioClassificationPipeline._registered_impl = {
    TASK: {"impl": AxLSTMAudioClassificationPipeline, "pt": (AutoModelForAudioClassification,), "type": "audio"}
}


class AudioClassificationPipelineSelector(AudioClassificationPipeline):
    """What `import hf_axlstm` registers for the task `"audio-classification"`: building it gives an
    [`AxLSTMAudioClassificationPipeline`] for AxLSTM and SSAST models and transformers' `AudioClassificationPipeline`
    for any other model (never an instance of this class)."""

    def __new__(cls, *args, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        chosen = AxLSTMAudioClassificationPipeline if model_type in MODEL_TYPES else AudioClassificationPipeline
        return chosen(*args, **kwargs)


def register_pipeline() -> None:
    """Point the `"audio-classification"` task of transformers' pipeline registry at
    [`AudioClassificationPipelineSelector`] (its models, defaults and type are kept). Idempotent; called by
    `import hf_axlstm`."""
    from transformers.pipelines import PIPELINE_REGISTRY

    entry = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if entry is None:  # pragma: no cover - the task exists in every transformers 5 release
        PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=AudioClassificationPipelineSelector)
        return
    if entry.get("impl") is not AudioClassificationPipelineSelector:
        PIPELINE_REGISTRY.supported_tasks[TASK] = {**entry, "impl": AudioClassificationPipelineSelector}

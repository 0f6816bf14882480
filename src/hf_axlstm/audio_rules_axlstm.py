# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""The waveform rules of every audio entry point, in one place: the feature extractor, `hf_axlstm.audio` (files,
`datasets` values, resampling), the HEAR API and `pipeline("audio-classification")`.

- Float samples are used as they are (cast to float32; finite float64 samples beyond float32's range are refused).
- Integer PCM is rescaled to [-1, 1): int16 / 32768, int32 / 2**31, int8 / 128, uint8 (x - 128) / 128; any other
  dtype is refused.
- Multi-channel audio is averaged to mono; the shorter axis of a 2-D clip holds the channels (`(samples, channels)`
  from soundfile, `(channels, samples)` from torch; a square clip counts channels first).
- Sampling rates are positive whole numbers of Hz, at most `MAX_SAMPLING_RATE`.

Self-contained (numpy, torch and the standard library), so that it ships as Hub remote code next to the extractor
and the pipeline.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

# The highest sampling rate in use (768 kHz): a sanity bound against values that would make a resampler or a filter
# bank allocate gigabytes.
MAX_SAMPLING_RATE = 768000
# Integer PCM dtypes (by name, numpy's and torch's alike) -> (offset, scale): float = (x - offset) / scale.
PCM_SCALES = {"int8": (0.0, 128.0), "uint8": (128.0, 128.0), "int16": (0.0, 32768.0), "int32": (0.0, 2.0**31)}

RESAMPLE_HINT = (
    "Resample the audio first: with hf-axlstm installed, `hf_axlstm.audio.resample(audio, orig_sr, {rate})` (or "
    "`hf_axlstm.audio.load_audio(path, {rate})` for a file); otherwise `scipy.signal.resample_poly(audio, up, down)` "
    "with up/down = {rate}/orig_sr reduced by their gcd. For a `datasets` dataset, keep the column undecoded with "
    '`dataset.cast_column("audio", Audio(decode=False))` and decode each value with '
    "`hf_axlstm.audio.decode_audio_value(value, {rate})` (soundfile; `Audio(sampling_rate={rate})` decodes through "
    'torchcodec, which needs FFmpeg\'s libraries). `pipeline("audio-classification")` resamples by itself after '
    "`import hf_axlstm`."
)


def check_rate(name: str, value: Any, error: type[Exception] = ValueError) -> int:
    """A sampling rate: a positive whole number of Hz, at most `MAX_SAMPLING_RATE` (an integral float such as
    44100.0 is taken as 44100); raises `error` naming `name` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise error(f"{name}={value!r} is invalid; expected a positive whole number of Hz.")
    if not math.isfinite(value) or value <= 0 or not float(value).is_integer():
        raise error(f"{name}={value!r} is invalid; expected a positive whole number of Hz.")
    if value > MAX_SAMPLING_RATE:
        raise error(f"{name}={value!r} is invalid; expected at most {MAX_SAMPLING_RATE} Hz.")
    return int(value)


def _check_float32_range(converted, source, where: str, error: type[Exception]) -> None:
    """Finite samples beyond float32's range became Inf on the cast: say so (not "contains Inf")."""
    lib = torch if isinstance(converted, torch.Tensor) else np
    if bool(lib.isfinite(converted).all()):
        return
    original = source if isinstance(source, (np.ndarray, torch.Tensor)) else np.asarray(source, dtype=np.float64)
    lib = torch if isinstance(original, torch.Tensor) else np
    if bool(lib.isfinite(original).all()):
        raise error(
            f"{where} has samples up to |x| = {float(lib.abs(original).max()):.3g}, beyond the float32 range; audio "
            "samples are expected in [-1, 1] (float) or as integer PCM."
        )


def to_float32(value: Any, where: str = "audio", error: type[Exception] = TypeError) -> np.ndarray | torch.Tensor:
    """Samples -> float32 by the rules above: a torch tensor stays a (detached) tensor on its device, a numpy array or
    a (nested) list of numbers becomes a numpy array. Any shape. A wrong dtype or type raises `error` (a range or list
    problem `ValueError`, or `error` where that is a `ValueError`), naming `where`."""
    value_error = error if issubclass(error, ValueError) else ValueError
    unsupported = (
        f"{where} has unsupported dtype {getattr(value, 'dtype', None)}: pass float audio, or integer PCM as int16, "
        "int32, int8 or uint8."
    )
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            raise value_error(f"{where} is a tensor on the meta device: it holds no samples.")
        if value.is_floating_point():
            tensor = value.detach().to(torch.float32)
            if value.dtype == torch.float64:
                _check_float32_range(tensor, value, where, value_error)
            return tensor
        pcm = PCM_SCALES.get(str(value.dtype).removeprefix("torch."))
        if pcm is None:
            raise error(unsupported)
        return (value.detach().to(torch.float32) - pcm[0]) / pcm[1]
    if isinstance(value, (list, tuple)):
        try:
            with np.errstate(over="ignore"):
                array = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise value_error(
                f"{where} could not be converted to a float array of samples ({err}); a list clip must hold "
                "numbers (one mono clip) or equal-length lists (one multi-channel clip)."
            ) from None
        _check_float32_range(array, value, where, value_error)
        return array
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            with np.errstate(over="ignore"):
                array = np.ascontiguousarray(value, dtype=np.float32)
            if value.dtype.itemsize > 4:
                _check_float32_range(array, value, where, value_error)
            # A read-only buffer (e.g. decoded by ffmpeg) is copied: torch warns on wrapping read-only memory.
            return array if array.flags.writeable else array.copy()
        pcm = PCM_SCALES.get(value.dtype.newbyteorder("=").name) if value.dtype.kind in "iu" else None
        if pcm is None:
            raise error(unsupported)
        return (np.ascontiguousarray(value, dtype=np.float32) - pcm[0]) / pcm[1]
    if isinstance(value, str | bytes | bytearray):
        raise error(
            f"{where} is a {type(value).__name__}; file paths and encoded bytes are not supported: decode the "
            "audio first (e.g. `soundfile.read(path)`) and pass the samples."
        )
    if isinstance(value, dict):
        raise error(f"{where} is a dict; pass the samples (e.g. `example['audio']['array']`) and its `sampling_rate`.")
    raise error(
        f"{where} has unsupported type {type(value).__name__}: expected a numpy array, a torch tensor or a list "
        "of floats."
    )


def channel_axis(shape: tuple[int, ...]) -> int:
    """The channel axis of a 2-D clip: the shorter one (the first of a square clip)."""
    return 0 if shape[0] <= shape[1] else 1


def to_mono(samples: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """A 1-D clip as it is; a 2-D clip averaged over its channel axis (see `channel_axis`)."""
    if samples.ndim == 1:
        return samples
    axis = channel_axis(tuple(samples.shape))
    return samples.mean(dim=axis) if isinstance(samples, torch.Tensor) else samples.mean(axis=axis)


def first_non_finite(batch: torch.Tensor) -> tuple[int, str] | None:
    """`(index, "NaN" or "Inf")` of the first entry along dim 0 holding a non-finite value; None when all are
    finite."""
    finite = torch.isfinite(batch.reshape(batch.shape[0], -1)).all(dim=1)
    if bool(finite.all()):
        return None
    bad = int((~finite).nonzero()[0, 0])
    return bad, "NaN" if bool(torch.isnan(batch[bad]).any()) else "Inf"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (bool, numbers.Number, np.generic)) or (
        isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0
    )


def _check_finite(batch: torch.Tensor, first_index: int) -> None:
    """Raise for the first clip (along dim 0) holding NaN or Inf."""
    found = first_non_finite(batch)
    if found is not None:
        raise ValueError(
            f"Clip {first_index + found[0]} of `raw_speech` contains {found[1]} values; audio samples must be finite."
        )


def split_clips(raw_speech: Any, device: torch.device) -> list[torch.Tensor]:
    """The clips of a feature extractor's `raw_speech` as 1-D float32 mono tensors on `device`, by transformers'
    rule for audio extractors: a 1-D array or a list of numbers is one clip; a 2-D array `(batch, samples)` holds
    mono clips in its rows; a 3-D array is `(batch, channels, samples)`; a list holds clips of any lengths, each 1-D
    or 2-D (one multi-channel clip, channels on its shorter axis). Empty, non-finite or ill-shaped clips are refused
    (`ValueError`, naming the clip); unsupported types and dtypes too (`TypeError`)."""
    if isinstance(raw_speech, np.ndarray) and raw_speech.dtype == object:
        raw_speech = list(raw_speech)
    if isinstance(raw_speech, (np.ndarray, torch.Tensor)):
        tensor = torch.as_tensor(to_float32(raw_speech, "`raw_speech`")).to(device)
        tensor = tensor[None] if tensor.ndim == 1 else tensor
        if tensor.ndim not in (2, 3):
            raise ValueError(
                "`raw_speech` as an array/tensor must be 1-D (one clip), 2-D (batch, samples) or 3-D "
                f"(batch, channels, samples), got shape {tuple(tensor.shape)}."
            )
        if tensor.shape[0] == 0:
            raise ValueError("`raw_speech` contains no clips (batch dimension of size 0).")
        if tensor.shape[-1] == 0 or (tensor.ndim == 3 and tensor.shape[1] == 0):
            raise ValueError("Clip 0 of `raw_speech` is empty (0 samples).")
        _check_finite(tensor, 0)
        return list((tensor.mean(dim=1) if tensor.ndim == 3 else tensor).unbind(0))
    if not isinstance(raw_speech, (list, tuple)):
        to_float32(raw_speech, "`raw_speech`")  # raises a TypeError naming the type
        raise TypeError(f"Unsupported `raw_speech` type {type(raw_speech).__name__}.")  # pragma: no cover
    if len(raw_speech) == 0:
        raise ValueError("`raw_speech` is empty: pass at least one clip.")
    clips = []
    for index, item in enumerate([raw_speech] if _is_scalar(raw_speech[0]) else raw_speech):
        if _is_scalar(item):
            raise ValueError(
                f"Clip {index} of `raw_speech` is a single number: a batch must hold clips (arrays), and one clip "
                "given as a list must hold only numbers."
            )
        clip = torch.as_tensor(to_float32(item, f"clip {index} of `raw_speech`")).to(device)
        if clip.numel() == 0:
            raise ValueError(f"Clip {index} of `raw_speech` is empty (0 samples).")
        if clip.ndim not in (1, 2):
            raise ValueError(
                f"Clip {index} of `raw_speech` must be 1-D (samples) or 2-D (channels and samples, either order), "
                f"got shape {tuple(clip.shape)}."
            )
        _check_finite(clip[None], index)
        clips.append(to_mono(clip))
    return clips


__all__ = [
    "MAX_SAMPLING_RATE",
    "PCM_SCALES",
    "RESAMPLE_HINT",
    "channel_axis",
    "check_rate",
    "first_non_finite",
    "split_clips",
    "to_float32",
    "to_mono",
]

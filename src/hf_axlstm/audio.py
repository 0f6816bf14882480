# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Audio decoding shared by the training and evaluation scripts: files, `datasets` audio values, resampling.

Everything returns mono float32 numpy arrays at the requested rate (16 kHz for AxLSTM). Files are read with
soundfile (WAV, FLAC, OGG/Vorbis, ...); rates are converted with a polyphase FIR resampler (scipy's
`resample_poly`, a Kaiser-windowed anti-aliasing filter), never by dropping or repeating samples.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SAMPLING_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus")


class AudioDecodeError(ValueError):
    """An audio file or value could not be decoded; the message names it."""


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) or (channels, samples) array; the shorter axis is channels."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return audio
    if audio.ndim != 2:
        raise AudioDecodeError(f"audio has shape {audio.shape}; expected (samples,) or 2-D multi-channel audio.")
    channel_axis = 0 if audio.shape[0] < audio.shape[1] else 1
    return audio.mean(axis=channel_axis)


def to_float32(audio: np.ndarray) -> np.ndarray:
    """Integer PCM -> float in [-1, 1); float input is cast to float32."""
    audio = np.asarray(audio)
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / 32768.0
    if audio.dtype == np.int32:
        return audio.astype(np.float32) / 2147483648.0
    if audio.dtype == np.uint8:
        return (audio.astype(np.float32) - 128.0) / 128.0
    if not np.issubdtype(audio.dtype, np.floating):
        raise AudioDecodeError(f"audio has unsupported dtype {audio.dtype}; expected float or integer PCM.")
    return audio.astype(np.float32, copy=False)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Polyphase resampling of a mono float array from `orig_sr` to `target_sr` (scipy.signal.resample_poly)."""
    if orig_sr <= 0:
        raise AudioDecodeError(f"sampling rate {orig_sr} is invalid; expected a positive number of Hz.")
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    try:
        from scipy.signal import resample_poly
    except ImportError as err:  # pragma: no cover - scipy is part of the `train` extra
        raise ImportError("resampling needs scipy: pip install 'hf-axlstm[train]'") from err
    g = math.gcd(orig_sr, target_sr)
    return resample_poly(audio, target_sr // g, orig_sr // g).astype(np.float32)


def prepare_waveform(audio: np.ndarray, sampling_rate: int, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Any decoded array -> mono float32 at `target_sr`."""
    return resample(to_mono(to_float32(audio)), sampling_rate, target_sr)


def load_audio(path: str | os.PathLike | io.IOBase, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Read an audio file (path or file object) as mono float32 at `target_sr`. Raises `AudioDecodeError` naming the
    file when it cannot be read."""
    import soundfile as sf

    name = getattr(path, "name", path)
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=False)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise AudioDecodeError(f"cannot read audio file {str(name)!r}: {err}") from err
    if audio.size == 0:
        raise AudioDecodeError(f"audio file {str(name)!r} has no samples.")
    return prepare_waveform(audio, sr, target_sr)


def find_audio_files(root: str | os.PathLike, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[Path]:
    """All audio files under `root` (recursive), sorted so every process sees the same order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder {str(root)!r} does not exist or is not a directory.")
    exts = {e.lower() for e in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def decode_audio_value(value: Any, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Decode one value of a `datasets` audio column, whatever form it takes:

    - a dict with `array` and `sampling_rate` (datasets' classic decoded form, or a user's own);
    - a dict with `path` and/or `bytes` (an `Audio(decode=False)` column);
    - a path string (a `Value("string")` column of file paths);
    - a torchcodec `AudioDecoder` (what datasets >= 4 returns when torchcodec is installed);
    - a numpy array / list (then assumed to be at `target_sr` already).
    """
    if isinstance(value, dict):
        if value.get("array") is not None:
            sr = value.get("sampling_rate")
            if sr is None:
                raise AudioDecodeError("audio dict has an 'array' but no 'sampling_rate'.")
            return prepare_waveform(np.asarray(value["array"]), int(sr), target_sr)
        if value.get("bytes") is not None:
            try:
                return load_audio(io.BytesIO(value["bytes"]), target_sr)
            except AudioDecodeError as err:
                raise AudioDecodeError(f"cannot decode audio bytes of {value.get('path')!r}: {err}") from err
        if value.get("path"):
            return load_audio(value["path"], target_sr)
        raise AudioDecodeError(f"audio value {sorted(value)} has neither 'array', 'bytes' nor 'path'.")
    if isinstance(value, (str, os.PathLike)):
        return load_audio(value, target_sr)
    if hasattr(value, "get_all_samples"):  # torchcodec.decoders.AudioDecoder
        samples = value.get_all_samples()
        return prepare_waveform(samples.data.numpy(), int(samples.sample_rate), target_sr)
    if isinstance(value, (np.ndarray, list)):
        return to_mono(to_float32(np.asarray(value)))
    raise AudioDecodeError(f"cannot decode an audio value of type {type(value).__name__}.")


__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioDecodeError",
    "TARGET_SAMPLING_RATE",
    "decode_audio_value",
    "find_audio_files",
    "load_audio",
    "prepare_waveform",
    "resample",
    "to_float32",
    "to_mono",
]

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

from .audio_rules_axlstm import MAX_SAMPLING_RATE, check_rate
from .audio_rules_axlstm import to_float32 as _float32_rule
from .audio_rules_axlstm import to_mono as _mono_rule

TARGET_SAMPLING_RATE = 16000
# Sanity bound: the longest audio a resampling may produce (12 hours at the target rate, 2.8 GB of float32 at 16 kHz).
# With it and `MAX_SAMPLING_RATE` a value claiming 1 Hz, or 10**9 Hz, cannot make the polyphase resampler allocate
# hundreds of gigabytes (an output 16000 times the input, or a filter of 2 * 10**10 taps).
MAX_RESAMPLED_SECONDS = 12 * 3600
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus")


class AudioDecodeError(ValueError):
    """An audio file or value could not be decoded; the message names it."""


def _check_rate(name: str, value: Any) -> int:
    """A sampling rate by the shared rule (`audio_rules_axlstm.check_rate`), refused as an `AudioDecodeError`."""
    return check_rate(name, value, AudioDecodeError)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) or (channels, samples) array; the shorter axis is channels (the
    first of a square array), as everywhere in hf_axlstm (`audio_rules_axlstm.to_mono`)."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return audio
    if audio.ndim != 2:
        raise AudioDecodeError(f"audio has shape {audio.shape}; expected (samples,) or 2-D multi-channel audio.")
    if audio.size == 0:
        raise AudioDecodeError(f"audio has shape {audio.shape}: no samples.")
    return _mono_rule(audio)


def to_float32(audio: np.ndarray) -> np.ndarray:
    """Integer PCM -> float in [-1, 1); float input is cast to float32 (`audio_rules_axlstm.to_float32`)."""
    try:
        audio = np.asarray(audio)
    except ValueError as err:  # e.g. ragged nested lists
        raise AudioDecodeError(f"audio cannot be read as an array of samples: {err}") from None
    return _float32_rule(audio, "audio", AudioDecodeError)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Polyphase resampling of a mono float array from `orig_sr` to `target_sr` (scipy.signal.resample_poly)."""
    orig_sr = _check_rate("orig_sr", orig_sr)
    target_sr = _check_rate("target_sr", target_sr)
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AudioDecodeError(f"resample takes mono audio of shape (samples,), got shape {audio.shape}.")
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    out_len = -(-audio.shape[0] * target_sr // orig_sr)
    if out_len > MAX_RESAMPLED_SECONDS * target_sr:
        raise AudioDecodeError(
            f"resampling {audio.shape[0]} samples from {orig_sr} Hz to {target_sr} Hz would give {out_len} samples, "
            f"more than {MAX_RESAMPLED_SECONDS // 3600} hours; is orig_sr={orig_sr} right? (Split longer audio.)"
        )
    try:
        from scipy.signal import resample_poly
    except ImportError as err:  # pragma: no cover - scipy is a dependency of hf-axlstm
        raise ImportError("resampling audio needs scipy: pip install scipy") from err
    g = math.gcd(orig_sr, target_sr)
    return resample_poly(audio, target_sr // g, orig_sr // g).astype(np.float32)


def prepare_waveform(audio: np.ndarray, sampling_rate: int, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Any decoded array -> mono float32 at `target_sr`."""
    sampling_rate = _check_rate("sampling_rate", sampling_rate)
    target_sr = _check_rate("target_sr", target_sr)
    return resample(to_mono(to_float32(audio)), sampling_rate, target_sr)


def _wav_shortfall(stream) -> tuple[int, int] | None:
    """For a RIFF / RIFX / RF64 WAV stream: `(declared_frames, present_frames)` when its `data` chunk declares more
    bytes than the file holds (a truncated copy or download), else None. libsndfile quietly decodes what is there
    (a 60-byte file as 8 samples), so this is checked here. A size of 0 or 0xFFFFFFFF (a stream written before its
    length was known) declares nothing. The stream's position is restored."""
    start = stream.tell()
    try:
        stream.seek(0, os.SEEK_END)
        total = stream.tell()
        stream.seek(0)
        head = stream.read(12)
        if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RIFX", b"RF64"):
            return None
        order = ">" if head[:4] == b"RIFX" else "<"
        block_align, ds64_size, offset = None, None, 12
        while offset + 8 <= total:
            stream.seek(offset)
            chunk = stream.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], int.from_bytes(chunk[4:], "big" if order == ">" else "little")
            if chunk_id == b"ds64":
                body = stream.read(16)
                if len(body) == 16:
                    ds64_size = int.from_bytes(body[8:16], "little")
            elif chunk_id == b"fmt ":
                body = stream.read(14)
                if len(body) == 14:
                    block_align = int.from_bytes(body[12:14], "big" if order == ">" else "little")
            elif chunk_id == b"data":
                if head[:4] == b"RF64" and size == 0xFFFFFFFF and ds64_size is not None:
                    size = ds64_size
                present = total - (offset + 8)
                if size in (0, 0xFFFFFFFF) or size <= present or not block_align:
                    return None
                return size // block_align, present // block_align
            offset += 8 + size + (size & 1)  # chunks are padded to an even length
        return None
    finally:
        stream.seek(start)


def check_not_truncated(path: str | os.PathLike | io.IOBase, name: str | None = None) -> None:
    """Raise `AudioDecodeError` naming the file when a WAV file (path or seekable file object) is truncated: its
    header declares more audio than the file holds. Other formats are left to the decoder (a truncated FLAC fails to
    decode; a truncated OGG decodes to nothing and is refused as empty)."""
    name = name or (os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", None))
    name = str(name or "<in-memory audio bytes>")
    if isinstance(path, (str, os.PathLike)):
        try:
            with open(path, "rb") as stream:
                shortfall = _wav_shortfall(stream)
        except OSError:
            return  # unreadable: the decoder names the problem
    elif hasattr(path, "seek") and hasattr(path, "tell") and getattr(path, "seekable", lambda: True)():
        shortfall = _wav_shortfall(path)
    else:
        return
    if shortfall is not None:
        declared, present = shortfall
        raise AudioDecodeError(
            f"audio file {name!r} is truncated: its WAV header declares {declared} frames but the file holds only "
            f"{present}; the file is incomplete (an interrupted copy or download?)."
        )


def _soundfile():
    """soundfile, imported on first use (in a try block, so that transformers' remote-code import check does not
    demand it of a user who passes only arrays to a pipeline shared on the Hub)."""
    try:
        import soundfile
    except ImportError as err:  # pragma: no cover - soundfile is a dependency of hf-axlstm
        raise ImportError("decoding audio files needs soundfile: pip install soundfile") from err
    return soundfile


def load_audio(path: str | os.PathLike | io.IOBase, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Read an audio file (path or file object) as mono float32 at `target_sr`. Raises `AudioDecodeError` naming the
    file when it cannot be read, or when a WAV file is truncated (see [`check_not_truncated`])."""
    sf = _soundfile()

    target_sr = _check_rate("target_sr", target_sr)
    if isinstance(path, (str, os.PathLike)):
        name = os.fspath(path)
        if not os.path.exists(name):
            raise AudioDecodeError(f"audio file {name!r} does not exist.")
        if os.path.isdir(name):
            raise AudioDecodeError(f"audio file {name!r} is a directory, not an audio file.")
    elif hasattr(path, "read"):
        name = getattr(path, "name", None) or "<in-memory audio bytes>"
    else:  # soundfile would read an int as a file descriptor
        raise AudioDecodeError(
            f"cannot read audio from {path!r} ({type(path).__name__}); expected a path or a file object."
        )
    check_not_truncated(path, name)
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=False)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise AudioDecodeError(f"cannot read audio file {str(name)!r}: {err}") from err
    if audio.size == 0:
        raise AudioDecodeError(f"audio file {str(name)!r} has no samples.")
    return prepare_waveform(audio, sr, target_sr)


def find_audio_files(root: str | os.PathLike, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[Path]:
    """All audio files under `root` (recursive), sorted so every process sees the same order.

    Symbolic links are followed, to folders as to files (a corpus assembled from links is common); every folder is
    walked once, by its real path, so a link that loops back to a parent, or a second link to a folder already walked,
    adds nothing. Paths are returned as found under `root` (a file inside a linked folder keeps the link's name)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder {str(root)!r} does not exist or is not a directory.")
    if isinstance(extensions, str):  # a bare ".wav" would otherwise be read as its characters
        extensions = (extensions,)
    if not extensions or not all(isinstance(e, str) and e.strip(".") for e in extensions):
        raise ValueError(
            f"extensions={extensions!r} is invalid; expected file name endings such as ('.wav', '.flac')."
        )
    exts = {("" if e.startswith(".") else ".") + e.lower() for e in extensions}
    found = []
    seen_dirs: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen_dirs:
            dirs[:] = []  # a loop, or a folder already walked through another link
            continue
        seen_dirs.add(real)
        dirs.sort()
        for name in names:
            path = Path(folder) / name
            if path.suffix.lower() in exts and path.is_file():  # is_file follows links; a dangling link is skipped
                found.append(path)
    return sorted(found)


def decode_audio_value(value: Any, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Decode one value of a `datasets` audio column, whatever form it takes:

    - a dict with `array` and `sampling_rate` (datasets' classic decoded form, or a user's own);
    - a dict with `path` and/or `bytes` (an `Audio(decode=False)` column);
    - a path string (a `Value("string")` column of file paths);
    - a torchcodec `AudioDecoder` (what datasets >= 4 returns when torchcodec is installed);
    - a numpy array / list (then assumed to be at `target_sr` already).
    """
    target_sr = _check_rate("target_sr", target_sr)
    if isinstance(value, dict):
        label = f"audio dict of {value['path']!r}" if value.get("path") else "audio dict"
        if value.get("array") is not None:
            sr = value.get("sampling_rate")
            if sr is None:
                raise AudioDecodeError("audio dict has an 'array' but no 'sampling_rate'.")
            try:
                sr = _check_rate("sampling_rate", sr)
            except AudioDecodeError as err:
                raise AudioDecodeError(f"{label}: {err}") from None
            return prepare_waveform(value["array"], sr, target_sr)
        if value.get("bytes") is not None:
            if not isinstance(value["bytes"], (bytes, bytearray, memoryview)):
                raise AudioDecodeError(
                    f"{label} has 'bytes' of type {type(value['bytes']).__name__}; expected the encoded file as bytes."
                )
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
    raise AudioDecodeError(
        f"cannot decode an audio value of type {type(value).__name__}; expected a dict with 'array' and "
        "'sampling_rate' or 'path'/'bytes', a file path, a torchcodec AudioDecoder, or a numpy array / list."
    )


__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioDecodeError",
    "MAX_RESAMPLED_SECONDS",
    "MAX_SAMPLING_RATE",
    "TARGET_SAMPLING_RATE",
    "check_not_truncated",
    "decode_audio_value",
    "find_audio_files",
    "load_audio",
    "prepare_waveform",
    "resample",
    "to_float32",
    "to_mono",
]

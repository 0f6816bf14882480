# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Log-mel feature extractor for AxLSTM (Audio xLSTM) models.

Computes, in batched torch, the log-mel spectrogram used by the AxLSTM authors: a power mel spectrogram
(16 kHz, 25 ms periodic Hann window, 10 ms hop, 80 HTK mel bins between 50 Hz and 8 kHz, centred frames with
reflect padding), ``log(power + 1.1920929e-07)``, then per-clip standardisation, laid out time first
``(frames, 80)``. The mel filters are `transformers.audio_utils.mel_filter_bank`'s; the waveform rules (integer PCM,
channels to mono, float conversion) are those of every audio entry point, in `audio_rules_axlstm.py`.

This file is self-contained (torch, numpy, transformers and its sibling `audio_rules_axlstm.py`) so that it can be
shipped as Hugging Face Hub remote code.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.audio_utils import mel_filter_bank
from transformers.utils import PaddingStrategy, TensorType, logging

from .audio_rules_axlstm import first_non_finite, split_clips
from .validation_axlstm import (
    check_call_arguments,
    check_extractor_config,
    check_padding_side,
    check_return_tensors,
    resolve_device,
    resolve_lengths,
)

__all__ = ["AxLSTMFeatureExtractor"]

logger = logging.get_logger(__name__)


class AxLSTMFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Log-mel feature extractor for AxLSTM (Audio xLSTM) models, reproducing the features of the AxLSTM authors' code.

    For every clip it computes a power mel spectrogram (centred frames with reflect padding of `n_fft // 2` samples
    on each side, so a clip of `n` samples gives `1 + n // hop_length` frames), takes `log(power + log_offset)` and
    standardises the clip with its own mean and unbiased standard deviation over all its frames and mel bins:
    `(x - mean) / (std + normalize_eps)`. Features are laid out time first: `(frames, feature_size)`. Everything is
    computed with `torch.stft`, batched, on the CPU or on an accelerator (`device=`).

    The mel filter bank and window are derived from the configuration and cached privately; they are never
    serialised, so `to_dict()`, `save_pretrained()` and `from_pretrained()` only carry the plain values below.

    Args:
        feature_size (`int`, *optional*, defaults to 80):
            Number of mel bins (the last dimension of `input_values`), at most 512.
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate in Hz the model was trained at (at most 768000). Audio at another rate is refused (resample
            it first).
        padding_value (`float`, *optional*, defaults to 0.0):
            Value given to padding frames (after normalisation; 0.0 is the normalised mean).
        n_fft (`int`, *optional*, defaults to 400):
            FFT size in samples (25 ms at 16 kHz); `n_fft // 2 + 1` frequency bins. At most 32768.
        win_length (`int`, *optional*, defaults to 400):
            Length of the periodic Hann window in samples (`<= n_fft`; a shorter window is zero-padded on both
            sides to `n_fft`).
        hop_length (`int`, *optional*, defaults to 160):
            Hop between frames in samples (10 ms at 16 kHz), at most 32768.
        f_min (`float`, *optional*, defaults to 50.0):
            Lowest edge of the mel filter bank in Hz.
        f_max (`float`, *optional*, defaults to 8000.0):
            Highest edge of the mel filter bank in Hz (at most `sampling_rate / 2`).
        mel_scale (`str`, *optional*, defaults to `"htk"`):
            Mel scale, `"htk"` (`2595 * log10(1 + f / 700)`, the AxLSTM choice) or `"slaney"`. The triangular filters
            are not area-normalised.
        log_offset (`float`, *optional*, defaults to 1.1920929e-07):
            Constant added to the mel power before the natural logarithm (float32 machine epsilon).
        do_normalize (`bool`, *optional*, defaults to `True`):
            Whether to standardise each clip with its own mean and standard deviation. The statistics use only the
            clip's real frames, computed before any truncation or padding.
        normalize_eps (`float`, *optional*, defaults to 1e-8):
            Added to the standard deviation before dividing.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Default for `__call__`'s `return_attention_mask`.
        padding_side (`str`, *optional*, defaults to `"right"`):
            Side on which padding frames are added, `"right"` or `"left"`. AxLSTM models expect `"right"`.
        **kwargs:
            Further attributes stored on the extractor (e.g. `feature_extractor_type` when loaded from JSON).
    """

    model_input_names = ["input_values", "attention_mask"]
    # save_pretrained copies this file next to the config and records it in auto_map (Hub remote code).
    _auto_class = "AutoFeatureExtractor"

    def __init__(
        self,
        feature_size: int = 80,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        n_fft: int = 400,
        win_length: int = 400,
        hop_length: int = 160,
        f_min: float = 50.0,
        f_max: float = 8000.0,
        mel_scale: str = "htk",
        log_offset: float = 1.1920929e-07,
        do_normalize: bool = True,
        normalize_eps: float = 1e-8,
        return_attention_mask: bool = True,
        **kwargs,
    ):
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.f_min, self.f_max, self.mel_scale, self.log_offset = f_min, f_max, mel_scale, log_offset
        self.do_normalize, self.normalize_eps = do_normalize, normalize_eps
        check_extractor_config(self)
        # Private cache of derived tensors (mel filters, window) per device/dtype; never serialised.
        self._cache: dict[tuple, torch.Tensor] = {}

    def to_dict(self) -> dict[str, Any]:
        """Plain configuration values only (private caches such as the mel filters are left out)."""
        output = {key: copy.deepcopy(value) for key, value in self.__dict__.items() if not key.startswith("_")}
        output["feature_extractor_type"] = self.__class__.__name__
        return output

    @property
    def min_num_samples(self) -> int:
        """Shortest clip accepted: reflect padding of `n_fft // 2` samples needs more samples than that."""
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Number of frames for a clip of `num_samples` samples: `1 + num_samples // hop_length`."""
        if isinstance(num_samples, (bool, np.bool_)) or not isinstance(num_samples, numbers.Integral):
            raise TypeError(f"`num_samples` must be an integer, got {num_samples!r} ({type(num_samples).__name__}).")
        if num_samples < 0:
            raise ValueError(f"`num_samples` must be non-negative, got {num_samples!r}.")
        return 1 + int(num_samples) // self.hop_length

    def mel_filters(self) -> torch.Tensor:
        """
        The triangular mel filter bank, float64, shape `(n_fft // 2 + 1, feature_size)` (frequency bins x mels):
        `transformers.audio_utils.mel_filter_bank` with this extractor's settings (edges evenly spaced on the mel
        scale between `f_min` and `f_max`, no area normalisation).
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            filters = mel_filter_bank(
                num_frequency_bins=self.n_fft // 2 + 1,
                num_mel_filters=self.feature_size,
                min_frequency=float(self.f_min),
                max_frequency=float(self.f_max),
                sampling_rate=self.sampling_rate,
                norm=None,
                mel_scale=self.mel_scale,
            )
        if any("all zero values" in str(warning.message) for warning in caught):
            logger.warning(
                "Some mel filters are all zero: `feature_size` is too large for `n_fft`; those bins will be constant."
            )
        return torch.from_numpy(filters)

    def _derived(self, kind: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The window or the mel filters on `device` in `dtype`, cached per configuration."""
        settings = (self.feature_size, self.sampling_rate, self.n_fft, self.win_length, self.f_min, self.f_max)
        key = (kind, str(device), dtype, *settings, self.mel_scale)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            if kind == "window":
                tensor = torch.hann_window(self.win_length, periodic=True, dtype=torch.float64)
            else:
                tensor = self.mel_filters()
            cache[key] = tensor.to(device=device, dtype=dtype)
        return cache[key]

    # ------------------------------------------------------------------ public tensor helpers

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """
        Un-normalised log-mel spectrogram of equal-length clips, with one batched `torch.stft`.

        Args:
            waveforms (`torch.Tensor` of shape `(batch, samples)`, or `(..., samples)`):
                Float mono waveforms at `sampling_rate`, all of the same length (at least `n_fft // 2 + 1` samples).

        Returns:
            `torch.Tensor` of shape `(batch, frames, feature_size)` (the input's leading dimensions, then frames and
            mel bins), `frames = 1 + samples // hop_length`, on the waveforms' device; float32 (float64 if the
            waveforms are float64): `log(mel_power + log_offset)`.
        """
        if not isinstance(waveforms, torch.Tensor):
            raise TypeError(f"`waveforms` must be a torch.Tensor, got {type(waveforms).__name__}.")
        if not waveforms.is_floating_point():
            raise TypeError(f"`waveforms` must be a floating point tensor, got {waveforms.dtype}.")
        if waveforms.ndim == 0:
            raise ValueError("`waveforms` must have a samples dimension, got a 0-d tensor.")
        num_samples = waveforms.shape[-1]
        if num_samples < self.min_num_samples:
            raise ValueError(
                f"Clips must have at least {self.min_num_samples} samples (reflect padding of n_fft // 2 = "
                f"{self.n_fft // 2} samples on each side), got {num_samples}."
            )
        dtype = torch.float64 if waveforms.dtype == torch.float64 else torch.float32
        flat = waveforms.to(dtype).reshape(-1, num_samples)
        spectrum = torch.stft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self._derived("window", flat.device, dtype),
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (batch, freqs, frames)
        power = spectrum.real.square() + spectrum.imag.square()
        mel = torch.matmul(power.transpose(1, 2), self._derived("mel", flat.device, dtype))  # (batch, frames, mels)
        log_mel = torch.log(mel + self.log_offset)
        return log_mel.reshape(*waveforms.shape[:-1], log_mel.shape[-2], log_mel.shape[-1])

    def normalize(self, log_mel: torch.Tensor, num_frames: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """
        Per-clip standardisation `(x - mean) / (std + normalize_eps)` (unbiased std, as `torch.std`).

        Args:
            log_mel (`torch.Tensor` of shape `(batch, frames, feature_size)` or `(frames, feature_size)`):
                Log-mel spectrograms, e.g. from [`~AxLSTMFeatureExtractor.log_mel`].
            num_frames (sequence of `int` or `torch.Tensor` of shape `(batch,)`, *optional*):
                Number of real (leading) frames of each clip. The statistics of clip `b` use only its first
                `num_frames[b]` frames and the frames after them are set to `padding_value`. `None`: all frames.

        Returns:
            `torch.Tensor` of the same shape, dtype and device as `log_mel`.
        """
        if not isinstance(log_mel, torch.Tensor) or not log_mel.is_floating_point():
            raise TypeError("`log_mel` must be a floating point torch.Tensor.")
        if log_mel.ndim == 2:
            if num_frames is not None:
                num_frames = torch.as_tensor(num_frames).reshape(1)
            return self.normalize(log_mel[None], num_frames)[0]
        if log_mel.ndim != 3:
            raise ValueError(f"`log_mel` must have shape (batch, frames, bins), got {tuple(log_mel.shape)}.")
        batch, frames, bins = log_mel.shape
        if num_frames is None:
            flat = log_mel.reshape(batch, frames * bins)
            mean, std = flat.mean(dim=1), flat.std(dim=1)
            return (log_mel - mean[:, None, None]) / (std[:, None, None] + self.normalize_eps)

        try:
            lengths = torch.as_tensor(num_frames, device=log_mel.device).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"`num_frames` must be a sequence of integers, got {num_frames!r}.") from None
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"`num_frames` must hold integers, got dtype {lengths.dtype}: {lengths.tolist()}.")
        lengths = lengths.long()
        if lengths.numel() != batch:
            raise ValueError(f"`num_frames` has {lengths.numel()} entries for a batch of {batch} clips.")
        if bool(((lengths < 1) | (lengths > frames)).any()):
            raise ValueError(f"`num_frames` must be between 1 and {frames}, got {lengths.tolist()}.")
        real = torch.arange(frames, device=log_mel.device)[None, :] < lengths[:, None]  # (batch, frames)
        weight = real[:, :, None].to(log_mel.dtype)
        count = lengths.to(log_mel.dtype) * bins
        mean = (log_mel * weight).sum(dim=(1, 2)) / count
        centred = (log_mel - mean[:, None, None]) * weight
        std = torch.sqrt(centred.square().sum(dim=(1, 2)) / (count - 1).clamp(min=1))
        out = (log_mel - mean[:, None, None]) / (std[:, None, None] + self.normalize_eps)
        return out.masked_fill(~real[:, :, None], self.padding_value)

    # ------------------------------------------------------------------ input parsing

    def _split_clips(self, raw_speech: Any, device: torch.device) -> list[torch.Tensor]:
        """Any supported input -> list of 1-D float32 mono clips on `device` (`audio_rules_axlstm.split_clips`), each
        long enough for the reflect padding."""
        clips = split_clips(raw_speech, device)
        for index, clip in enumerate(clips):
            if clip.shape[0] < self.min_num_samples:
                hint = ""
                if isinstance(raw_speech, (np.ndarray, torch.Tensor)) and raw_speech.ndim == 2:
                    hint = (
                        " A 2-D array is read as (batch, samples); to pass one multi-channel clip, wrap it in a "
                        "list: `[audio]`."
                    )
                raise ValueError(
                    f"Clip {index} of `raw_speech` has {clip.shape[0]} samples; at least {self.min_num_samples} are "
                    f"needed (reflect padding of n_fft // 2 = {self.n_fft // 2} samples on each side).{hint}"
                )
        return clips

    def _features(self, clips: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-clip (frames, feature_size) features; clips of equal length share one batched stft. Raises for the
        first clip whose (finite) samples still give NaN or Inf features, saying why."""
        groups: dict[int, list[int]] = {}
        for index, clip in enumerate(clips):
            groups.setdefault(clip.shape[0], []).append(index)
        features: list[torch.Tensor] = [clips[0]] * len(clips)
        for indices in groups.values():
            batch = torch.stack([clips[i] for i in indices])
            feats = self.log_mel(batch)
            stages = [("log-mel", feats)]
            if self.do_normalize:
                feats = self.normalize(feats)
                stages.append(("normalised log-mel", feats))
            for stage, values in stages:
                found = first_non_finite(values)
                if found is None:
                    continue
                position, what = found
                if stage == "log-mel":
                    why = (
                        f"its samples reach |x| = {float(batch[position].abs().max()):.3g} and the power spectrum "
                        "overflows float32; audio samples are expected in [-1, 1] (float) or as integer PCM"
                    )
                else:
                    why = f"the clip's log-mel is constant and normalize_eps={self.normalize_eps!r} (divides by zero)"
                raise ValueError(f"Clip {indices[position]} of `raw_speech` gives {what} {stage} features: {why}.")
            for position, index in enumerate(indices):
                features[index] = feats[position]
        return features

    # ------------------------------------------------------------------ main entry point

    def __call__(
        self,
        raw_speech: np.ndarray | torch.Tensor | Sequence[float] | Sequence[np.ndarray | torch.Tensor | Sequence],
        sampling_rate: int | None = None,
        padding: bool | str | PaddingStrategy = True,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = None,
        device: str | torch.device | None = None,
        padding_side: str | None = None,
        max_frames: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Compute normalised log-mel features for one clip or a batch of clips.

        Args:
            raw_speech (`np.ndarray`, `torch.Tensor`, `list[float]` or a list of clips):
                One clip (1-D) or a batch: a list of clips of any lengths (each 1-D, or 2-D multi-channel with its
                channels on the shorter axis: `(samples, channels)` from soundfile, `(channels, samples)` from torch),
                a 2-D `(batch, samples)` array of mono clips (transformers' rule for audio extractors: never the
                channels of one clip; pass one multi-channel clip as `[clip]`) or a 3-D `(batch, channels, samples)`
                array. Channels are averaged; integer PCM is rescaled to [-1, 1) (int16 / 32768, int32 / 2**31,
                int8 / 128, uint8 (x - 128) / 128). Each clip needs at least `n_fft // 2 + 1` finite samples.
            sampling_rate (`int`, *optional*):
                Sampling rate of `raw_speech`; must equal `self.sampling_rate` (16000). Strongly recommended.
            padding (`bool`, `str` or [`~utils.PaddingStrategy`], *optional*, defaults to `True`):
                `True` / `"longest"`: pad to the longest clip (in frames); `"max_length"`: pad every clip to the
                frames of `max_length` samples (or to `max_frames`); `False` / `"do_not_pad"`: no padding.
            max_length (`int`, *optional*):
                Length **in samples of raw audio**, as in transformers' Wav2Vec2 and Whisper extractors
                (`max_length=32000` is 2 s at 16 kHz): the output gets the frames a clip of that many samples gives,
                `1 + max_length // hop_length` (201 for 32000). Used by `padding="max_length"` and
                `truncation=True`. At least `n_fft // 2 + 1` (the shortest clip) and at most one hour of audio;
                a smaller value is refused with a pointer to `max_frames` (it is most likely a number of frames).
            truncation (`bool`, *optional*, defaults to `False`):
                Cut clips longer than `max_length` samples (or `max_frames` frames) to that many frames. The
                features are computed from the whole clip and then cut, so the normalisation statistics are the
                whole clip's.
            pad_to_multiple_of (`int`, *optional*):
                When padding, round the padded length **in frames** up to a multiple of this (e.g. 4, the patch
                length in time).
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` (torch tensors), `"np"` (numpy arrays) or `None` (lists of numpy arrays, one per clip).
            return_attention_mask (`bool`, *optional*):
                Whether to return `attention_mask`; defaults to `self.return_attention_mask`.
            device (`str` or `torch.device`, *optional*):
                Device on which to compute (e.g. `"cuda"`); `"pt"` tensors are returned there. Defaults to the
                device of the input tensor(s), else the CPU.
            padding_side (`str`, *optional*):
                `"right"` or `"left"`; defaults to `self.padding_side`.
            max_frames (`int`, *optional*):
                The same length limit as `max_length`, given directly in output frames (e.g. 200 for the model's
                2 s window); pass one of `max_length` and `max_frames`, not both. At most one hour of frames.

        Any other keyword argument is refused with a `TypeError` (a misspelt `sampling_rate` must not be ignored).

        Returns:
            [`BatchFeature`] with
            - `input_values`: `(batch, frames, feature_size)` float32 features (padding frames hold
              `padding_value`); a batch dimension is always present, even for a single clip;
            - `attention_mask` (if requested): `(batch, frames)` int64, 1 for real frames and 0 for padding.
            A clip of `n` samples has `1 + n // hop_length` real frames.
        """
        check_call_arguments(self, kwargs, sampling_rate)
        if sampling_rate is None:
            logger.warning(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{type(self).__name__}()` "
                f"({self.sampling_rate} Hz expected). Failing to do so can result in silent errors that might be hard "
                "to debug."
            )
        strategy, limit, limit_name = resolve_lengths(
            self, padding, max_length, max_frames, truncation, pad_to_multiple_of, return_attention_mask
        )
        return_tensors = check_return_tensors(return_tensors)
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        padding_side = self.padding_side if padding_side is None else check_padding_side(padding_side)
        target = resolve_device(device, raw_speech)

        # Features of whole clips (normalisation statistics before any truncation or padding), then cut and pad.
        features = self._features(self._split_clips(raw_speech, target))
        if truncation:
            features = [feat[:limit] for feat in features]
        lengths = [feat.shape[0] for feat in features]
        if strategy == PaddingStrategy.DO_NOT_PAD:
            if return_tensors is not None and len(set(lengths)) > 1:
                raise ValueError(
                    f"Cannot return {return_tensors!r} tensors for clips of different lengths ({lengths} frames) "
                    "without padding: use padding=True, or return_tensors=None for a list of arrays."
                )
            values = torch.stack(features) if return_tensors else list(features)
            masks = [torch.ones(length, dtype=torch.long, device=target) for length in lengths]
            masks = torch.stack(masks) if return_tensors else masks
        else:
            if strategy == PaddingStrategy.MAX_LENGTH:
                too_long = [i for i, length in enumerate(lengths) if length > limit]
                if too_long:
                    raise ValueError(
                        f"Clip {too_long[0]} of `raw_speech` has {lengths[too_long[0]]} frames, more than "
                        f"{limit_name}; pass truncation=True or a larger limit."
                    )
            size = limit if strategy == PaddingStrategy.MAX_LENGTH else max(lengths)
            if pad_to_multiple_of is not None:
                size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
            shape = (len(features), size, self.feature_size)
            values = torch.full(shape, float(self.padding_value), dtype=torch.float32, device=target)
            masks = torch.zeros(shape[:2], dtype=torch.long, device=target)
            for index, feat in enumerate(features):
                span = slice(0, feat.shape[0]) if padding_side == "right" else slice(size - feat.shape[0], None)
                values[index, span] = feat.to(torch.float32)
                masks[index, span] = 1

        data = {"input_values": values, "attention_mask": masks} if return_attention_mask else {"input_values": values}
        for key, item in data.items():  # "pt": torch tensors on `target`; "np": a numpy array; None: a list of them
            if return_tensors is None:
                data[key] = [part.cpu().numpy() for part in item]
            elif return_tensors == "np":
                data[key] = item.cpu().numpy()
        return BatchFeature(data=data, tensor_type=None)

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""The HEAR 2021 API for AxLSTM: frozen scene and timestamp embeddings.

    import torch
    from hf_axlstm import hear

    model = hear.load_model("axlstm-tiny")                  # a save_pretrained folder, a Hub id or an authors' .pth
    audio = torch.randn(2, 48000)                           # (n_sounds, n_samples) at 16 kHz
    scene = hear.get_scene_embeddings(audio, model)         # (2, 5 * hidden_size)
    emb, ts = hear.get_timestamp_embeddings(audio, model)   # (2, frames, 5 * hidden_size), (2, frames) in ms

`audio` is a float tensor `(n_sounds, n_samples)` at 16 kHz. What happens to one clip (the paper's protocol):

1. its log-mel (the feature extractor's, normalised by the clip's own mean and std), `(T, 80)`;
2. `mode="windows"` (default): zero-padded on the right to a multiple of 200 frames (a full extra window when `T`
   already is one), every 200-frame window encoded on its own; `mode="whole"`: the whole clip as one sequence;
3. per window the 250 patch tokens (CLS dropped) become 50 frames x (5 * hidden_size);
4. the frames that come from padding are dropped (`int(50 * pad_frames / 200)` of them), leaving `ceil(T / 4)`;
5. timestamps `k * (clip seconds / frames) * 1000` ms; the scene embedding is the mean over the frames.

Step 3 has two layouts. `layout="time_major"` (default): frame `t` is the 5 frequency patches of time `t`,
concatenated in frequency order. `layout="official"` reproduces the authors' re-arrangement, which reads the
time-major tokens as if they were frequency-major (`b (f t) d -> b t (f d)`), so its "frame" `i` mixes tokens of
several times; use it only to reproduce published numbers.

Windows are encoded in batches of at most `window_batch_size`, so memory does not grow with the audio length
(beyond the log-mel and the returned embeddings).
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .audio_rules_axlstm import first_non_finite
from .configuration_axlstm import AxLSTMConfig
from .feature_extraction_axlstm import AxLSTMFeatureExtractor
from .modeling_axlstm import AxLSTMPreTrainedModel, SpectrogramEncoderMixin

LAYOUTS = ("time_major", "official")
MODES = ("windows", "whole")
# Log-mel frames computed in one stft call (10 min of audio): bounds the spectrogram's memory on long audio.
LOG_MEL_CHUNK_FRAMES = 60000


class AxLSTMHEARModel(nn.Module):
    """An AxLSTM encoder wrapped for the HEAR API: holds the encoder, the feature extractor and the options.

    Attributes (the HEAR API's): `sample_rate` (16000), `scene_embedding_size` and `timestamp_embedding_size`
    (both `num_freq_patches * hidden_size`: 960 / 1920 / 3840 for tiny / small / base).

    Args:
        encoder (`AxLSTMModel`): the encoder (any AxLSTM model with a head is unwrapped to its encoder).
        feature_extractor (`AxLSTMFeatureExtractor`, *optional*): defaults to the paper's log-mel.
        layout (`str`): `"time_major"` (default) or `"official"` (the authors' scrambled layout).
        mode (`str`): `"windows"` (default, 200-frame windows) or `"whole"` (the whole clip as one sequence).
        window_batch_size (`int`): the most windows (or, in `"whole"` mode, the most window-lengths of frames) that
            go through the encoder in one call.
    """

    sample_rate = 16000

    def __init__(
        self,
        encoder: AxLSTMPreTrainedModel,
        feature_extractor: AxLSTMFeatureExtractor | None = None,
        layout: str = "time_major",
        mode: str = "windows",
        window_batch_size: int = 16,
    ):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r} is invalid; expected one of {list(LAYOUTS)}.")
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is invalid; expected one of {list(MODES)}.")
        if isinstance(window_batch_size, bool) or not isinstance(window_batch_size, int) or window_batch_size < 1:
            raise ValueError(f"window_batch_size={window_batch_size!r} is invalid; expected a positive integer.")
        if feature_extractor is not None and not isinstance(feature_extractor, AxLSTMFeatureExtractor):
            raise TypeError(
                f"feature_extractor must be an AxLSTMFeatureExtractor or None, got {type(feature_extractor).__name__}."
            )
        self.encoder = _encoder_of(encoder).eval()
        self.feature_extractor = feature_extractor or AxLSTMFeatureExtractor()
        if self.feature_extractor.sampling_rate != self.sample_rate:
            raise ValueError(
                f"the feature extractor works at {self.feature_extractor.sampling_rate} Hz; the HEAR API needs "
                f"{self.sample_rate} Hz."
            )
        config: AxLSTMConfig = self.encoder.config
        if self.feature_extractor.feature_size != config.num_mel_bins:
            raise ValueError(
                f"the feature extractor gives {self.feature_extractor.feature_size} mel bins; the model expects "
                f"{config.num_mel_bins}."
            )
        self.layout = layout
        self.mode = mode
        self.window_batch_size = window_batch_size
        self.num_freq_patches = config.num_freq_patches
        self.patch_time = config.patch_size[0]
        self.frames_per_window = config.frames_per_window
        self.tokens_per_window = -(-config.frames_per_window // self.patch_time)  # 50 time patches per window
        self.scene_embedding_size = config.num_freq_patches * config.hidden_size
        self.timestamp_embedding_size = self.scene_embedding_size

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}, mode={self.mode!r}, window_batch_size={self.window_batch_size}"

    # ----------------------------------------------------------------------------------------- building blocks

    def log_mel(self, audio: torch.Tensor, chunk_frames: int = LOG_MEL_CHUNK_FRAMES) -> torch.Tensor:
        """(n_sounds, n_samples) -> normalised log-mel (n_sounds, frames, mels), each clip by its own statistics.

        The spectrogram is computed at most `chunk_frames` frames at a time (several short clips per call, or one
        long clip in overlapping pieces), so its memory stays bounded; the result is the same as in one call."""
        if not isinstance(audio, torch.Tensor) or audio.ndim != 2 or not audio.is_floating_point():
            raise ValueError(f"audio must be a float tensor of shape (n_sounds, n_samples), got {_describe(audio)}.")
        if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, numbers.Integral) or chunk_frames < 1:
            raise ValueError(f"chunk_frames={chunk_frames!r} is invalid; expected a positive integer.")
        fe = self.feature_extractor
        n, samples = audio.shape
        frames = fe.num_frames(samples)
        if frames <= chunk_frames:
            step = max(1, chunk_frames // frames)  # clips per stft call
            feats = torch.cat([fe.log_mel(audio[start : start + step]) for start in range(0, n, step)])
        else:
            feats = torch.stack([self._long_log_mel(clip, chunk_frames) for clip in audio])
        return fe.normalize(feats) if fe.do_normalize else feats

    def _long_log_mel(self, clip: torch.Tensor, chunk_frames: int) -> torch.Tensor:
        """Un-normalised log-mel (frames, mels) of one long clip, from overlapping pieces of `chunk_frames` frames.

        Frame k is centred on sample k * hop and reads the n_fft samples around it; a piece that starts a margin of
        whole hops (>= n_fft / 2) before its first frame and ends n_fft / 2 + 1 samples after its last centre gives
        exactly those frames, and the clip's own reflect padding is used at the clip's two ends."""
        fe = self.feature_extractor
        hop, half = fe.hop_length, fe.n_fft // 2
        margin = hop * -(-half // hop)
        total = fe.num_frames(clip.shape[0])
        pieces = []
        for first in range(0, total, chunk_frames):
            last = min(first + chunk_frames, total) - 1
            start = max(0, first * hop - margin)
            end = min(clip.shape[0], last * hop + half + 1)
            offset = (first * hop - start) // hop
            pieces.append(fe.log_mel(clip[None, start:end])[0, offset : offset + last - first + 1])
        return torch.cat(pieces)

    def arrange(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens (batch, time * freq, D), time-major, -> frames (batch, time, freq * D) in `self.layout`."""
        batch, num_tokens, hidden = tokens.shape
        num_time = num_tokens // self.num_freq_patches
        if self.layout == "time_major":
            # Token t * F + f is patch (t, f): frame t = [patch (t, 0) | patch (t, 1) | ... ].
            return tokens.reshape(batch, num_time, self.num_freq_patches * hidden)
        # The authors' `b (f t) d -> b t (f d)`: token index read as f * T + t although it is t * F + f.
        grid = tokens.reshape(batch, self.num_freq_patches, num_time, hidden)  # (B, "f", "t", D)
        return grid.transpose(1, 2).reshape(batch, num_time, self.num_freq_patches * hidden)

    def _encode(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, mels) -> per-frame embeddings (batch, ceil(frames / patch_time), freq * D)."""
        hidden = self.encoder(log_mel, return_dict=True).last_hidden_state  # (B, [1 +] P, D)
        if self.encoder.config.use_cls_token:
            hidden = hidden[:, 1:]  # CLS dropped
        return self.arrange(hidden)

    def num_output_frames(self, num_log_mel_frames: int) -> int:
        """Frames left after the padding frames are dropped (the HEAR rule); equals ceil(T / patch_time)."""
        if (
            isinstance(num_log_mel_frames, bool)
            or not isinstance(num_log_mel_frames, numbers.Integral)
            or num_log_mel_frames < 1
        ):
            raise ValueError(f"num_log_mel_frames={num_log_mel_frames!r} is invalid; expected a positive integer.")
        if self.mode == "whole":
            return -(-num_log_mel_frames // self.patch_time)
        window = self.frames_per_window
        pad = window - num_log_mel_frames % window  # a full extra window when T is already a multiple
        num_windows = (num_log_mel_frames + pad) // window
        return num_windows * self.tokens_per_window - int(self.tokens_per_window * pad / window)

    @torch.no_grad()
    def embed_log_mel(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Timestamp embeddings of normalised log-mels: (n, T, mels) -> (n, frames, timestamp_embedding_size)."""
        if not isinstance(log_mel, torch.Tensor) or not log_mel.is_floating_point():
            raise TypeError(
                f"log_mel must be a float torch.Tensor (n_sounds, frames, mels), got {_describe(log_mel)}."
            )
        if log_mel.ndim == 4 and log_mel.shape[1] == 1:
            log_mel = log_mel[:, 0]  # the authors' (n, 1, T, mels)
        mels = self.encoder.config.num_mel_bins
        if log_mel.ndim != 3 or log_mel.shape[0] == 0 or log_mel.shape[1] == 0 or log_mel.shape[2] != mels:
            raise ValueError(
                f"log_mel has shape {tuple(log_mel.shape)}; expected (n_sounds, frames, {mels}) with at least one "
                "sound and one frame."
            )
        _check_finite(log_mel, "log_mel", "values")
        return self._embed_log_mel(log_mel)

    def _embed_log_mel(self, log_mel: torch.Tensor) -> torch.Tensor:
        log_mel = log_mel.to(self.device, torch.float32)
        n, frames, mels = log_mel.shape
        num_out = self.num_output_frames(frames)
        out = log_mel.new_empty(n, num_out, self.timestamp_embedding_size)
        if self.mode == "whole":
            # Clips per encoder call: as many as fit in window_batch_size windows' worth of frames (at least one).
            per_call = max(1, (self.window_batch_size * self.frames_per_window) // frames)
            for start in range(0, n, per_call):
                out[start : start + per_call] = self._encode(log_mel[start : start + per_call])[:, :num_out]
            return out

        window = self.frames_per_window
        # Only the windows that hold a kept frame are encoded: a window made only of padding (the "full extra
        # window") loses all its frames, and windows are encoded independently, so skipping it changes nothing.
        needed = -(-num_out // self.tokens_per_window)
        padded = F.pad(log_mel, (0, 0, 0, needed * window - frames))[:, : needed * window]  # zero = normalised mean
        windows = padded.reshape(n * needed, window, mels)  # clip-major: window w of clip i at i * needed + w
        for start in range(0, n * needed, self.window_batch_size):
            encoded = self._encode(windows[start : start + self.window_batch_size])  # (b, 50, size)
            for j, k in enumerate(range(start, start + encoded.shape[0])):
                clip, w = divmod(k, needed)
                lo = w * self.tokens_per_window
                hi = min(lo + self.tokens_per_window, num_out)
                out[clip, lo:hi] = encoded[j, : hi - lo]
        return out

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_sounds, n_samples) at 16 kHz -> (embeddings (n, frames, size), timestamps (n, frames) in ms)."""
        return get_timestamp_embeddings(audio, self)


def _encoder_of(model: nn.Module) -> SpectrogramEncoderMixin:
    """The encoder of an AxLSTM or SSAST model (the model itself, or its `base_model` when it has a head)."""
    if isinstance(model, SpectrogramEncoderMixin):
        return model
    encoder = getattr(model, "base_model", None)
    if isinstance(encoder, SpectrogramEncoderMixin):
        return encoder
    raise TypeError(
        f"expected an AxLSTM or SSAST model (AxLSTMModel / SSASTModel or one with a head), got {type(model)}."
    )


def _check_audio(audio: torch.Tensor, model: AxLSTMHEARModel) -> torch.Tensor:
    if not isinstance(model, AxLSTMHEARModel):
        raise TypeError(f"model must come from hf_axlstm.hear.load_model, got {type(model).__name__}.")
    if not isinstance(audio, torch.Tensor):
        raise TypeError(f"audio must be a torch.Tensor of shape (n_sounds, n_samples), got {type(audio).__name__}.")
    if audio.ndim != 2:
        raise ValueError(
            f"audio has shape {tuple(audio.shape)}; the HEAR API takes (n_sounds, n_samples) at 16 kHz "
            "(use audio.unsqueeze(0) for one sound)."
        )
    if not audio.is_floating_point():
        raise TypeError(f"audio must be a float tensor, got {audio.dtype}.")
    if audio.device.type == "meta":
        raise ValueError("audio is a tensor on the meta device: it holds no samples.")
    minimum = model.feature_extractor.min_num_samples
    if audio.shape[0] == 0 or audio.shape[1] < minimum:
        raise ValueError(f"audio has shape {tuple(audio.shape)}; need at least one sound of >= {minimum} samples.")
    _check_finite(audio, "audio", "samples")
    converted = audio.to(model.device, torch.float32)
    if audio.dtype == torch.float64:
        _check_finite(converted, "audio", "samples", note=" after the cast to float32 (|x| > 3.4e38)")
    return converted


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _check_finite(tensor: torch.Tensor, name: str, what: str, note: str = "") -> None:
    """Raise naming the first sound (along dim 0) holding NaN or Inf."""
    found = first_non_finite(tensor)
    if found is not None:
        raise ValueError(f"{name}[{found[0]}] has {found[1]} {what}{note}; the HEAR API needs finite values.")


def get_timestamp_embeddings(audio: torch.Tensor, model: AxLSTMHEARModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR timestamp embeddings.

    Args:
        audio (`torch.Tensor` of shape `(n_sounds, n_samples)`): float audio at 16 kHz.
        model ([`AxLSTMHEARModel`]): from [`load_model`].

    Returns:
        `(embeddings, timestamps)`: `(n_sounds, frames, timestamp_embedding_size)` float32 and `(n_sounds, frames)`
        frame times in ms (`k * clip_seconds / frames * 1000`), both on the model's device.
    """
    audio = _check_audio(audio, model)
    with torch.no_grad():
        log_mel = model.log_mel(audio)
        found = first_non_finite(log_mel)
        if found is not None:
            bad = found[0]
            raise ValueError(
                f"audio[{bad}] gives non-finite log-mel features: its samples reach |x| = "
                f"{float(audio[bad].abs().max()):.3g} and the power spectrum overflows float32; audio is expected in "
                "[-1, 1]."
            )
        embeddings = model._embed_log_mel(log_mel)
    n, frames, _ = embeddings.shape
    step_ms = audio.shape[1] / model.sample_rate / frames * 1000.0
    timestamps = torch.arange(frames, dtype=torch.float64, device=embeddings.device) * step_ms
    return embeddings, timestamps.to(torch.float32).expand(n, frames).clone()


def get_scene_embeddings(audio: torch.Tensor, model: AxLSTMHEARModel) -> torch.Tensor:
    """HEAR scene embeddings: the mean of the timestamp embeddings over frames, `(n_sounds, scene_embedding_size)`."""
    embeddings, _ = get_timestamp_embeddings(audio, model)
    return embeddings.mean(dim=1)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device` as a torch.device (None: CUDA when available, else the CPU); a clear error for a bad name or for
    CUDA on a machine without it."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)) or isinstance(device, bool):
        raise ValueError(f"device={device!r} is invalid; expected a device name such as 'cpu' or 'cuda'.")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a torch device; expected e.g. 'cpu', 'cuda' or 'cuda:1'."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available on this machine.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available on this machine.")
    return resolved


def load_model(
    model_path: str | os.PathLike | nn.Module = "",
    layout: str = "time_major",
    mode: str = "windows",
    device: str | torch.device | None = None,
    window_batch_size: int = 16,
    **from_pretrained_kwargs,
) -> AxLSTMHEARModel:
    """Load an AxLSTM encoder for the HEAR API.

    Args:
        model_path: a `save_pretrained` folder or a Hub id (loaded with `AutoModel`; its feature extractor is used when
            the folder has one), an official `.pth` checkpoint (converted with `hf_axlstm.convert_official`), or an
            AxLSTM model object. Required.
        layout: `"time_major"` (default, correct) or `"official"` (the authors' scrambled frames, to match their
            published numbers).
        mode: `"windows"` (default, independent 2 s windows, the paper's protocol) or `"whole"` (one sequence).
        device: where the model runs; default CUDA when available, else the CPU (a device that is not available
            here is a `ValueError`).
        window_batch_size: the most windows per encoder call (bounds memory on long audio).
        from_pretrained_kwargs: passed to `from_pretrained` (`revision`, `token`, ...).
    """
    if model_path is None or (isinstance(model_path, (str, os.PathLike)) and not str(model_path)):
        raise ValueError(
            "load_model needs model_path: a save_pretrained folder, a Hub model id or an official .pth checkpoint."
        )
    if not isinstance(model_path, (str, os.PathLike, nn.Module)):
        raise TypeError(
            f"model_path must be a folder, a Hub model id, a .pth checkpoint or an AxLSTM model, got "
            f"{type(model_path).__name__}."
        )
    # Options first: a typo must not cost a download.
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is invalid; expected one of {list(LAYOUTS)}.")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is invalid; expected one of {list(MODES)}.")
    if isinstance(window_batch_size, bool) or not isinstance(window_batch_size, int) or window_batch_size < 1:
        raise ValueError(f"window_batch_size={window_batch_size!r} is invalid; expected a positive integer.")
    device = resolve_device(device)
    feature_extractor = None
    if isinstance(model_path, nn.Module):
        encoder = model_path
    elif Path(model_path).is_file():
        from .convert_official import convert_checkpoint

        encoder = convert_checkpoint(model_path)
    else:
        from transformers import AutoFeatureExtractor, AutoModel

        source = os.fspath(model_path)
        local = Path(source)
        if local.is_dir():
            if not (local / "config.json").is_file():
                raise FileNotFoundError(
                    f"model_path {source!r} is a folder without config.json: not a save_pretrained folder."
                )
        else:
            from huggingface_hub.utils import HFValidationError, validate_repo_id

            try:
                validate_repo_id(source)
            except HFValidationError:
                raise FileNotFoundError(
                    f"model_path {source!r} does not exist locally and is not a valid Hub model id "
                    "('name' or 'namespace/name')."
                ) from None
        try:
            encoder = AutoModel.from_pretrained(source, **from_pretrained_kwargs)
        except OSError as err:
            if local.is_dir():
                raise
            raise OSError(
                f"model_path {source!r} is not a local folder or file, and loading it as a Hub model id failed: {err}"
            ) from err
        # The paper's log-mel when there is no preprocessor_config.json; an invalid one is an error, not ignored.
        if local.is_dir():
            if (local / "preprocessor_config.json").is_file():
                feature_extractor = AutoFeatureExtractor.from_pretrained(source, **from_pretrained_kwargs)
        else:
            try:
                feature_extractor = AutoFeatureExtractor.from_pretrained(source, **from_pretrained_kwargs)
            except OSError:
                feature_extractor = None
        if feature_extractor is not None and not isinstance(feature_extractor, AxLSTMFeatureExtractor):
            raise ValueError(
                f"{model_path} has a {type(feature_extractor).__name__}; expected AxLSTMFeatureExtractor."
            )
    model = AxLSTMHEARModel(encoder, feature_extractor, layout=layout, mode=mode, window_batch_size=window_batch_size)
    return model.to(device).eval()


__all__ = [
    "AxLSTMHEARModel",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_model",
    "resolve_device",
]

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Input validation of AxLSTM and SSAST in one place: the models' inputs and labels, and the feature extractor's
arguments (its configuration and the options of a call; the waveform rules are `audio_rules_axlstm.py`'s).

Every check raises a `TypeError` / `ValueError` that names the argument, the value and what is expected. The checks
that read tensor values back to Python (finite input, 0/1 masks, label ranges) are skipped while `torch.compile` traces,
so they cause no graph break; the checks of types and shapes always run.

Self-contained (torch, numpy, transformers and its sibling `audio_rules_axlstm.py`), so that it ships as Hub remote
code next to `modeling_axlstm.py` and `feature_extraction_axlstm.py`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedConfig
from transformers.utils import PaddingStrategy, TensorType

from .audio_rules_axlstm import MAX_SAMPLING_RATE, RESAMPLE_HINT

# Why `output_attentions=True` is refused, per model (its `_attention_message`).
ATTENTION_MESSAGES = {
    "axlstm": (
        "output_attentions=True is not supported: AxLSTM has no attention maps (its blocks are mLSTM cells, not "
        "attention); output_hidden_states=True returns every block's output."
    ),
    "ssast": (
        "output_attentions=True is not supported: SSAST here runs fused scaled_dot_product_attention, which does not "
        "materialise the attention maps; output_hidden_states=True returns every block's output."
    ),
}


def prepare_input(
    config: PreTrainedConfig, input_values: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate (batch, frames, mels), zero the padded frames and pad the time axis to a multiple of the patch."""
    if not isinstance(input_values, torch.Tensor):
        raise TypeError(
            f"input_values must be a torch.Tensor of shape (batch, frames, mels), got {type(input_values).__name__}; "
            "AxLSTMFeatureExtractor(..., return_tensors='pt') makes one."
        )
    if not input_values.is_floating_point():
        raise TypeError(
            f"input_values has dtype {input_values.dtype}; expected a floating-point log-mel spectrogram "
            "(AxLSTMFeatureExtractor's output), not raw integer samples."
        )
    if input_values.ndim == 4 and input_values.shape[1] == 1:
        input_values = input_values[:, 0]  # the authors' (batch, 1, frames, mels) layout
    if input_values.ndim != 3:
        raise ValueError(
            f"input_values has shape {tuple(input_values.shape)}; expected (batch, frames, {config.num_mel_bins}) "
            "(or (batch, 1, frames, mels)). For a single clip use input_values.unsqueeze(0)."
        )
    batch, frames, mels = input_values.shape
    if mels != config.num_mel_bins:
        raise ValueError(
            f"input_values has {mels} mel bins (shape {tuple(input_values.shape)}); the model expects "
            f"config.num_mel_bins={config.num_mel_bins} in the last dimension, laid out (batch, frames, mels)."
        )
    if batch == 0:
        raise ValueError(
            f"input_values has an empty batch (shape {tuple(input_values.shape)}); expected 1 clip or more."
        )
    if frames == 0:
        raise ValueError("input_values has 0 frames; expected at least one log-mel frame.")
    if attention_mask is not None:
        check_binary_layout("attention_mask", attention_mask, (batch, frames), "(batch, frames)")
        attention_mask = attention_mask.to(input_values.device)
    # Value checks read one flag back to Python for all of them (the details only on failure); skipped while
    # torch.compile traces (no graph breaks).
    if not torch.compiler.is_compiling() and bool(any_bad_value(input_values, attention_mask)):
        raise_bad_value(input_values, attention_mask)
    if attention_mask is not None:
        attention_mask = attention_mask.bool()
        input_values = input_values.masked_fill(~attention_mask.unsqueeze(-1), 0.0)
    pad = -frames % config.patch_size[0]
    # Traced (export, torch.compile): always pad (by 0 when aligned), so the graph does not branch on frames % 4 and
    # one dynamic-shape graph serves every length.
    if torch.compiler.is_compiling() or pad:
        input_values = F.pad(input_values, (0, 0, 0, pad))
        if attention_mask is not None:
            attention_mask = F.pad(attention_mask, (0, pad))
    return input_values, attention_mask


def any_bad_value(input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """One boolean tensor: True when `input_values` is not finite or `attention_mask` is not a right-padded 0/1 mask
    with a real frame in every clip. The input's check is its sum (one pass, no temporary: NaN and Inf propagate); a
    finite input whose sum overflows is cleared by `raise_bad_value`'s exact check."""
    bad = ~torch.isfinite(input_values.sum())
    if attention_mask is not None:
        real = attention_mask != 0
        if attention_mask.dtype != torch.bool:
            bad = bad | (real & (attention_mask != 1)).any()
        bad = bad | ~real.any(dim=1).all() | (real[:, 1:] & ~real[:, :-1]).any()
    return bad


def raise_bad_value(input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
    """The specific error behind `any_bad_value` (none when only the input's sum overflowed)."""
    finite = torch.isfinite(input_values)
    if not bool(finite.all()):
        bad = sorted({int(i) for i in (~finite).flatten(1).any(dim=1).nonzero().flatten()})
        raise ValueError(
            f"input_values has NaN or infinite values (in clips {bad[:8]}); the log-mel must be finite (check the "
            "audio for NaN/Inf samples)."
        )
    if attention_mask is None:
        return
    check_binary_values("attention_mask", attention_mask)
    real = attention_mask.bool()
    if not bool(real.any(dim=1).all()):
        raise ValueError("attention_mask has a clip with no real frame; every clip needs at least one.")
    if not bool((real[:, 1:] & ~real[:, :-1]).any()):
        return
    raise ValueError(
        "attention_mask has padding before real frames; AxLSTM expects right padding (real frames first), "
        "as AxLSTMFeatureExtractor produces with padding_side='right'."
    )


def check_binary_layout(name: str, value, shape: tuple, layout: str) -> None:
    """A 0/1 mask (attention_mask, mask) must be a real (bool, integer or float) tensor of `shape` (no device read)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape {layout} = {shape} with values 0 and 1, got {type(value).__name__}."
        )
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(value.shape)}; expected {layout} = {tuple(shape)}.")
    if value.is_complex():
        raise TypeError(f"{name} has dtype {value.dtype}; expected bool, integer or float values 0 and 1.")


def check_binary_values(name: str, value: torch.Tensor) -> None:
    """Raise naming the values of a 0/1 mask that are neither 0 nor 1 (NaN included)."""
    if value.dtype == torch.bool:
        return
    wrong = value[(value != 0) & (value != 1)]
    if wrong.numel() == 0:
        return
    if value.is_floating_point():  # NaN once, not once per entry
        found = sorted({v.item() for v in wrong[~wrong.isnan()][:64]})[:8] + [float("nan")] * bool(wrong.isnan().any())
    else:
        found = sorted({int(v) for v in wrong[:64]})[:8]
    raise ValueError(f"{name} has values other than 0 and 1 (found {found}); expected 1 or 0 for every entry.")


def binary_tensor(name: str, value, shape: tuple, layout: str) -> torch.Tensor:
    """`check_binary_layout` and (outside torch.compile) `check_binary_values`; returns the tensor unchanged."""
    check_binary_layout(name, value, shape, layout)
    if not torch.compiler.is_compiling():
        check_binary_values(name, value)
    return value


def problem_type(config: PreTrainedConfig, labels: torch.Tensor) -> str:
    """The problem type transformers' sequence-classification loss will use (its rule, without setting it)."""
    if config.problem_type is not None:
        return config.problem_type
    if config.num_labels == 1:
        return "regression"
    integer = not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    if labels.dtype in (torch.long, torch.int) or (integer and labels.dim() == 1):
        return "single_label_classification"  # class indices of any integer dtype (cast to long below)
    return "multi_label_classification"


def check_labels(labels, logits: torch.Tensor, config: PreTrainedConfig) -> torch.Tensor:
    """Validate classifier labels for the problem type; returns them (integer multi-hot labels as floats)."""
    batch, num_labels = logits.shape
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}.")
    problem = problem_type(config, labels)
    checking = not torch.compiler.is_compiling()
    if problem == "single_label_classification":
        if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
            raise TypeError(
                f"labels has dtype {labels.dtype}; single-label classification expects integer class indices "
                f"(torch.long) of shape (batch,) = ({batch},) (float labels of shape (batch, num_labels) are "
                "multi-label targets)."
            )
        if labels.shape not in ((batch,), (batch, 1)):
            raise ValueError(
                f"labels has shape {tuple(labels.shape)}; single-label classification expects class indices of shape "
                f"(batch,) = ({batch},)."
            )
        if checking:
            bad = labels[((labels < 0) | (labels >= num_labels)) & (labels != -100)]
            if bad.numel():
                raise ValueError(
                    f"labels has class indices {sorted({int(v) for v in bad[:8]})} outside [0, num_labels) = "
                    f"[0, {num_labels}) (-100 marks a clip to ignore)."
                )
        return labels.long()  # int32 / int16 / uint8 indices: the cross-entropy takes int64
    if problem == "multi_label_classification":
        if labels.shape != (batch, num_labels):
            raise ValueError(
                f"labels has shape {tuple(labels.shape)} and dtype {labels.dtype}; multi-label classification expects "
                f"(batch, num_labels) = ({batch}, {num_labels}) targets in [0, 1] (for single-label, pass integer "
                "class indices of shape (batch,))."
            )
        if labels.is_complex():
            raise TypeError(f"labels has dtype {labels.dtype}; expected targets in [0, 1].")
        labels = labels.to(logits.dtype) if not labels.is_floating_point() else labels
        if checking and not bool(((labels >= 0) & (labels <= 1)).all()):
            raise ValueError("labels has multi-label targets outside [0, 1] (or NaN); expected values in [0, 1].")
        return labels
    if problem == "regression":
        if not labels.is_floating_point():
            labels = labels.to(logits.dtype)
        if labels.shape not in ((batch, num_labels), (batch,) if num_labels == 1 else (batch, num_labels)):
            raise ValueError(
                f"labels has shape {tuple(labels.shape)}; regression expects (batch, num_labels) = ({batch}, "
                f"{num_labels}) targets" + (f" or (batch,) = ({batch},)." if num_labels == 1 else ".")
            )
        if checking and not bool(torch.isfinite(labels).all()):
            raise ValueError("labels has NaN or infinite regression targets; expected finite values.")
        return labels
    raise ValueError(
        f"config.problem_type={problem!r} is invalid; expected 'regression', 'single_label_classification' or "
        "'multi_label_classification'."
    )


def check_mask_ratio(ratio) -> float:
    """A masking ratio strictly between 0 and 1."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < ratio < 1.0:
        raise ValueError(f"mask_ratio={ratio!r} is invalid; expected a number strictly between 0 and 1.")
    return ratio


def check_noise(noise, patch_mask: torch.Tensor) -> torch.Tensor:
    """The noise of a random mask: a finite floating-point tensor of `patch_mask`'s shape (batch, num_patches)."""
    if not isinstance(noise, torch.Tensor):
        raise TypeError(f"noise must be a torch.Tensor of shape (batch, num_patches), got {type(noise).__name__}.")
    if noise.shape != patch_mask.shape:
        raise ValueError(
            f"noise has shape {tuple(noise.shape)}; expected (batch, num_patches) = {tuple(patch_mask.shape)}."
        )
    if not noise.is_floating_point() or (not torch.compiler.is_compiling() and not bool(torch.isfinite(noise).all())):
        raise ValueError(
            f"noise must hold finite floating-point values (dtype {noise.dtype}); got NaN/Inf or integers."
        )
    return noise


def check_mask_or_noise(mask, noise, patch_mask: torch.Tensor) -> torch.Tensor | None:
    """A given pretraining `mask` (0/1, (batch, num_patches)), refused beside `noise`; None when not given."""
    if mask is None:
        return None
    if noise is not None:
        raise ValueError("pass either mask (the patches to mask) or noise (to draw a random mask), not both.")
    return binary_tensor("mask", mask, patch_mask.shape, "(batch, num_patches)")


def check_patchify_input(input_values, config: PreTrainedConfig) -> torch.Tensor:
    """`patchify`'s input as (batch, frames, num_mel_bins) (the authors' (batch, 1, frames, mels) squeezed)."""
    if isinstance(input_values, torch.Tensor) and input_values.ndim == 4 and input_values.shape[1] == 1:
        input_values = input_values[:, 0]
    if not isinstance(input_values, torch.Tensor) or input_values.ndim != 3:
        shape = tuple(input_values.shape) if isinstance(input_values, torch.Tensor) else type(input_values).__name__
        raise ValueError(f"patchify expects input_values of shape (batch, frames, mels), got {shape}.")
    mels = input_values.shape[-1]
    if mels != config.num_mel_bins:
        raise ValueError(
            f"patchify got {mels} mel bins (shape {tuple(input_values.shape)}); expected "
            f"config.num_mel_bins={config.num_mel_bins}."
        )
    return input_values


def check_patches(patches, config: PreTrainedConfig) -> None:
    """`unpatchify`'s input: (batch, num_patches, patch_time * patch_freq), whole time steps of patches."""
    pt, pf = config.patch_size
    nf = config.num_freq_patches
    if (
        not isinstance(patches, torch.Tensor)
        or patches.ndim != 3
        or patches.shape[-1] != pt * pf
        or patches.shape[1] % nf
    ):
        shape = tuple(patches.shape) if isinstance(patches, torch.Tensor) else type(patches).__name__
        raise ValueError(
            f"unpatchify expects patches of shape (batch, num_patches, {pt * pf}) with num_patches a multiple of "
            f"{nf} (the patches per time step), got {shape}."
        )


# ------------------------------------------------------------------------------- feature extractor arguments

# Upper bounds of the sizes (a crafted preprocessor_config.json must not make the extractor allocate gigabytes):
# generous for any real front end (the AxLSTM one uses 80 bins, n_fft 400, 16 kHz), small enough that the mel filter
# bank (n_fft // 2 + 1) x feature_size in float64 stays below ~70 MB.
MAX_FEATURE_SIZE = 512
MAX_N_FFT = 32768
MAX_HOP_LENGTH = 32768
# Longest padded / truncated output `padding="max_length"` may ask for: one hour of audio.
MAX_SECONDS = 3600


def _positive_int(name: str, value: Any, maximum: int) -> int:
    """A positive integer (at most `maximum`); an integral float such as 400.0 (hand-written JSON) is taken as 400."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a positive integer, got {value!r} ({type(value).__name__}).")
    if not isinstance(value, numbers.Integral) and not (math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"`{name}` must be a positive integer, got the fractional number {value!r}.")
    if value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    if value > maximum:
        raise ValueError(
            f"`{name}`={value!r} is too large: at most {maximum} is accepted (a sanity bound of this extractor)."
        )
    return int(value)


def check_extractor_config(extractor) -> None:
    """Check every constructor value of an `AxLSTMFeatureExtractor` (also on `from_pretrained`), raising `ValueError`
    naming it; integral values are stored as `int`."""
    for name, maximum in (
        ("feature_size", MAX_FEATURE_SIZE),
        ("sampling_rate", MAX_SAMPLING_RATE),
        ("n_fft", MAX_N_FFT),
        ("win_length", MAX_N_FFT),
        ("hop_length", MAX_HOP_LENGTH),
    ):
        setattr(extractor, name, _positive_int(name, getattr(extractor, name), maximum))
    if extractor.win_length > extractor.n_fft:
        raise ValueError(f"`win_length` ({extractor.win_length}) must not exceed `n_fft` ({extractor.n_fft}).")
    if not isinstance(extractor.mel_scale, str) or extractor.mel_scale not in ("htk", "slaney"):
        raise ValueError(f'`mel_scale` must be "htk" or "slaney", got {extractor.mel_scale!r}.')
    for name in ("f_min", "f_max", "log_offset", "normalize_eps", "padding_value"):
        value = getattr(extractor, name)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise ValueError(f"`{name}` must be a number, got {value!r} ({type(value).__name__}).")
        if not math.isfinite(value):
            raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    if not 0.0 <= extractor.f_min < extractor.f_max <= extractor.sampling_rate / 2:
        raise ValueError(
            f"Need 0 <= f_min < f_max <= sampling_rate / 2, got f_min={extractor.f_min!r}, f_max={extractor.f_max!r}, "
            f"sampling_rate={extractor.sampling_rate}."
        )
    if not extractor.log_offset > 0:
        raise ValueError(
            f"`log_offset` must be a positive number (log(0) of silent frames is -inf), got {extractor.log_offset!r}."
        )
    if extractor.normalize_eps < 0:
        raise ValueError(f"`normalize_eps` must be a non-negative number, got {extractor.normalize_eps!r}.")
    for name in ("do_normalize", "return_attention_mask"):
        value = getattr(extractor, name)
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"`{name}` must be True or False, got {value!r} ({type(value).__name__}).")
        setattr(extractor, name, bool(value))
    check_padding_side(extractor.padding_side)


def check_padding_side(side: Any) -> str:
    """`"right"` or `"left"`."""
    if not isinstance(side, str) or side not in ("right", "left"):
        raise ValueError(f'`padding_side` must be "right" or "left", got {side!r}.')
    return side


def check_call_arguments(extractor, kwargs: dict, sampling_rate: Any) -> None:
    """An extractor call takes no other keyword argument (a misspelt `sampling_rate` must not be ignored), and its
    `sampling_rate`, when given, is the extractor's."""
    name = type(extractor).__name__
    if kwargs:
        raise TypeError(
            f"{name}.__call__ got unexpected keyword argument(s) {sorted(kwargs)}; it takes "
            "sampling_rate, padding, max_length, max_frames, truncation, pad_to_multiple_of, return_tensors, "
            "return_attention_mask, device and padding_side."
        )
    if sampling_rate is None:
        return
    if isinstance(sampling_rate, (bool, np.bool_)) or not isinstance(sampling_rate, numbers.Real):
        raise TypeError(
            f"`sampling_rate` must be a number of Hz, got {sampling_rate!r} ({type(sampling_rate).__name__})."
        )
    if not math.isfinite(sampling_rate) or sampling_rate <= 0:
        raise ValueError(f"`sampling_rate` must be a positive number of Hz, got {sampling_rate!r}.")
    if sampling_rate != extractor.sampling_rate:
        raise ValueError(
            f"`sampling_rate`={sampling_rate!r} does not match the model: {name} expects audio sampled at "
            f"{extractor.sampling_rate} Hz. {RESAMPLE_HINT.format(rate=extractor.sampling_rate)}"
        )


def check_return_tensors(return_tensors: Any) -> str | None:
    """`"pt"`, `"np"` (or the matching `TensorType`) or None."""
    if return_tensors is None:
        return None
    try:
        return_tensors = TensorType(return_tensors).value
    except (ValueError, TypeError):
        pass
    if return_tensors not in ("pt", "np"):
        raise ValueError(f'`return_tensors` must be "pt", "np" or None, got {return_tensors!r}.')
    return return_tensors


def resolve_lengths(extractor, padding, max_length, max_frames, truncation, pad_to_multiple_of, return_attention_mask):
    """Check an extractor call's length options; returns (padding strategy, length limit in frames or None, its
    name for messages)."""
    if padding is True:
        strategy = PaddingStrategy.LONGEST
    elif padding is False or padding is None:
        strategy = PaddingStrategy.DO_NOT_PAD
    else:
        try:
            strategy = PaddingStrategy(padding)
        except (ValueError, TypeError):
            raise ValueError(
                f"`padding`={padding!r} is not supported: use True/'longest', 'max_length' or False/'do_not_pad'."
            ) from None
    for name, value in (("truncation", truncation), ("return_attention_mask", return_attention_mask)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be True, False or None, got {value!r} ({type(value).__name__}).")
    max_samples = MAX_SECONDS * extractor.sampling_rate
    max_hour_frames = extractor.num_frames(max_samples)
    for name, value, unit in (
        ("max_length", max_length, "a number of samples"),
        ("max_frames", max_frames, "a number of frames"),
        ("pad_to_multiple_of", pad_to_multiple_of, "a number of frames"),
    ):
        if value is not None and (
            isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1
        ):
            raise ValueError(f"`{name}` must be a positive integer ({unit}), got {value!r}.")
    if max_length is not None and max_frames is not None:
        raise ValueError(
            f"Pass either `max_length` (samples) or `max_frames` (frames), not both: got max_length={max_length!r} "
            f"and max_frames={max_frames!r}."
        )
    limit, limit_name = None, None
    if max_length is not None:
        if max_length < extractor.min_num_samples:
            raise ValueError(
                f"`max_length`={max_length!r} counts samples of raw audio, and is shorter than the shortest clip "
                f"this extractor accepts ({extractor.min_num_samples} samples at {extractor.sampling_rate} Hz). For a "
                f"length in frames, pass `max_frames={max_length}` instead."
            )
        if max_length > max_samples:
            raise ValueError(
                f"`max_length`={max_length!r} samples is too large: at most {max_samples} "
                f"(one hour at {extractor.sampling_rate} Hz) is accepted."
            )
        limit = extractor.num_frames(int(max_length))
        limit_name = f"max_length={max_length} samples ({limit} frames)"
    elif max_frames is not None:
        if max_frames > max_hour_frames:
            raise ValueError(
                f"`max_frames`={max_frames!r} is too large: at most {max_hour_frames} frames (one hour) is accepted."
            )
        limit, limit_name = int(max_frames), f"max_frames={max_frames}"
    if pad_to_multiple_of is not None and pad_to_multiple_of > max_hour_frames:
        raise ValueError(
            f"`pad_to_multiple_of`={pad_to_multiple_of!r} is too large: at most {max_hour_frames} frames (one "
            "hour) is accepted."
        )
    if strategy == PaddingStrategy.MAX_LENGTH and limit is None:
        raise ValueError('`padding="max_length"` requires `max_length` (in samples) or `max_frames`.')
    if truncation and limit is None:
        raise ValueError("`truncation=True` requires `max_length` (in samples) or `max_frames`.")
    if limit is not None and strategy != PaddingStrategy.MAX_LENGTH and not truncation:
        given = f"`max_length`={max_length!r}" if max_length is not None else f"`max_frames`={max_frames!r}"
        raise ValueError(
            f"{given} has no effect with padding={padding!r} and truncation=False: pass padding='max_length' "
            "and/or truncation=True, or leave it out."
        )
    return strategy, limit, limit_name


def resolve_device(device: Any, raw_speech: Any) -> torch.device:
    """The device to compute on: `device`, else that of the (first) input tensor, else the CPU."""
    if device is not None:
        try:
            target = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"`device`={device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1').") from None
        if target.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"`device`={device!r} was requested but CUDA is not available on this machine.")
        return target
    first = raw_speech
    while isinstance(first, (list, tuple)) and len(first) > 0:
        first = first[0]
    if isinstance(first, torch.Tensor) and first.device.type != "meta":
        return first.device
    return torch.device("cpu")


__all__ = [
    "ATTENTION_MESSAGES",
    "MAX_FEATURE_SIZE",
    "MAX_HOP_LENGTH",
    "MAX_N_FFT",
    "MAX_SECONDS",
    "any_bad_value",
    "binary_tensor",
    "check_binary_layout",
    "check_binary_values",
    "check_call_arguments",
    "check_extractor_config",
    "check_labels",
    "check_mask_or_noise",
    "check_mask_ratio",
    "check_noise",
    "check_padding_side",
    "check_patches",
    "check_patchify_input",
    "prepare_input",
    "problem_type",
    "raise_bad_value",
    "check_return_tensors",
    "resolve_device",
    "resolve_lengths",
]

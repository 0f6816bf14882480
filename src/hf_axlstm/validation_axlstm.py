# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Input and label validation of the masked-spectrogram encoders (AxLSTM and SSAST), in one place.

Every check raises a `TypeError` / `ValueError` that names the argument, the value and what is expected. The checks
that read tensor values back to Python (finite input, 0/1 masks, label ranges) are skipped while `torch.compile` traces,
so they cause no graph break; the checks of types and shapes always run.

Self-contained (torch and transformers only), so that it ships as Hub remote code next to `modeling_axlstm.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedConfig

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


__all__ = [
    "ATTENTION_MESSAGES",
    "any_bad_value",
    "binary_tensor",
    "check_binary_layout",
    "check_binary_values",
    "check_labels",
    "check_mask_or_noise",
    "check_mask_ratio",
    "check_noise",
    "check_patches",
    "check_patchify_input",
    "prepare_input",
    "problem_type",
    "raise_bad_value",
]

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""AxLSTM (Audio xLSTM) model configuration."""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

import numpy as np
from transformers import PreTrainedConfig

# The paper's sizes (Yadav, Theodoridis & Tan, arXiv 2408.16568, Table 1). Only the width changes:
# every size has 12 blocks, expansion 2, 4x4 q/k/v blocks and 4 mLSTM heads.
AXLSTM_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"hidden_size": 192},
    "small": {"hidden_size": 384},
    "base": {"hidden_size": 768},
}

_LOSS_ON = ("all", "masked")
_POOLING = ("mean", "cls")
_BACKENDS = ("auto", "parallel", "chunkwise", "triton")
_INT_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "expansion_factor",
    "qkv_block_size",
    "num_heads",
    "conv_kernel_size",
    "num_mel_bins",
    "frames_per_window",
    "chunk_size",
)
_BOOL_FIELDS = ("use_cls_token", "mask_token_positions", "alternate_directions")

# Sanity bounds of the sizes, far above every configuration in use (the paper's largest: hidden_size 768, 12 blocks,
# 200-frame windows), so that a crafted config.json (or a typo) fails with a clear error instead of trying to
# allocate gigabytes to terabytes. Sizes shared by the AxLSTM and SSAST configs:
SIZE_BOUNDS: dict[str, int] = {
    "hidden_size": 4096,
    "num_hidden_layers": 256,
    "num_mel_bins": 512,
    "frames_per_window": 6000,  # 60 s at a 10 ms hop
    "patch_size": 1024,
    "num_labels": 100000,
}
AXLSTM_SIZE_BOUNDS: dict[str, int] = {
    **SIZE_BOUNDS,
    "expansion_factor": 16,
    "qkv_block_size": 1024,
    "num_heads": 1024,
    "conv_kernel_size": 64,
    "chunk_size": 4096,
}


def _as_int(name: str, value: Any, maximum: int | None = None) -> int:
    """A positive integer, at most `maximum` (an integral float such as 4.0, e.g. from hand-written JSON, is taken
    as 4)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} is invalid; expected a positive integer, got a {type(value).__name__}.")
    if not isinstance(value, numbers.Integral) and not (math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"{name}={value!r} is invalid; expected a positive integer, not a fractional number.")
    if value <= 0:
        raise ValueError(f"{name}={value!r} is invalid; expected a positive integer.")
    if maximum is not None and value > maximum:
        raise ValueError(
            f"{name}={value!r} is too large; expected at most {maximum} (a sanity bound: larger sizes would allocate "
            "gigabytes)."
        )
    return int(value)


def check_labels(self, max_labels: int) -> None:
    """`id2label` must map the class indices 0..n-1, each once (keys may be ints or their strings, as JSON gives
    them): the classifier's outputs are read through it, so a gap ({0, 5}) would fail at the first prediction."""
    check_id2label(getattr(self, "id2label", None), max_labels)


def check_label_arguments(kwargs: dict[str, Any], max_labels: int) -> None:
    """`num_labels` / `id2label` keyword arguments, checked before `PreTrainedConfig` builds a label map from them
    (`num_labels=10**9` would build a dict of a billion names first)."""
    if "num_labels" in kwargs and kwargs["num_labels"] is not None:
        value = kwargs["num_labels"]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"num_labels={value!r} is invalid; expected a positive integer.")
        if value > max_labels:
            raise ValueError(f"num_labels={value!r} is too large; expected at most {max_labels} (a sanity bound).")
    check_id2label(kwargs.get("id2label"), max_labels)


def check_id2label(id2label: Any, max_labels: int) -> None:
    if id2label is None:
        return
    if not isinstance(id2label, dict):
        raise ValueError(f"id2label={id2label!r} is invalid; expected a dict from class index to label name.")
    if len(id2label) > max_labels:
        raise ValueError(f"id2label has {len(id2label)} labels; expected at most {max_labels} (a sanity bound).")
    indices = []
    for key in id2label:
        index = key
        if isinstance(key, str) and key.strip().lstrip("-").isdigit():
            index = int(key)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
            raise ValueError(f"id2label has the key {key!r}; expected class indices 0..{len(id2label) - 1}.")
        indices.append(int(index))
    if sorted(indices) != list(range(len(indices))):
        raise ValueError(
            f"id2label has the keys {sorted(indices)}; expected the class indices 0..{len(indices) - 1}, each once "
            "(one per output of the classifier)."
        )


def _as_float(name: str, value: Any, what: str = "a finite number") -> float:
    """A finite real number (bools and strings refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} is invalid; expected {what}, got a {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is invalid; expected {what}.")
    return float(value)


def validate_spectrogram_fields(self, int_fields, bool_fields, non_negative_fields, bounds=None) -> None:
    """The checks every masked-spectrogram config of this package shares (AxLSTM's and SSAST's): positive integer
    sizes (each at most its entry in `bounds`), the patch grid, `id2label`, bool flags, the masking and head options;
    values are stored as plain int / float / bool."""
    bounds = SIZE_BOUNDS if bounds is None else bounds
    for name in int_fields:
        setattr(self, name, _as_int(name, getattr(self, name), bounds.get(name)))
    patch = self.patch_size
    if isinstance(patch, tuple):
        patch = list(patch)
    if not isinstance(patch, list) or len(patch) != 2:
        raise ValueError(f"patch_size={patch!r} is invalid; expected two positive integers (time, frequency).")
    try:
        self.patch_size = [_as_int(f"patch_size[{i}]", p, bounds.get("patch_size")) for i, p in enumerate(patch)]
    except ValueError as err:
        raise ValueError(f"patch_size={patch!r} is invalid: {err}") from None
    patch = self.patch_size
    check_labels(self, bounds.get("num_labels", SIZE_BOUNDS["num_labels"]))
    for name in bool_fields:
        value = getattr(self, name)
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name}={value!r} is invalid; expected True or False, got a {type(value).__name__}.")
        setattr(self, name, bool(value))
    if self.num_mel_bins % patch[1] != 0:
        raise ValueError(
            f"num_mel_bins={self.num_mel_bins} is not divisible by the patch height in frequency "
            f"patch_size[1]={patch[1]}."
        )
    if self.hidden_size % 4 != 0:
        raise ValueError(
            f"hidden_size={self.hidden_size} must be divisible by 4 for the 2-D sin-cos position embedding."
        )
    if not 0.0 < _as_float("mask_ratio", self.mask_ratio, "a number strictly between 0 and 1") < 1.0:
        raise ValueError(f"mask_ratio={self.mask_ratio!r} is invalid; expected a number strictly between 0 and 1.")
    self.mask_ratio = float(self.mask_ratio)
    for name, choices in (
        ("loss_on", _LOSS_ON),
        ("classifier_pooling", _POOLING),
    ):
        value = getattr(self, name)
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{name}={value!r} is invalid; expected one of {list(choices)}.")
    if self.classifier_pooling == "cls" and not self.use_cls_token:
        raise ValueError("classifier_pooling='cls' needs use_cls_token=True.")
    for name in ("classifier_dropout", "drop_path_rate"):
        value = getattr(self, name)
        if not 0.0 <= _as_float(name, value, "a number in [0, 1)") < 1.0:
            raise ValueError(f"{name}={value!r} is invalid; expected a number in [0, 1).")
        setattr(self, name, float(value))
    for name in non_negative_fields:
        value = getattr(self, name)
        if _as_float(name, value, "a finite non-negative number") < 0:
            raise ValueError(f"{name}={value!r} is invalid; expected a finite non-negative number.")
        setattr(self, name, float(value))


class SpectrogramPatchMixin:
    """What the AxLSTM and SSAST configs share: the checks run before `PreTrainedConfig.__init__` (whose validators
    read derived sizes such as `head_dim`) and again after `from_dict` (which applies `from_pretrained` overrides with
    setattr), `label2id` from `id2label`, `from_preset`, and the sizes derived from the patch grid. A config class
    sets `_presets` and `_family` and implements `_check_fields`."""

    _presets: dict[str, dict[str, Any]] = {}
    _family = ""

    def __init__(self, **kwargs):
        self._check_fields()
        check_label_arguments(kwargs, SIZE_BOUNDS["num_labels"])
        super().__init__(**kwargs)
        if self.id2label is not None and self.label2id is None:
            self.label2id = {label: idx for idx, label in self.id2label.items()}
        self._hide_hub_pipelines()

    def _hide_hub_pipelines(self) -> None:
        """A folder shared with its pipeline (`pipeline.save_pretrained` / `push_to_hub`) has `custom_pipelines` in
        its config.json, which makes transformers' `pipeline()` demand `trust_remote_code=True`. Where the installed
        hf_axlstm is imported, its registered pipeline serves the task, so the entry is kept aside (and written back by
        `to_dict`) instead of being seen by `pipeline()`."""
        if sys.modules.get("hf_axlstm") is not None and "custom_pipelines" in self.__dict__:
            self.__dict__["_hub_custom_pipelines"] = self.__dict__.pop("custom_pipelines")

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        hidden = output.pop("_hub_custom_pipelines", None)
        if hidden is not None and "custom_pipelines" not in output:
            output["custom_pipelines"] = hidden
        if isinstance(output.get("custom_pipelines"), dict):  # pipeline() swaps the class names for classes in place
            output["custom_pipelines"] = {
                task: {
                    key: [c if isinstance(c, str) else c.__name__ for c in value] if key == "pt" else value
                    for key, value in info.items()
                }
                if isinstance(info, dict)
                else info
                for task, info in output["custom_pipelines"].items()
            }
        return output

    def _check_fields(self) -> None:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs):
        check_label_arguments(kwargs, SIZE_BOUNDS["num_labels"])
        output = super().from_dict(config_dict, **kwargs)
        config = output[0] if isinstance(output, tuple) else output
        config._check_fields()
        config._hide_hub_pipelines()
        return output

    @classmethod
    def from_preset(cls, name: str, **overrides):
        """Configuration of one of the paper's sizes (`"tiny"`, `"small"`, `"base"`), with `overrides` applied."""
        if name not in cls._presets:
            raise ValueError(
                f"preset={name!r} is not a known {cls._family} preset; expected one of {sorted(cls._presets)}."
            )
        return cls(**{**cls._presets[name], **overrides})

    @property
    def num_freq_patches(self) -> int:
        """Number of patches along the mel axis (5 for 80 bins and 16-bin patches)."""
        return self.num_mel_bins // self.patch_size[1]

    @property
    def patch_dim(self) -> int:
        """Number of log-mel values in one patch (64 for 4 x 16 patches): the reconstruction target size."""
        return self.patch_size[0] * self.patch_size[1]

    @property
    def num_patches_per_window(self) -> int:
        """Number of patches of one `frames_per_window` window (250 for 200 frames)."""
        return -(-self.frames_per_window // self.patch_size[0]) * self.num_freq_patches


class AxLSTMConfig(SpectrogramPatchMixin, PreTrainedConfig):
    r"""
    Configuration of an AxLSTM encoder: an SSAST-style masked-spectrogram model whose transformer blocks are
    Vision-LSTM mLSTM blocks that alternate their traversal direction. The defaults give AxLSTM-Base as the authors
    trained it; `AxLSTMConfig.from_preset("tiny" | "small" | "base", **overrides)` gives the paper's sizes.

    Args:
        hidden_size (`int`, *optional*, defaults to 768):
            Width `D` of the token embeddings and of the residual stream (tiny 192, small 384, base 768).
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of mLSTM blocks.
        expansion_factor (`int`, *optional*, defaults to 2):
            Width of the mLSTM branch inside a block as a multiple of `hidden_size` (`I = expansion_factor * D`).
        qkv_block_size (`int`, *optional*, defaults to 4):
            Size of the square blocks of the block-diagonal query, key and value projections (`I / qkv_block_size`
            blocks of `qkv_block_size x qkv_block_size`).
        num_heads (`int`, *optional*, defaults to 4):
            Number of mLSTM heads (the head dimension is `I / num_heads`). The authors use 4 for every size.
        conv_kernel_size (`int`, *optional*, defaults to 4):
            Kernel size of the causal depthwise convolution before the query/key projections.
        num_mel_bins (`int`, *optional*, defaults to 80):
            Number of log-mel bins of the input spectrogram.
        frames_per_window (`int`, *optional*, defaults to 200):
            Number of log-mel frames of one training crop / evaluation window (200 frames = 2 s at a 10 ms hop).
            The encoder itself accepts any number of frames.
        patch_size (`tuple[int, int]`, *optional*, defaults to `(4, 16)`):
            Patch size as (frames in time, mel bins in frequency). `num_mel_bins` must be divisible by the
            frequency size; inputs are zero-padded in time to a multiple of the time size.
        use_cls_token (`bool`, *optional*, defaults to `True`):
            Whether a learned CLS token (with a zero position embedding) is prepended to the patch tokens.
        mask_ratio (`float`, *optional*, defaults to 0.5):
            Fraction of patches replaced by the mask token during masked-spectrogram pretraining; in (0, 1).
        mask_token_positions (`bool`, *optional*, defaults to `False`):
            Whether the mask tokens get the position embedding too. The authors' code replaces patches by the mask
            token *after* adding the positions, so a mask token carries none (the default, for parity); `True` adds
            it, as the original SSAST does (for AxLSTM an ablation: an mLSTM knows positions from the order).
        loss_on (`str`, *optional*, defaults to `"all"`):
            Patches the reconstruction MSE averages over: `"all"` (masked and visible, what the authors trained with)
            or `"masked"` (masked patches only, the usual MAE choice).
        norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the pre-norm LayerNorm of every block and of the per-head group norm of the mLSTM output.
        final_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the final LayerNorm of the encoder.
        mlstm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon added to the mLSTM normaliser `n_t` before dividing.
        alternate_directions (`bool`, *optional*, defaults to `True`):
            Whether odd blocks traverse the token sequence in reverse (the Vision-LSTM scheme).
        mlstm_backend (`str`, *optional*, defaults to `"auto"`):
            Which mLSTM formulation computes the cell: `"parallel"` (stabilised quadratic form), `"chunkwise"`
            (linear in the sequence length) or `"auto"` (chosen by sequence length and device); all three give the
            same function. `"triton"` (opt-in, CUDA with NX-AI's `mlstm_kernels` installed, inference) uses their fused
            chunkwise kernel, whose stabiliser differs slightly from the authors' (see `kernels_axlstm.py`).
        chunk_size (`int`, *optional*, defaults to 64):
            Chunk length of the chunkwise mLSTM form. Under `mlstm_backend="auto"`, float32 training on a CPU runs heads
            wider than 1.5 chunks with a longer chunk, a power-of-2 multiple of this one (`select_chunk_size` in
            `kernels_axlstm.py`: 128 / 256 for head dims 192 / 384; training steps of small and base at 10 s measured
            1.06-1.2x faster, keeping 1.2x the memory for the backward); `"chunkwise"` always runs this length.
        mixer_implementation (`str`, *optional*, defaults to `"auto"`):
            How each block's mixer computes its (identical) function, as `attn_implementation` picks an attention
            implementation in transformers: `"plain"` (the paper's sequence of steps, written out in
            `AxLSTMMixer.plain_forward`, trained through autograd), `"folded"` (the exact rewrite of
            `mixers_axlstm.py`: q.k and the gates folded through the projections, tiled products, cached derived
            weights, in-place inference, hand-written backward passes), `"fused_cpu"` (the folded form with
            hf-axlstm's fused C++ kernels for float32 training on a CPU; registered by `import hf_axlstm`, built on
            first use) or `"auto"` (`"folded"`, the fastest that needs no build). Not saved with the config: set it
            when loading (`from_pretrained(..., mixer_implementation="plain")`) or on a model
            (`model.set_mixer_implementation("plain")`).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal init of the CLS token, the mask token and the classifier.
        input_gate_bias_std (`float`, *optional*, defaults to 0.1):
            Standard deviation of the normal init of the input-gate biases (the gate weights start at zero).
        forget_gate_bias_range (`tuple[float, float]`, *optional*, defaults to `(3.0, 6.0)`):
            The forget-gate biases start evenly spaced over this range across the heads (weights start at zero).
        drop_path_rate (`float`, *optional*, defaults to 0.0):
            Stochastic-depth rate; grows linearly from 0 at the first block to this value at the last.
        classifier_pooling (`str`, *optional*, defaults to `"mean"`):
            Embedding the audio-classification head reads: `"mean"` of the final-normed patch tokens over real
            (unpadded) positions, or the `"cls"` token.
        classifier_dropout (`float`, *optional*, defaults to 0.0):
            Dropout before the classification layer.
        kwargs:
            Everything `transformers.PreTrainedConfig` accepts (`id2label`, `label2id`, `problem_type`, ...).
            `id2label` must map the class indices 0..n-1, each once (int keys or their strings, as in JSON).

    Every size has a sanity upper bound (`AXLSTM_SIZE_BOUNDS`: e.g. `hidden_size` <= 4096, `num_hidden_layers` <= 256,
    `frames_per_window` <= 6000, at most 100000 labels), far above any configuration in use, so that a crafted
    `config.json` fails with a `ValueError` naming the field instead of allocating gigabytes.

    Example:

    ```python
    >>> from hf_axlstm import AxLSTMConfig, AxLSTMModel

    >>> config = AxLSTMConfig.from_preset("tiny")
    >>> model = AxLSTMModel(config)
    ```
    """

    model_type = "axlstm"
    _auto_class = "AutoConfig"
    _presets = AXLSTM_PRESETS
    _family = "AxLSTM"

    def __init__(
        self,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        expansion_factor: int = 2,
        qkv_block_size: int = 4,
        num_heads: int = 4,
        conv_kernel_size: int = 4,
        num_mel_bins: int = 80,
        frames_per_window: int = 200,
        patch_size: tuple[int, int] | list[int] = (4, 16),
        use_cls_token: bool = True,
        mask_ratio: float = 0.5,
        mask_token_positions: bool = False,
        loss_on: str = "all",
        norm_eps: float = 1e-5,
        final_norm_eps: float = 1e-6,
        mlstm_eps: float = 1e-6,
        alternate_directions: bool = True,
        mlstm_backend: str = "auto",
        chunk_size: int = 64,
        initializer_range: float = 0.02,
        input_gate_bias_std: float = 0.1,
        forget_gate_bias_range: tuple[float, float] | list[float] = (3.0, 6.0),
        drop_path_rate: float = 0.0,
        classifier_pooling: str = "mean",
        classifier_dropout: float = 0.0,
        mixer_implementation: str = "auto",
        **kwargs,
    ):
        self.mixer_implementation = mixer_implementation
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.expansion_factor = expansion_factor
        self.qkv_block_size = qkv_block_size
        self.num_heads = num_heads
        self.conv_kernel_size = conv_kernel_size
        self.num_mel_bins = num_mel_bins
        self.frames_per_window = frames_per_window
        self.patch_size = list(patch_size) if isinstance(patch_size, tuple) else patch_size
        self.use_cls_token = use_cls_token
        self.mask_ratio = mask_ratio
        self.mask_token_positions = mask_token_positions
        self.loss_on = loss_on
        self.norm_eps = norm_eps
        self.final_norm_eps = final_norm_eps
        self.mlstm_eps = mlstm_eps
        self.alternate_directions = alternate_directions
        self.mlstm_backend = mlstm_backend
        self.chunk_size = chunk_size
        self.initializer_range = initializer_range
        self.input_gate_bias_std = input_gate_bias_std
        self.forget_gate_bias_range = (
            list(forget_gate_bias_range) if isinstance(forget_gate_bias_range, tuple) else forget_gate_bias_range
        )
        self.drop_path_rate = drop_path_rate
        self.classifier_pooling = classifier_pooling
        self.classifier_dropout = classifier_dropout
        super().__init__(**kwargs)  # SpectrogramPatchMixin: validate_axlstm, then PreTrainedConfig

    @property
    def mixer_implementation(self) -> str:
        """The mixer implementation the blocks run (see the class docstring); not serialised."""
        return self._mixer_implementation

    @mixer_implementation.setter
    def mixer_implementation(self, name: str) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"mixer_implementation={name!r} is invalid; expected a name such as 'auto', 'plain', 'folded' or "
                "'fused_cpu'."
            )
        self._mixer_implementation = name

    def _remove_keys_not_serialized(self, d: dict) -> None:
        super()._remove_keys_not_serialized(d)
        d.pop("_mixer_implementation", None)  # a choice of this process, like transformers' attn_implementation

    # ------------------------------------------------------------------ derived sizes
    @property
    def intermediate_size(self) -> int:
        """Width `I` of the mLSTM branch (`expansion_factor * hidden_size`)."""
        return self.expansion_factor * self.hidden_size

    @property
    def head_dim(self) -> int:
        """Dimension of one mLSTM head (`intermediate_size / num_heads`)."""
        return self.intermediate_size // self.num_heads

    # ------------------------------------------------------------------ validation
    def _check_fields(self) -> None:
        self.validate_axlstm()

    def validate_axlstm(self) -> None:
        """Raise `ValueError` naming the field and the value for any invalid value or combination.

        Integral values are stored as `int` (an integral float such as `4.0` is taken as 4), real values as `float`
        (numpy scalars included), so the config serialises to plain JSON."""
        validate_spectrogram_fields(
            self,
            _INT_FIELDS,
            _BOOL_FIELDS,
            ("norm_eps", "final_norm_eps", "mlstm_eps", "initializer_range", "input_gate_bias_std"),
            AXLSTM_SIZE_BOUNDS,
        )
        if self.mlstm_backend not in _BACKENDS:
            raise ValueError(f"mlstm_backend={self.mlstm_backend!r} is invalid; expected one of {list(_BACKENDS)}.")
        inner = self.intermediate_size
        if inner % self.qkv_block_size != 0:
            raise ValueError(
                f"qkv_block_size={self.qkv_block_size} does not divide hidden_size x expansion_factor = "
                f"{self.hidden_size} x {self.expansion_factor} = {inner}."
            )
        if inner % self.num_heads != 0:
            raise ValueError(
                f"num_heads={self.num_heads} does not divide hidden_size x expansion_factor = "
                f"{self.hidden_size} x {self.expansion_factor} = {inner}."
            )
        fg = self.forget_gate_bias_range
        if isinstance(fg, tuple):
            fg = list(fg)
        if not isinstance(fg, list) or len(fg) != 2:
            raise ValueError(f"forget_gate_bias_range={fg!r} is invalid; expected two finite numbers (low, high).")
        low, high = (_as_float(f"forget_gate_bias_range[{i}]", b) for i, b in enumerate(fg))
        if low > high:
            raise ValueError(f"forget_gate_bias_range={fg!r} is invalid; expected low <= high.")
        self.forget_gate_bias_range = [low, high]


__all__ = [
    "AXLSTM_PRESETS",
    "AXLSTM_SIZE_BOUNDS",
    "AxLSTMConfig",
    "SIZE_BOUNDS",
    "SpectrogramPatchMixin",
    "validate_spectrogram_fields",
]

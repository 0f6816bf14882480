# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""SSAST (the transformer baseline of the AxLSTM paper) model configuration."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from .configuration_axlstm import SIZE_BOUNDS, SpectrogramPatchMixin, _as_float, validate_spectrogram_fields

# The paper's SSAST baselines: width 192 / 384 / 768 with 3 / 6 / 12 heads of 64, 12 blocks, MLP ratio 4
# (encoder parameters 5.35M / 21.32M / 85.11M).
SSAST_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"hidden_size": 192, "num_attention_heads": 3},
    "small": {"hidden_size": 384, "num_attention_heads": 6},
    "base": {"hidden_size": 768, "num_attention_heads": 12},
}

_INT_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "mlp_ratio",
    "num_mel_bins",
    "frames_per_window",
)
_BOOL_FIELDS = ("use_cls_token", "mask_token_positions", "qkv_bias")
# Sanity bounds of the sizes (see `configuration_axlstm.SIZE_BOUNDS`): far above the paper's baselines, low enough
# that a crafted config.json fails clearly instead of allocating gigabytes.
SSAST_SIZE_BOUNDS: dict[str, int] = {**SIZE_BOUNDS, "num_attention_heads": 1024, "mlp_ratio": 16}


class SSASTConfig(SpectrogramPatchMixin, PreTrainedConfig):
    r"""
    Configuration of an SSAST encoder as the AxLSTM authors' code builds it: the same front end as AxLSTM (4 x 16
    patches of the log-mel, fixed 2-D sin-cos positions, CLS and mask tokens, final LayerNorm, reconstruction head) with
    pre-norm transformer blocks instead of mLSTM blocks. `SSASTConfig.from_preset("tiny" | "small" | "base")` gives
    the paper's baselines.

    Args:
        hidden_size (`int`, *optional*, defaults to 768):
            Width `D` of the tokens (tiny 192, small 384, base 768).
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of transformer blocks.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads per block; must divide `hidden_size` (the paper: heads of 64).
        mlp_ratio (`int`, *optional*, defaults to 4):
            Width of the MLP as a multiple of `hidden_size`.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the fused query/key/value projection has a bias.
        num_mel_bins (`int`, *optional*, defaults to 80):
            Number of log-mel bins of the input.
        frames_per_window (`int`, *optional*, defaults to 200):
            Log-mel frames of one training crop / evaluation window (2 s); the encoder accepts any number.
        patch_size (`tuple[int, int]`, *optional*, defaults to `(4, 16)`):
            Patch size as (frames in time, mel bins in frequency).
        use_cls_token (`bool`, *optional*, defaults to `True`):
            Whether a learned CLS token (with a zero position embedding) is prepended.
        mask_ratio (`float`, *optional*, defaults to 0.5):
            Fraction of patches replaced by the mask token during pretraining; in (0, 1).
        mask_token_positions (`bool`, *optional*, defaults to `False`):
            Whether the mask tokens get the position embedding. The authors' code (the default, for parity) gives
            them none, so a transformer cannot tell masked positions apart and predicts the same patch for every one
            of them; `True` adds the positions, as the original SSAST does.
        loss_on (`str`, *optional*, defaults to `"all"`):
            Patches the reconstruction MSE averages over: `"all"` (the authors') or `"masked"`.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the blocks' LayerNorms.
        final_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the final LayerNorm.
        attention_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the attention weights during training.
        drop_path_rate (`float`, *optional*, defaults to 0.0):
            Stochastic-depth rate, growing linearly from 0 at the first block to this value at the last.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal init of the CLS and mask tokens and of the classifier.
        classifier_pooling (`str`, *optional*, defaults to `"mean"`):
            What the classification head reads: the `"mean"` of the real patch tokens or the `"cls"` token.
        classifier_dropout (`float`, *optional*, defaults to 0.0):
            Dropout before the classification layer.
        kwargs:
            Everything `transformers.PreTrainedConfig` accepts (`id2label`, `label2id`, `problem_type`, ...).
            `id2label` must map the class indices 0..n-1, each once (int keys or their strings, as in JSON).

    Every size has a sanity upper bound (`SSAST_SIZE_BOUNDS`: e.g. `hidden_size` <= 4096, `num_hidden_layers` <= 256,
    `frames_per_window` <= 6000, at most 100000 labels), far above any configuration in use, so that a crafted
    `config.json` fails with a `ValueError` naming the field instead of allocating gigabytes.
    """

    model_type = "ssast"
    _auto_class = "AutoConfig"
    _presets = SSAST_PRESETS
    _family = "SSAST"

    def __init__(
        self,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        mlp_ratio: int = 4,
        qkv_bias: bool = True,
        num_mel_bins: int = 80,
        frames_per_window: int = 200,
        patch_size: tuple[int, int] | list[int] = (4, 16),
        use_cls_token: bool = True,
        mask_ratio: float = 0.5,
        mask_token_positions: bool = False,
        loss_on: str = "all",
        layer_norm_eps: float = 1e-6,
        final_norm_eps: float = 1e-6,
        attention_dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        initializer_range: float = 0.02,
        classifier_pooling: str = "mean",
        classifier_dropout: float = 0.0,
        **kwargs,
    ):
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.num_mel_bins = num_mel_bins
        self.frames_per_window = frames_per_window
        self.patch_size = list(patch_size) if isinstance(patch_size, tuple) else patch_size
        self.use_cls_token = use_cls_token
        self.mask_ratio = mask_ratio
        self.mask_token_positions = mask_token_positions
        self.loss_on = loss_on
        self.layer_norm_eps = layer_norm_eps
        self.final_norm_eps = final_norm_eps
        self.attention_dropout = attention_dropout
        self.drop_path_rate = drop_path_rate
        self.initializer_range = initializer_range
        self.classifier_pooling = classifier_pooling
        self.classifier_dropout = classifier_dropout
        super().__init__(**kwargs)  # SpectrogramPatchMixin: validate_ssast, then PreTrainedConfig

    @property
    def intermediate_size(self) -> int:
        """Width of the MLP (`mlp_ratio * hidden_size`)."""
        return self.mlp_ratio * self.hidden_size

    @property
    def head_dim(self) -> int:
        """Dimension of one attention head."""
        return self.hidden_size // self.num_attention_heads

    def _check_fields(self) -> None:
        self.validate_ssast()

    def validate_ssast(self) -> None:
        """Raise `ValueError` naming the field and the value for any invalid value or combination."""
        validate_spectrogram_fields(
            self,
            _INT_FIELDS,
            _BOOL_FIELDS,
            ("layer_norm_eps", "final_norm_eps", "initializer_range"),
            SSAST_SIZE_BOUNDS,
        )
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} does not divide hidden_size={self.hidden_size}."
            )

        if not 0.0 <= _as_float("attention_dropout", self.attention_dropout, "a number in [0, 1)") < 1.0:
            raise ValueError(f"attention_dropout={self.attention_dropout!r} is invalid; expected a number in [0, 1).")
        self.attention_dropout = float(self.attention_dropout)


__all__ = ["SSASTConfig", "SSAST_PRESETS", "SSAST_SIZE_BOUNDS"]

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""PyTorch SSAST: the transformer baseline of the AxLSTM paper, as the authors' code builds it.

Everything but the blocks is AxLSTM's (`modeling_axlstm.py`): the log-mel front end, the 4 x 16 patches, the fixed
2-D sin-cos positions, the CLS and mask tokens, the final LayerNorm, the reconstruction head, the masking, the losses
and the classification head. The blocks are pre-norm transformer blocks: LayerNorm -> multi-head self-attention
(one fused qkv projection) -> residual; LayerNorm -> MLP (GELU) -> residual. Padded positions are masked out of the
attention keys, so a padded clip gets the outputs it would get alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_ssast import SSASTConfig
from .modeling_axlstm import (
    AxLSTMEmbeddings,
    AxLSTMPatchEmbeddings,
    AxLSTMReconstructionHead,
    RemoteCodeSaveMixin,
    SpectrogramClassificationMixin,
    SpectrogramEncoderMixin,
    SpectrogramPreTrainingMixin,
    _drop_path,
)
from .validation_axlstm import ATTENTION_MESSAGES

SSAST_AUTO_MAP = {
    "AutoConfig": "configuration_ssast.SSASTConfig",
    "AutoModel": "modeling_ssast.SSASTModel",
    "AutoModelForPreTraining": "modeling_ssast.SSASTForPreTraining",
    "AutoModelForAudioClassification": "modeling_ssast.SSASTForAudioClassification",
    "AutoFeatureExtractor": "feature_extraction_axlstm.AxLSTMFeatureExtractor",
}


class SSASTAttention(nn.Module):
    """Multi-head self-attention with one fused qkv projection (split as (3, heads, head_dim)) and an output
    projection; `key_mask` (batch, seq) keeps padded tokens out of every real token's attention."""

    def __init__(self, config: SSASTConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.dropout = config.attention_dropout
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, seq, hidden = x.shape
        qkv = self.qkv(x).view(batch, seq, 3, self.num_heads, hidden // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, S, hd)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, S), True = attend
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, S, hd), softmax(q k^T / sqrt(hd)) v
        return self.proj(out.transpose(1, 2).reshape(batch, seq, hidden))


class SSASTMLP(nn.Module):
    """Linear(D, mlp_ratio D) -> exact GELU -> Linear(mlp_ratio D, D)."""

    def __init__(self, config: SSASTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SSASTBlock(GradientCheckpointingLayer):
    """Pre-norm transformer block: x + attention(norm1(x)), then + mlp(norm2(.)), with stochastic depth."""

    def __init__(self, config: SSASTConfig, layer_idx: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = SSASTAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = SSASTMLP(config)
        depth = config.num_hidden_layers
        self.drop_path_rate = config.drop_path_rate * layer_idx / (depth - 1) if depth > 1 else 0.0

    def forward(self, hidden_states: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = hidden_states + _drop_path(
            self.attention(self.norm1(hidden_states), key_mask), self.drop_path_rate, self.training
        )
        return x + _drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)


class SSASTPreTrainedModel(RemoteCodeSaveMixin, PreTrainedModel):
    config_class = SSASTConfig
    config: SSASTConfig
    base_model_prefix = "ssast"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["SSASTBlock"]
    _hub_auto_map = SSAST_AUTO_MAP

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """MAE-style initialisation: xavier-uniform linears with zero biases, unit LayerNorms, normal tokens; the
        patch embedding as AxLSTM's (xavier-uniform on the flattened kernel)."""
        super()._init_weights(module)
        if isinstance(module, AxLSTMPatchEmbeddings):
            weight = module.projection.weight
            fan_out, fan_in = weight.shape[0], weight[0].numel()
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            init.uniform_(weight, -bound, bound)
            init.zeros_(module.projection.bias)
        elif isinstance(module, AxLSTMEmbeddings):
            if module.cls_token is not None:
                init.normal_(module.cls_token, std=self.config.initializer_range)
            init.normal_(module.mask_token, std=self.config.initializer_range)
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class SSASTModel(SpectrogramEncoderMixin, SSASTPreTrainedModel):
    """The bare SSAST encoder: log-mel (batch, frames, mels) -> tokens (batch, 1 + patches, hidden_size).

    Its `forward` is AxLSTM's (`SpectrogramEncoderMixin.forward`): same arguments, checks and [`AxLSTMModelOutput`]
    (`last_hidden_state` `(batch, 1 + num_patches, hidden_size)`, `pooler_output` `(batch, hidden_size)`,
    `token_mask`, `hidden_states`)."""

    _auto_class = "AutoModel"
    # The heads of this package are expected in a pretraining or classifier folder: loading the encoder (or the
    # other head, which inherits this from its encoder) from one leaves them out without a LOAD REPORT. Any other
    # unexpected key, and every missing one, is still reported.
    _keys_to_ignore_on_load_unexpected = [r"^head\.(dense|decoder)\.(weight|bias)$", r"^classifier\.(weight|bias)$"]
    _attention_message = ATTENTION_MESSAGES["ssast"]
    _block_class = SSASTBlock

    def _block_inputs(
        self, hidden_states: torch.Tensor, token_mask: torch.Tensor, patch_mask: torch.Tensor, padded: bool
    ) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """The attention blocks take the key mask (None without padding)."""
        return hidden_states, token_mask, (token_mask if padded else None,)


class SSASTForPreTraining(SpectrogramPreTrainingMixin, SSASTPreTrainedModel):
    """SSAST with the masked-spectrogram-modelling head (AxLSTM's head, masking, `patchify` and losses).

    `forward(input_values, attention_mask=None, mask=None, noise=None, ...)` returns an
    [`AxLSTMForPreTrainingOutput`]: `loss` `()`, `logits` `(batch, num_patches, patch_dim)`, `mask` and `patch_mask`
    `(batch, num_patches)`."""

    _auto_class = "AutoModelForPreTraining"

    def __init__(self, config: SSASTConfig):
        super().__init__(config)
        self.ssast = SSASTModel(config)
        self.head = AxLSTMReconstructionHead(config)
        self.post_init()


class SSASTForAudioClassification(SpectrogramClassificationMixin, SSASTPreTrainedModel):
    """SSAST with AxLSTM's classification head: pooled encoder output (or CLS) -> dropout -> linear.

    `forward(input_values, attention_mask=None, labels=None, ...)` returns a `SequenceClassifierOutput` with `logits`
    `(batch, num_labels)`."""

    _auto_class = "AutoModelForAudioClassification"

    def __init__(self, config: SSASTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ssast = SSASTModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


__all__ = [
    "SSASTForAudioClassification",
    "SSASTForPreTraining",
    "SSASTModel",
    "SSASTPreTrainedModel",
]

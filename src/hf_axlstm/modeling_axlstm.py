# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""PyTorch AxLSTM (Audio xLSTM): a masked-spectrogram-modelling encoder built from Vision-LSTM mLSTM blocks.

Yadav, Theodoridis & Tan, "Audio xLSTMs: learning self-supervised audio representations with xLSTMs"
(arXiv 2408.16568). The data flows: log-mel (batch, frames, mels) -> 4 x 16 patches, time-major -> + fixed 2-D
sin-cos positions -> [mask tokens] -> CLS prepended -> mLSTM blocks of alternating direction -> final LayerNorm.

Each block's mLSTM layer is written out as the paper has it in `AxLSTMMixer.plain_forward`. Faster implementations
of the same function (`mixers_axlstm.py`, and the fused CPU kernels of `hf_axlstm.cpu_kernels`) are registered beside
it and chosen by `config.mixer_implementation`; the mLSTM cell's formulations are in `kernels_axlstm.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from .configuration_axlstm import AxLSTMConfig
from .kernels_axlstm import CellSpec, run_cell
from .mixers_axlstm import ALL_MIXER_IMPLEMENTATIONS, resolve_mixer_spec
from .validation_axlstm import (
    ATTENTION_MESSAGES,
    binary_tensor,
    check_labels,
    check_mask_or_noise,
    check_mask_ratio,
    check_noise,
    check_patches,
    check_patchify_input,
    prepare_input,
)

# Written into every saved config so that a folder loads with plain transformers and `trust_remote_code=True`.
AXLSTM_AUTO_MAP = {
    "AutoConfig": "configuration_axlstm.AxLSTMConfig",
    "AutoModel": "modeling_axlstm.AxLSTMModel",
    "AutoModelForPreTraining": "modeling_axlstm.AxLSTMForPreTraining",
    "AutoModelForAudioClassification": "modeling_axlstm.AxLSTMForAudioClassification",
    "AutoFeatureExtractor": "feature_extraction_axlstm.AxLSTMFeatureExtractor",
}

# ----------------------------------------------------------------------------------------------------------- outputs


@dataclass
class AxLSTMModelOutput(ModelOutput):
    """
    Output of [`AxLSTMModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch, 1 + num_patches, hidden_size)`):
            Final-normed tokens: the CLS token first (when `config.use_cls_token`), then the patches in time-major
            order (patch `(t, f)` at index `t * num_freq_patches + f`). Padded positions hold unspecified values;
            `token_mask` says which are real.
        pooler_output (`torch.FloatTensor` of shape `(batch, hidden_size)`):
            Mean of the final-normed patch tokens over the real (unpadded) patches.
        token_mask (`torch.BoolTensor` of shape `(batch, 1 + num_patches)`):
            True where a token of `last_hidden_state` comes from real input (CLS included).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The embeddings and the output of every block, each `(batch, 1 + num_patches, hidden_size)`
            (before the final LayerNorm).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    token_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class AxLSTMForPreTrainingOutput(ModelOutput):
    """
    Output of [`AxLSTMForPreTraining`].

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            Mean squared reconstruction error over the patches chosen by `config.loss_on` (`"all"` real patches,
            or only the `"masked"` ones).
        logits (`torch.FloatTensor` of shape `(batch, num_patches, patch_time * patch_freq)`):
            Reconstructed patches (64 values for 4 x 16 patches), time-major like the input patches.
        mask (`torch.FloatTensor` of shape `(batch, num_patches)`):
            1 where a patch was replaced by the mask token, 0 where it was visible (and for padding).
        patch_mask (`torch.BoolTensor` of shape `(batch, num_patches)`):
            True for patches that come from real (unpadded) input.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            As in [`AxLSTMModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    patch_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


# ------------------------------------------------------------------------------------------------- position table


def sincos_position_embedding(
    hidden_size: int, num_time: int, num_freq: int, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding of a (time x freq) patch grid, (num_time * num_freq, hidden_size).

    The first half of the channels encodes the frequency index, the second half the time index; each half is
    [sin | cos] at frequencies 1 / 10000^(i / (hidden_size / 4)). Rows are time-major (row t * num_freq + f). It is a
    fixed function of the indices, so the table of a longer grid extends the shorter one exactly.
    """
    quarter = hidden_size // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64, device=device) / quarter)  # (D/4,)

    def one_axis(positions: torch.Tensor) -> torch.Tensor:
        angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (N, D/4)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (N, D/2)

    time_idx = torch.arange(num_time, device=device).repeat_interleave(num_freq)  # (T*F,) t of each row
    freq_idx = torch.arange(num_freq, device=device).repeat(num_time)  # (T*F,) f of each row
    return torch.cat([one_axis(freq_idx), one_axis(time_idx)], dim=-1).to(dtype)  # (T*F, D)


# ------------------------------------------------------------------------------------------------------ embeddings


class AxLSTMPatchEmbeddings(nn.Module):
    """Non-overlapping (patch_time x patch_freq) patches of the log-mel, linearly embedded by a strided Conv2d."""

    def __init__(self, config: AxLSTMConfig):
        super().__init__()
        self.patch_size = tuple(config.patch_size)
        self.projection = nn.Conv2d(1, config.hidden_size, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        # (batch, frames, mels) with frames a multiple of patch_time
        x = self.projection(input_values.unsqueeze(1).to(self.projection.weight.dtype))  # (B, D, T', F')
        return x.flatten(2).transpose(1, 2)  # (B, T' * F', D), time-major


class AxLSTMEmbeddings(nn.Module):
    """Patch embeddings + fixed sin-cos positions, optional mask tokens (after the positions, or with them when
    `config.mask_token_positions`), CLS prepended. Shared by AxLSTM and SSAST."""

    def __init__(self, config: AxLSTMConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = AxLSTMPatchEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size)) if config.use_cls_token else None
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, input_values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        patches = self.patch_embeddings(input_values)  # (B, P, D)
        num_time = input_values.shape[1] // self.config.patch_size[0]
        positions = sincos_position_embedding(
            self.config.hidden_size, num_time, self.config.num_freq_patches, patches.device, patches.dtype
        )
        tokens = patches + positions  # (B, P, D)
        if mask is not None:
            # The authors replace masked patches *after* adding the positions: a mask token carries no position.
            # With `mask_token_positions` it gets the position too (the original SSAST's order).
            fill = self.mask_token.to(tokens.dtype)
            if self.config.mask_token_positions:
                fill = fill + positions
            tokens = torch.where(mask.bool().unsqueeze(-1), fill, tokens)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.to(tokens.dtype).expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return tokens  # (B, S, D) with S = [1 +] P


# -------------------------------------------------------------------------------------------------- block parts


class AxLSTMLayerNorm(nn.Module):
    """LayerNorm whose scale is parameterised as (1 + weight), weight initialised at 0; optional bias."""

    def __init__(self, hidden_size: int, eps: float, bias: bool = False):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(hidden_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), 1.0 + self.weight, self.bias, self.eps)


class AxLSTMHeadwiseNorm(nn.Module):
    """Group norm over each mLSTM head's channels, scale (1 + weight), no bias."""

    def __init__(self, num_heads: int, intermediate_size: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(intermediate_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, NH, S, DH) -> (B, S, NH * DH)."""
        batch, heads, seq, head_dim = h.shape
        h = F.layer_norm(h, (head_dim,), eps=self.eps)  # group norm with one group per head
        h = h * (1.0 + self.weight).view(heads, 1, head_dim)
        return h.transpose(1, 2).reshape(batch, seq, heads * head_dim)


class AxLSTMCausalConv1d(nn.Module):
    """Depthwise Conv1d over the sequence that only looks back (left padding of kernel_size - 1)."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(channels, channels, kernel_size, groups=channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, S, C) -> (B, S, C)."""
        x = F.pad(x.transpose(1, 2), (self.kernel_size - 1, 0))  # (B, C, S + k - 1)
        return self.conv(x).transpose(1, 2)


class AxLSTMBlockDiagonalLinear(nn.Module):
    """Block-diagonal linear map without bias: `weight[b]` (block_size x block_size) maps channel block `b`."""

    def __init__(self, features: int, block_size: int):
        super().__init__()
        self.block_size = block_size
        self.weight = nn.Parameter(torch.empty(features // block_size, block_size, block_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = x.unflatten(-1, (-1, self.block_size))  # (..., NB, bs)
        return torch.einsum("...bi,boi->...bo", blocks, self.weight).flatten(-2)


class AxLSTMMixer(nn.Module):
    """The mLSTM layer of a block (Vision-LSTM's, as the AxLSTM authors use it), with their parameter names and shapes.

    `plain_forward` is the paper's sequence of steps. `forward` runs the implementation `config.mixer_implementation`
    names (`mixers_axlstm.py`: the same function, reorganised for speed), as `resolve_mixer_spec` decides for the call.
    """

    def __init__(self, config: AxLSTMConfig):
        super().__init__()
        inner = config.intermediate_size
        self.config = config
        self.num_heads = config.num_heads
        self.proj_up = nn.Linear(config.hidden_size, 2 * inner, bias=False)
        self.conv = AxLSTMCausalConv1d(inner, config.conv_kernel_size)
        self.q_proj = AxLSTMBlockDiagonalLinear(inner, config.qkv_block_size)
        self.k_proj = AxLSTMBlockDiagonalLinear(inner, config.qkv_block_size)
        self.v_proj = AxLSTMBlockDiagonalLinear(inner, config.qkv_block_size)
        # Input gates (rows 0..NH-1) and forget gates (rows NH..2NH-1) from concat(q, k, v), in one linear.
        self.gate_proj = nn.Linear(3 * inner, 2 * config.num_heads, bias=True)
        self.out_norm = AxLSTMHeadwiseNorm(config.num_heads, inner, config.norm_eps)
        self.learnable_skip = nn.Parameter(torch.ones(inner))
        self.proj_down = nn.Linear(inner, config.hidden_size, bias=False)
        self.implementation_cache: dict = {}  # what an implementation derives from the weights (no autograd)
        ALL_MIXER_IMPLEMENTATIONS.get(config.mixer_implementation)  # an unknown name fails here, not in a forward

    def _apply(self, fn, recurse=True):
        self.implementation_cache = {}  # .to() / .half() / .cuda() replace the parameters' storage
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor, chunk_aligned: bool = False) -> torch.Tensor:
        """x (B, S, D) -> (B, S, D). `chunk_aligned`: S is a multiple of `config.chunk_size` (used under export)."""
        spec = resolve_mixer_spec(self, x, chunk_aligned)
        seq = x.shape[1]
        if spec.pad:  # at the end, where the causal conv and mLSTM cannot carry it back to the real positions
            x = F.pad(x, (0, 0, 0, spec.pad))
        out = self.plain_forward(x, spec.cell) if spec.forward is None else spec.forward(self, x, spec)
        return out[:, :seq] if spec.pad else out

    def plain_forward(self, x: torch.Tensor, cell: CellSpec) -> torch.Tensor:
        """The paper's mLSTM layer, x (B, S, D) -> (B, S, D); `cell` picks the mLSTM cell's formulation."""
        batch, seq, _ = x.shape
        heads = self.num_heads
        x_mlstm, z = self.proj_up(x).chunk(2, dim=-1)  # up-projection: 2 x (B, S, I)
        c = F.silu(self.conv(x_mlstm))  # causal depthwise conv + SiLU: (B, S, I)
        q = self.q_proj(c)  # block-diagonal: (B, S, I)
        k = self.k_proj(c)  # (B, S, I)
        v = self.v_proj(x_mlstm)  # (B, S, I): v reads the branch before the conv
        gates = self.gate_proj(torch.cat([q, k, v], dim=-1))  # input and forget gates of every head: (B, S, 2NH)
        igate, fgate = gates.transpose(1, 2).chunk(2, dim=1)  # (B, NH, S) each

        def to_heads(t: torch.Tensor) -> torch.Tensor:  # (B, S, I) -> (B, NH, S, DH)
            return t.view(batch, seq, heads, -1).transpose(1, 2)

        q, k, v = to_heads(q), to_heads(k), to_heads(v)  # (B, NH, S, DH) each
        h = run_cell(q, k, v, igate, fgate, cell, self.config.mlstm_eps)  # the mLSTM cell: (B, NH, S, DH)
        h = self.out_norm(h)  # per-head group norm: (B, S, I)
        h = h + self.learnable_skip * c  # learnable skip from the conv branch
        h = h * F.silu(z)  # output gate
        return self.proj_down(h)  # down-projection: (B, S, D)


def _drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class AxLSTMBlock(GradientCheckpointingLayer):
    """Residual pre-norm mLSTM block; a reversed block runs the mixer over the (real part of the) sequence flipped."""

    def __init__(self, config: AxLSTMConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.reverse = config.alternate_directions and layer_idx % 2 == 1
        self.norm = AxLSTMLayerNorm(config.hidden_size, eps=config.norm_eps)
        self.mixer = AxLSTMMixer(config)
        depth = config.num_hidden_layers
        self.drop_path_rate = config.drop_path_rate * layer_idx / (depth - 1) if depth > 1 else 0.0

    def forward(
        self, hidden_states: torch.Tensor, reverse_index: torch.Tensor | None = None, chunk_aligned: bool = False
    ) -> torch.Tensor:
        x = self.norm(hidden_states)  # (B, S, D)
        if self.reverse:
            x = _reverse(x, reverse_index)
        x = self.mixer(x, chunk_aligned)
        if self.reverse:
            x = _reverse(x, reverse_index)
        return hidden_states + _drop_path(x, self.drop_path_rate, self.training)


def _reverse(x: torch.Tensor, reverse_index: torch.Tensor | None) -> torch.Tensor:
    """Flip the sequence axis; with padding, flip only each sequence's real prefix so padding stays at the end."""
    if reverse_index is None:
        return x.flip(1)
    return x.gather(1, reverse_index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


# ---------------------------------------------------------------------------------------------------- base model


class RemoteCodeSaveMixin:
    """`save_pretrained` that makes the folder Hub remote code: `_hub_auto_map` written into `config.json` and the
    feature-extraction file with its relative imports (`audio_rules_axlstm.py`) copied next to the model files
    (transformers copies the modeling file and its relative imports itself)."""

    _hub_auto_map: dict[str, str] = {}

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained` (always safetensors), plus what Hub remote code needs: the
        configuration, modeling, kernel and feature-extraction files next to the weights and the complete `auto_map`
        in `config.json`, so the folder loads with `trust_remote_code=True` where hf_axlstm is not installed."""
        import os
        import shutil
        from pathlib import Path

        from transformers.dynamic_module_utils import get_relative_import_files

        self.config.auto_map = dict(self._hub_auto_map)
        self.config.architectures = [type(self).__name__]
        extractor_file = Path(__file__).parent / "feature_extraction_axlstm.py"
        if kwargs.get("is_main_process", True) and extractor_file.exists() and not os.path.isfile(save_directory):
            # Copied first so that push_to_hub=True uploads it with the rest.
            os.makedirs(save_directory, exist_ok=True)
            for source in [extractor_file, *map(Path, get_relative_import_files(extractor_file))]:
                shutil.copyfile(source, Path(save_directory) / source.name)
        super().save_pretrained(save_directory, *args, **kwargs)


class AxLSTMPreTrainedModel(RemoteCodeSaveMixin, PreTrainedModel):
    config_class = AxLSTMConfig
    config: AxLSTMConfig
    base_model_prefix = "axlstm"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["AxLSTMBlock"]
    _hub_auto_map = AXLSTM_AUTO_MAP

    def set_mixer_implementation(self, name: str) -> None:
        """Run every block's mixer through the implementation registered as `name`: `"auto"`, `"plain"`, `"folded"`,
        `"fused_cpu"` (see `AxLSTMConfig.mixer_implementation`); all compute the same function. Raises `ValueError`
        for a name that is not registered, and `RuntimeError` with the reason where the fused CPU kernels cannot be
        built (they are built, or loaded from their cache, here rather than inside the first training step)."""
        implementation = ALL_MIXER_IMPLEMENTATIONS.get(name)
        if implementation.fused_kernels is not None:
            implementation.fused_kernels()
        self.config.mixer_implementation = name

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The authors' initialisation (Vision-LSTM's small/wang inits and gate biases)."""
        super()._init_weights(module)
        config = self.config
        if isinstance(module, AxLSTMPatchEmbeddings):
            weight = module.projection.weight  # xavier-uniform on the flattened (D, patch) weight
            fan_out, fan_in = weight.shape[0], weight[0].numel()
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            init.uniform_(weight, -bound, bound)
            init.zeros_(module.projection.bias)
        elif isinstance(module, AxLSTMEmbeddings):
            if module.cls_token is not None:
                init.normal_(module.cls_token, std=config.initializer_range)
            init.normal_(module.mask_token, std=config.initializer_range)
        elif isinstance(module, AxLSTMMixer):
            small_std = math.sqrt(2.0 / (5.0 * config.hidden_size))
            init.normal_(module.proj_up.weight, std=small_std)
            for proj in (module.q_proj, module.k_proj, module.v_proj):
                init.normal_(proj.weight, std=small_std)
            init.normal_(module.proj_down.weight, std=2.0 / math.sqrt(config.hidden_size))
            nh = config.num_heads
            init.zeros_(module.gate_proj.weight)
            gate_bias = torch.cat(
                [
                    torch.randn(nh) * config.input_gate_bias_std,
                    torch.linspace(*config.forget_gate_bias_range, nh),
                ]
            )
            init.copy_(module.gate_proj.bias, gate_bias)
            init.ones_(module.learnable_skip)
        elif isinstance(module, AxLSTMCausalConv1d):
            # torch's default Conv1d init (kaiming-uniform a=sqrt(5), bias uniform in +-1/sqrt(fan_in)).
            fan_in = module.conv.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(module.conv.weight, -bound, bound)
            init.uniform_(module.conv.bias, -bound, bound)
        elif isinstance(module, (AxLSTMLayerNorm, AxLSTMHeadwiseNorm)):
            init.zeros_(module.weight)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, AxLSTMBlockDiagonalLinear):
            init.normal_(module.weight, std=math.sqrt(2.0 / (5.0 * config.hidden_size)))
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


def _patch_mask(
    config: AxLSTMConfig, frame_mask: torch.Tensor | None, batch: int, num_time: int, device: torch.device
) -> torch.Tensor:
    """(batch, num_patches) True for patches holding at least one real frame (all of them without a frame mask)."""
    if frame_mask is None:
        return torch.ones(batch, num_time * config.num_freq_patches, dtype=torch.bool, device=device)
    real_frames = frame_mask.sum(dim=1)  # (B,)
    real_time = torch.div(real_frames + config.patch_size[0] - 1, config.patch_size[0], rounding_mode="floor")
    time_ok = torch.arange(num_time, device=device)[None, :] < real_time[:, None]  # (B, T')
    return time_ok.repeat_interleave(config.num_freq_patches, dim=1)  # (B, P)


class SpectrogramEncoderMixin:
    """The `forward` of a masked-spectrogram encoder (AxLSTM, SSAST): validate and pad the log-mel, build the patch
    mask, then the model's own `_encode(input_values, patch_mask, padded, mask, output_hidden_states)`. The models
    differ only in their blocks."""

    _attention_message = None  # set by each model: why output_attentions=True is refused
    _block_class: type[nn.Module]  # set by each model: its block, built as `_block_class(config, layer_idx)`

    def __init__(self, config):
        super().__init__(config)
        self.config = config
        self.embeddings = AxLSTMEmbeddings(config)
        self.layers = nn.ModuleList([self._block_class(config, i) for i in range(config.num_hidden_layers)])
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.final_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> AxLSTMPatchEmbeddings:
        return self.embeddings.patch_embeddings

    def _block_inputs(
        self, hidden_states: torch.Tensor, token_mask: torch.Tensor, patch_mask: torch.Tensor, padded: bool
    ) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """Set by each model: the tokens and token mask its blocks run on (possibly padded further) and the extra
        arguments every block takes after the tokens."""
        raise NotImplementedError

    def _encode(
        self,
        input_values: torch.Tensor,
        patch_mask: torch.Tensor,
        padded: bool,
        mask: torch.Tensor | None,
        output_hidden_states: bool,
    ) -> AxLSTMModelOutput:
        """The encoder proper, on input already validated and padded by `prepare_input`: embeddings, the blocks,
        the final norm and pooling."""
        hidden_states, token_mask = self._embed(input_values, patch_mask, mask)  # (B, S, D), (B, S)
        real_seq = hidden_states.shape[1]
        hidden_states, token_mask, block_args = self._block_inputs(hidden_states, token_mask, patch_mask, padded)
        all_hidden = (hidden_states[:, :real_seq],) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states, *block_args)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states[:, :real_seq],)
        return self._finish(hidden_states[:, :real_seq], patch_mask, token_mask[:, :real_seq], all_hidden)

    def _embed(
        self, input_values: torch.Tensor, patch_mask: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (B, S, D) and the token mask (B, S), True for CLS and real patches."""
        hidden_states = self.embeddings(input_values, mask)
        n_cls = 1 if self.config.use_cls_token else 0
        token_mask = torch.cat([patch_mask.new_ones(patch_mask.shape[0], n_cls), patch_mask], dim=1)
        return hidden_states, token_mask

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> AxLSTMModelOutput | tuple:
        r"""
        Args:
            input_values (`torch.FloatTensor` of shape `(batch, frames, num_mel_bins)`):
                Normalised log-mel spectrogram from [`AxLSTMFeatureExtractor`] (the authors' `(batch, 1, frames,
                mels)` layout is accepted too). Any number of frames: the time axis is zero-padded to a multiple of
                the patch height and the position table is computed for the actual grid.
            attention_mask (`torch.LongTensor` of shape `(batch, frames)`, *optional*):
                1 for real frames, 0 for padding. Padded clips get exactly the outputs they would get alone.
            mask (`torch.BoolTensor` of shape `(batch, num_patches)`, *optional*):
                Patches to replace by the mask token (1 = masked), as in pretraining.
            output_hidden_states (`bool`, *optional*): return the embeddings and every block's output.
            return_dict (`bool`, *optional*): return an [`AxLSTMModelOutput`] instead of a tuple.
            output_attentions (`bool`, *optional*): only `None`/`False` (no attention maps are returned).

        Returns:
            [`AxLSTMModelOutput`]: `last_hidden_state` `(batch, 1 + num_patches, hidden_size)`, `pooler_output`
            `(batch, hidden_size)`, `token_mask` `(batch, 1 + num_patches)`, and `hidden_states` (a tuple of
            `num_hidden_layers + 1` tensors `(batch, 1 + num_patches, hidden_size)`) when asked for.

        Raises `TypeError` / `ValueError` naming the argument for input that is not a finite floating-point
        `(batch, frames, num_mel_bins)` tensor, masks that are not 0/1 tensors of the right shape, and
        `output_attentions=True`.
        """
        if output_attentions:
            raise ValueError(self._attention_message)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        input_values, frame_mask = prepare_input(self.config, input_values, attention_mask)
        batch, frames, _ = input_values.shape
        num_time = frames // self.config.patch_size[0]
        patch_mask = _patch_mask(self.config, frame_mask, batch, num_time, input_values.device)
        if mask is not None:
            mask = binary_tensor("mask", mask, patch_mask.shape, "(batch, num_patches)").to(patch_mask.device)
        outputs = self._encode(input_values, patch_mask, frame_mask is not None, mask, output_hidden_states)
        return outputs if return_dict else outputs.to_tuple()

    def _finish(
        self,
        hidden_states: torch.Tensor,
        patch_mask: torch.Tensor,
        token_mask: torch.Tensor,
        all_hidden: tuple | None,
    ) -> AxLSTMModelOutput:
        """Final LayerNorm and the mean over the real patch tokens."""
        n_cls = 1 if self.config.use_cls_token else 0
        last_hidden_state = self.layernorm(hidden_states)  # (B, S, D)
        patches = last_hidden_state[:, n_cls:]  # (B, P, D)
        weights = patch_mask.to(patches.dtype).unsqueeze(-1)  # (B, P, 1)
        pooled = (patches * weights).sum(dim=1) / weights.sum(dim=1)  # (B, D)
        return AxLSTMModelOutput(
            last_hidden_state=last_hidden_state, pooler_output=pooled, token_mask=token_mask, hidden_states=all_hidden
        )


class AxLSTMModel(SpectrogramEncoderMixin, AxLSTMPreTrainedModel):
    """The bare AxLSTM encoder: log-mel (batch, frames, mels) -> tokens (batch, 1 + patches, hidden_size)."""

    _auto_class = "AutoModel"
    # The heads of this package are expected in a pretraining or classifier folder: loading the encoder (or the
    # other head, which inherits this from its encoder) from one leaves them out without a LOAD REPORT. Any other
    # unexpected key, and every missing one, is still reported.
    _keys_to_ignore_on_load_unexpected = [r"^head\.(dense|decoder)\.(weight|bias)$", r"^classifier\.(weight|bias)$"]
    _attention_message = ATTENTION_MESSAGES["axlstm"]
    _block_class = AxLSTMBlock

    def _block_inputs(
        self, hidden_states: torch.Tensor, token_mask: torch.Tensor, patch_mask: torch.Tensor, padded: bool
    ) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """The mLSTM blocks take the index that reverses each sequence's real prefix (None without padding) and
        whether the sequence is chunk-aligned (under export, where the tokens are padded once, up front)."""
        exporting = torch.compiler.is_exporting()
        if exporting:
            # One graph for every length: the tokens are padded once to whole mLSTM chunks (as padding at the end,
            # which the causal blocks never let reach a real token), so no block pads again.
            pad = -hidden_states.shape[1] % self.config.chunk_size
            hidden_states = F.pad(hidden_states, (0, 0, 0, pad))
            token_mask = F.pad(token_mask, (0, pad))
            padded = True
        reverse_index = None
        if padded and (torch.compiler.is_compiling() or not bool(patch_mask.all())):
            # Reverse only each sequence's real prefix so the padding stays behind the real tokens in both
            # directions; the causal mLSTM and conv then never let padding reach a real token.
            lengths = token_mask.sum(dim=1, keepdim=True)  # (B, 1)
            positions = torch.arange(hidden_states.shape[1], device=hidden_states.device).unsqueeze(0)  # (1, S)
            reverse_index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, S)
        return hidden_states, token_mask, (reverse_index, exporting)


# ----------------------------------------------------------------------------------------------------------- heads


class AxLSTMReconstructionHead(nn.Module):
    """Per-token reconstruction head of pretraining: Linear(D, D) -> GELU -> Linear(D, patch_time * patch_freq)."""

    def __init__(self, config: AxLSTMConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.GELU()
        self.decoder = nn.Linear(config.hidden_size, config.patch_dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.activation(self.dense(hidden_states)))


class SpectrogramPreTrainingMixin:
    """Masked spectrogram modelling on top of an encoder (`self.base_model`) and `self.head`: `patchify`,
    `unpatchify`, `random_mask` and the loss, the same for AxLSTM and SSAST."""

    def patchify(self, input_values: torch.Tensor) -> torch.Tensor:
        """(batch, frames, mels) -> (batch, num_patches, patch_time * patch_freq), time-major patches, each patch
        flattened time-first; the time axis is zero-padded to a multiple of the patch height."""
        input_values = check_patchify_input(input_values, self.config)
        pt, pf = self.config.patch_size
        batch, frames, mels = input_values.shape
        input_values = F.pad(input_values, (0, 0, 0, -frames % pt))
        grid = input_values.reshape(batch, -1, pt, mels // pf, pf)  # (B, T', pt, F', pf)
        return grid.permute(0, 1, 3, 2, 4).reshape(batch, -1, pt * pf)

    def unpatchify(self, patches: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Inverse of `patchify`: (batch, num_patches, patch_time * patch_freq) -> (batch, frames, mels), cut to
        `num_frames` when given."""
        check_patches(patches, self.config)
        pt, pf = self.config.patch_size
        nf = self.config.num_freq_patches
        batch, num_patches, _ = patches.shape
        grid = patches.reshape(batch, num_patches // nf, nf, pt, pf).permute(0, 1, 3, 2, 4)  # (B, T', pt, F', pf)
        values = grid.reshape(batch, -1, nf * pf)
        return values if num_frames is None else values[:, :num_frames]

    def random_mask(
        self, patch_mask: torch.Tensor, noise: torch.Tensor | None = None, mask_ratio: float | None = None
    ) -> torch.Tensor:
        """Unstructured random mask (1 = masked) of `mask_ratio` of each clip's real patches: the patches with the
        smallest `noise` are masked. patch_mask, noise: (batch, num_patches)."""
        ratio = check_mask_ratio(self.config.mask_ratio if mask_ratio is None else mask_ratio)
        if noise is None:
            noise = torch.rand(patch_mask.shape, device=patch_mask.device)
        else:
            noise = check_noise(noise, patch_mask)
        noise = noise.float().masked_fill(~patch_mask, float("inf"))  # padding is never masked
        rank = noise.argsort(dim=1).argsort(dim=1)  # (B, P) rank of each patch
        real = patch_mask.sum(dim=1, keepdim=True)
        num_masked = real - (real.float() * (1.0 - ratio)).long()  # MAE's convention: keep int(P * (1 - r))
        return (rank < num_masked).float()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> AxLSTMForPreTrainingOutput | tuple:
        r"""
        Args:
            input_values (`torch.FloatTensor` of shape `(batch, frames, num_mel_bins)`): normalised log-mel.
            attention_mask (`torch.LongTensor` of shape `(batch, frames)`, *optional*): 1 real, 0 padding.
            mask (`torch.Tensor` of shape `(batch, num_patches)`, *optional*):
                The patches to mask (1 = masked). Without it a random mask of `config.mask_ratio` is drawn.
            noise (`torch.FloatTensor` of shape `(batch, num_patches)`, *optional*):
                Makes the random mask reproducible: the patches with the smallest noise are masked.
            output_hidden_states (`bool`, *optional*): return the embeddings and every block's output.
            return_dict (`bool`, *optional*): return an [`AxLSTMForPreTrainingOutput`] instead of a tuple.
            output_attentions (`bool`, *optional*): only `None`/`False` (no attention maps are returned).

        Returns:
            [`AxLSTMForPreTrainingOutput`]: `loss` `()`, `logits` `(batch, num_patches, patch_dim)`, `mask` and
            `patch_mask` `(batch, num_patches)`, `hidden_states` when asked for.
        """
        if output_attentions:
            raise ValueError(self.base_model._attention_message)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        prepared, frame_mask = prepare_input(self.config, input_values, attention_mask)
        batch, frames, _ = prepared.shape
        patch_mask = _patch_mask(self.config, frame_mask, batch, frames // self.config.patch_size[0], prepared.device)
        mask = check_mask_or_noise(mask, noise, patch_mask)
        if mask is None:
            mask = self.random_mask(patch_mask, noise)
        mask = mask.to(prepared.device).float() * patch_mask

        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        outputs = self.base_model._encode(prepared, patch_mask, frame_mask is not None, mask, output_hidden_states)
        n_cls = 1 if self.config.use_cls_token else 0
        logits = self.head(outputs.last_hidden_state[:, n_cls:])  # (B, P, patch_dim)

        target = self.patchify(prepared)  # (B, P, patch_dim)
        per_patch = (logits.float() - target.float()).pow(2).mean(dim=-1)  # (B, P)
        weights = mask if self.config.loss_on == "masked" else patch_mask.float()
        loss = (per_patch * weights).sum() / weights.sum().clamp_min(1.0)

        if not return_dict:
            return tuple(v for v in (loss, logits, mask, patch_mask, outputs.hidden_states) if v is not None)
        return AxLSTMForPreTrainingOutput(
            loss=loss, logits=logits, mask=mask, patch_mask=patch_mask, hidden_states=outputs.hidden_states
        )


class AxLSTMForPreTraining(SpectrogramPreTrainingMixin, AxLSTMPreTrainedModel):
    """AxLSTM with the masked-spectrogram-modelling head: random patches are masked and every patch reconstructed."""

    _auto_class = "AutoModelForPreTraining"

    def __init__(self, config: AxLSTMConfig):
        super().__init__(config)
        self.axlstm = AxLSTMModel(config)
        self.head = AxLSTMReconstructionHead(config)
        self.post_init()


class SpectrogramClassificationMixin:
    """Audio classification on top of an encoder (`self.base_model`): pooled output (or CLS) -> dropout -> linear,
    with checked labels; the same for AxLSTM and SSAST."""

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_attentions: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        Args:
            input_values (`torch.FloatTensor` of shape `(batch, frames, num_mel_bins)`): normalised log-mel.
            attention_mask (`torch.LongTensor` of shape `(batch, frames)`, *optional*): 1 real, 0 padding.
            labels (`torch.Tensor`, *optional*):
                `(batch,)` class indices (single-label), `(batch, num_labels)` floats (multi-label; or set
                `config.problem_type="multi_label_classification"`) or `(batch,)` / `(batch, num_labels)` targets
                for regression (`num_labels == 1` or `problem_type="regression"`).

            output_hidden_states (`bool`, *optional*): return the embeddings and every block's output.
            return_dict (`bool`, *optional*): return a [`SequenceClassifierOutput`] instead of a tuple.
            output_attentions (`bool`, *optional*): only `None`/`False` (no attention maps are returned).

        Returns:
            [`SequenceClassifierOutput`] with `logits` of shape `(batch, num_labels)` and `loss` when labels are given.
            Labels of the wrong type, shape, dtype or range raise a `TypeError` / `ValueError` that says what the
            problem type expects.
        """
        if output_attentions:
            raise ValueError(self.base_model._attention_message)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.base_model(
            input_values, attention_mask=attention_mask, output_hidden_states=output_hidden_states, return_dict=True
        )
        if self.config.classifier_pooling == "cls":
            pooled = outputs.last_hidden_state[:, 0]
        else:
            pooled = outputs.pooler_output
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)
        loss = None
        if labels is not None:
            labels = check_labels(labels, logits, self.config)
            loss = self.loss_function(labels, logits, self.config)
        if not return_dict:
            out = (logits, outputs.hidden_states) if outputs.hidden_states is not None else (logits,)
            return ((loss,) + out) if loss is not None else out
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class AxLSTMForAudioClassification(SpectrogramClassificationMixin, AxLSTMPreTrainedModel):
    """AxLSTM with a classification head: pooled encoder output -> dropout -> linear."""

    _auto_class = "AutoModelForAudioClassification"

    def __init__(self, config: AxLSTMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.axlstm = AxLSTMModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


__all__ = [
    "RemoteCodeSaveMixin",
    "SpectrogramClassificationMixin",
    "SpectrogramEncoderMixin",
    "SpectrogramPreTrainingMixin",
    "AxLSTMForAudioClassification",
    "AxLSTMForPreTraining",
    "AxLSTMModel",
    "AxLSTMModelOutput",
    "AxLSTMForPreTrainingOutput",
    "AxLSTMPreTrainedModel",
    "sincos_position_embedding",
]

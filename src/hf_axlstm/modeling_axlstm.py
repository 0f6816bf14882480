# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""PyTorch AxLSTM (Audio xLSTM): a masked-spectrogram-modelling encoder built from Vision-LSTM mLSTM blocks.

Yadav, Theodoridis & Tan, "Audio xLSTMs: learning self-supervised audio representations with xLSTMs"
(arXiv 2408.16568). The data flows: log-mel (batch, frames, mels) -> 4 x 16 patches, time-major -> + fixed 2-D
sin-cos positions -> [mask tokens] -> CLS prepended -> mLSTM blocks of alternating direction -> final LayerNorm.
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
from .kernels_axlstm import (
    _fused_cpu_ops,
    _hand_written_chunkwise,
    mlstm,
    mlstm_chunkwise_graph,
    mlstm_parallel,
    select_backend,
    select_chunk_size,
)
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
        # h: (B, NH, S, DH) -> (B, S, NH * DH). The norm runs on the contiguous heads layout (measured ~3x faster
        # than on the transposed view, which layer_norm would copy first), and the scale writes the transposed result.
        batch, heads, seq, head_dim = h.shape
        h = F.layer_norm(h, (head_dim,), eps=self.eps)  # group norm with one group per head
        if _records_grad(h, self.weight):
            scale = (1.0 + self.weight).view(heads, 1, head_dim)
            return (h * scale).transpose(1, 2).reshape(batch, seq, heads * head_dim)
        return _scaled_to_rows(h, self.weight)  # one pass: scale and transpose


class _MixerOutput(torch.autograd.Function):
    """The mixer's tail, (headwise_norm(h) * (1 + w) + skip * c) * silu(z), with a backward that recomputes its
    intermediates instead of keeping them: autograd would keep the normed h, the gated sum and silu(z), three
    (B, S, I) tensors per block, while h, c and z are kept alive by other ops anyway (measured: peak memory of a base
    training step 0.63x -> see benchmarks/README.md). float32 without autocast only; otherwise plain autograd.
    On CPU tensors, where hf_axlstm's fused CPU kernels are registered (`hf_axlstm.cpu_kernels`), both passes are one
    loop over the rows each (forward + backward 0.56x the time for tiny's block at batch 32)."""

    @staticmethod
    def forward(ctx, h, norm_weight, conv_act, skip, z, eps):
        # h (B, NH, S, DH); norm_weight, skip (I,); conv_act, z (B, S, I) -> (B, S, I)
        batch, heads, seq, head_dim = h.shape
        h = h.contiguous()
        ctx.fused = _fused_cpu_ops() if h.device.type == "cpu" else None
        if ctx.fused is not None:
            out, mean, rstd = ctx.fused.tail_forward(
                h,
                norm_weight.contiguous(),
                conv_act.contiguous(),
                skip.contiguous(),
                F.silu(z).contiguous(),
                float(eps),
            )
            ctx.save_for_backward(h, mean, rstd, norm_weight, conv_act, skip, z)
            return out
        normed, mean, rstd = torch.native_layer_norm(h, [head_dim], None, None, eps)
        out = _scaled_to_rows(normed, norm_weight)
        out.addcmul_(conv_act, skip).mul_(F.silu(z))
        ctx.save_for_backward(h, mean, rstd, norm_weight, conv_act, skip, z)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        h, mean, rstd, norm_weight, conv_act, skip, z = ctx.saved_tensors
        batch, heads, seq, head_dim = h.shape
        if ctx.fused is not None:  # z may be a strided half of the up-projection: the kernel reads its rows
            grad_h, grad_weight, grad_conv, grad_skip, grad_z = ctx.fused.tail_backward(
                grad_out.contiguous(), h, mean, rstd, norm_weight.contiguous(), conv_act.contiguous(),
                skip.contiguous(), z, torch.sigmoid(z).contiguous()
            )  # fmt: skip
            return grad_h, grad_weight, grad_conv, grad_skip, grad_z, None
        normed = (h - mean).mul_(rstd)  # recomputed (B, NH, S, DH)
        gated = _scaled_to_rows(normed, norm_weight).addcmul_(conv_act, skip)  # recomputed (B, S, I)
        grad_z = torch.ops.aten.silu_backward(gated.mul_(grad_out), z)  # d/dz of gated * silu(z)
        grad_gated = grad_out * F.silu(z)
        grad_skip = (grad_gated * conv_act).sum(dim=(0, 1))
        grad_conv = grad_gated * skip
        grad_scaled = grad_gated.view(batch, seq, heads, head_dim).transpose(1, 2)  # (B, NH, S, DH) view
        grad_weight = (grad_scaled * normed).sum(dim=(0, 2)).reshape(-1)
        grad_normed = grad_scaled * (1.0 + norm_weight).view(heads, 1, head_dim)  # contiguous (B, NH, S, DH)
        grad_h = torch.ops.aten.native_layer_norm_backward(
            grad_normed, h, [head_dim], mean, rstd, None, None, [True, False, False]
        )[0]
        return grad_h, grad_weight, grad_conv, grad_skip, grad_z, None


def _scaled_to_rows(normed: torch.Tensor, norm_weight: torch.Tensor) -> torch.Tensor:
    """normed (B, NH, S, DH) * (1 + norm_weight) -> (B, S, NH * DH), scale and transpose in one pass (no autograd)."""
    batch, heads, seq, head_dim = normed.shape
    out = normed.new_empty(batch, seq, heads, head_dim)
    torch.mul(normed, (1.0 + norm_weight).view(heads, 1, head_dim), out=out.transpose(1, 2))
    return out.view(batch, seq, heads * head_dim)


def _records_grad(*tensors: torch.Tensor) -> bool:
    """Whether autograd records an op on these tensors (then the in-place / `out=` fast paths are off); always True
    under torch.compile, which fuses the plain ops itself."""
    if torch.compiler.is_compiling():
        return True
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _fused_training_ops(*tensors: torch.Tensor):
    """The registered fused CPU kernels (`hf_axlstm.cpu_kernels`) where the mixer's float32 training on these CPU
    tensors may run them (gradients recorded, no autocast, eager), else None. Without hf_axlstm's registration (as
    Hub remote code) always None: the eager forms run."""
    if any(t.device.type != "cpu" for t in tensors) or not _records_grad(*tensors):
        return None
    if not _hand_written_chunkwise("cpu", *(t.dtype for t in tensors)):  # the fused cell's own conditions
        return None
    return _fused_cpu_ops()


class _FusedConvSiLU(torch.autograd.Function):
    """silu(`_CausalDepthwiseConv`(x)) through the fused CPU kernel: one pass over the rows forward, one backward
    (which recomputes the pre-activation from x, so only x is kept). The eager pair runs a padded copy, the conv and
    the SiLU forward, and the SiLU's backward, the conv's input gradient and k + 1 reductions backward: 0.45-0.5x
    their time for tiny and base at batch 32 (benchmarks/README.md)."""

    @staticmethod
    def forward(ctx, x, weight, bias, ops):
        # x (B, S, C) rows with a unit channel stride; weight (C, 1, k) as nn.Conv1d stores it; bias (C,)
        taps = weight.reshape(weight.shape[0], -1).contiguous()  # (C, k)
        ctx.save_for_backward(x, taps, bias)
        ctx.ops = ops
        return ctx.ops.conv_forward(x, taps, bias.contiguous())

    @staticmethod
    def backward(ctx, grad_act):
        x, taps, bias = ctx.saved_tensors
        grad_x, grad_taps, grad_bias = ctx.ops.conv_backward(grad_act.contiguous(), x, taps, bias.contiguous())
        return grad_x, grad_taps.view(taps.shape[0], 1, -1), grad_bias, None


class _FusedHeads(torch.autograd.Function):
    """q, k, v in the cell's head layout, (B, NH, S, DH) each, through the fused CPU kernel: q = the 16-wide tiles of
    Wk^T Wq applied to the conv output c, k = c, v = the tiles of Wv applied to x_mlstm (as `_tiled_matmul` +
    `_tiles_to_heads` / `_rows_to_heads`). Each row is read once and its head slices written, where the eager form
    runs a batched product and a layout copy per tensor (and their reverses backward): 0.42-0.5x the time for tiny
    and base at batch 32 (benchmarks/README.md)."""

    @staticmethod
    def forward(ctx, conv_act, x_mlstm, qk_tiles, v_tiles, num_heads, ops):
        qk_tiles, v_tiles = qk_tiles.contiguous(), v_tiles.contiguous()
        ctx.save_for_backward(conv_act, x_mlstm, qk_tiles, v_tiles)
        ctx.ops = ops
        return tuple(ops.heads_forward(conv_act, x_mlstm, qk_tiles, v_tiles, num_heads))

    @staticmethod
    def backward(ctx, grad_q, grad_k, grad_v):
        grads = ctx.ops.heads_backward(
            grad_q.contiguous(), grad_k.contiguous(), grad_v.contiguous(), *ctx.saved_tensors
        )
        return (*grads, None, None)


def _depthwise_conv_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, left: int, right: int):
    """Depthwise convolution over the sequence of x (B, S, C) (any strides), zero-padded by `left` / `right`
    positions, as a channels-last conv2d on a padded copy of the rows: oneDNN's depthwise kernel reads and writes the
    (B, S, C) layout directly (no transposes), in one cache-blocked pass. weight (C, 1, k); returns
    (B, S + left + right - k + 1, C)."""
    channels, kernel_size = weight.shape[0], weight.shape[-1]
    padded = F.pad(x, (0, 0, left, right))  # (B, S + left + right, C), contiguous
    filters = weight.view(channels, 1, 1, kernel_size).contiguous(memory_format=torch.channels_last)
    out = F.conv2d(padded.unsqueeze(1).permute(0, 3, 1, 2), filters, bias, groups=channels)  # (B, C, 1, S')
    return out.permute(0, 2, 3, 1).flatten(1, 2)  # (B, S', C): a view of the channels-last output


class _CausalDepthwiseConv(torch.autograd.Function):
    """Causal depthwise convolution over the sequence in the (B, S, C) layout, with a hand-written backward.

    On CPU (with oneDNN) the forward and the input gradient are channels-last conv2d calls on the rows
    (`_depthwise_conv_rows`; the input gradient is the anti-causal conv with the flipped kernel); elsewhere they are
    k shifted multiply-adds. The weight gradient is k shifted multiply-reductions everywhere (oneDNN's depthwise
    weight gradient was 3-4.5x slower). Measured (batch 8, 256 tokens, 2 threads, ms; see benchmarks/README.md):
    forward 2.2 -> 0.57 at 384 channels and 8.7 -> 2.3 at 1536 against the shifted multiply-adds, which were
    themselves 2.3x faster than transpose + pad + Conv1d + transpose back."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        # x (B, S, C); weight (C, 1, k) as nn.Conv1d stores it; tap k - 1 reads the current position.
        kernel_size = weight.shape[-1]
        ctx.save_for_backward(x, weight)
        if _onednn_rows(x):
            return _depthwise_conv_rows(x, weight.to(x.dtype), bias.to(x.dtype), kernel_size - 1, 0)
        taps = weight.view(-1, kernel_size).t().to(x.dtype)  # (k, C)
        out = torch.addcmul(bias.to(x.dtype), x, taps[-1])
        for shift in range(1, min(kernel_size, x.shape[1])):
            out[:, shift:].addcmul_(x[:, :-shift], taps[-1 - shift])
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        kernel_size, seq = weight.shape[-1], x.shape[1]
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0] and _onednn_rows(grad_out):
            grad_x = _depthwise_conv_rows(grad_out, weight.flip(-1).to(grad_out.dtype), None, 0, kernel_size - 1)
        elif ctx.needs_input_grad[0]:
            taps = weight.view(-1, kernel_size).t().to(grad_out.dtype)  # (k, C)
            grad_x = grad_out * taps[-1]
            for shift in range(1, min(kernel_size, seq)):
                grad_x[:, :-shift].addcmul_(grad_out[:, shift:], taps[-1 - shift])
        if ctx.needs_input_grad[1]:
            grad_taps = [
                (grad_out[:, shift:] * x[:, : seq - shift]).sum(dim=(0, 1))
                if shift < seq
                else grad_out.new_zeros(x.shape[-1])
                for shift in range(kernel_size - 1, -1, -1)
            ]  # tap 0 (the oldest position) first
            grad_weight = torch.stack(grad_taps, dim=-1).view_as(weight).to(weight.dtype)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(dim=(0, 1)).to(weight.dtype)
        return grad_x, grad_weight, grad_bias


def _onednn_rows(x: torch.Tensor) -> bool:
    """Whether the channels-last conv2d path runs on x: CPU tensors with oneDNN (on CUDA the shifted multiply-adds
    measured 4-6% faster end to end than cuDNN's conv, H200)."""
    return x.device.type == "cpu" and torch.backends.mkldnn.is_available()


class AxLSTMCausalConv1d(nn.Module):
    """Depthwise Conv1d over the sequence that only looks back (left padding of kernel_size - 1).

    The parameters are an `nn.Conv1d`'s (the authors' layout); the computation is `_CausalDepthwiseConv`, and the
    plain padded Conv1d under torch.compile."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(channels, channels, kernel_size, groups=channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, S, C) -> (B, S, C), contiguous outside torch.compile."""
        if torch.compiler.is_compiling():
            x = F.pad(x.transpose(1, 2), (self.kernel_size - 1, 0))  # (B, C, S + k - 1)
            return self.conv(x).transpose(1, 2)  # (B, S, C)
        return _CausalDepthwiseConv.apply(x, self.conv.weight, self.conv.bias)


class AxLSTMBlockDiagonalLinear(nn.Module):
    """Block-diagonal linear map without bias: `weight[b]` (block_size x block_size) maps channel block `b`."""

    def __init__(self, features: int, block_size: int):
        super().__init__()
        self.block_size = block_size
        self.weight = nn.Parameter(torch.empty(features // block_size, block_size, block_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = x.unflatten(-1, (-1, self.block_size))  # (..., NB, bs)
        return torch.einsum("...bi,boi->...bo", blocks, self.weight).flatten(-2)


def _fold_blocks(weight: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """`weight @ W` for a (rows, features) `weight` and the block-diagonal W given by its blocks (NB, bs, bs)."""
    folded = torch.einsum("rbo,boi->rbi", weight.unflatten(-1, (-1, blocks.shape[-1])), blocks)
    return folded.flatten(-2)


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for 16-bit models (as under autocast), float64 for a float64 model."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _block_tiles(weight: torch.Tensor, width: int = 16) -> torch.Tensor:
    """Block-diagonal weight (NB, bs, bs) (out, in) -> (G, tile_in, tile_out) block-diagonal tiles of `width` channels.

    4 x 4 blocks make poor matmuls; grouping 4 of them into one block-diagonal 16 x 16 tile (zeros off the blocks)
    makes the projection one batched matmul over the tiles, measured 2-3.5x faster than the per-block einsum.
    16-wide tiles beat 32-wide ones (half the FLOPs, at a lower rate): 1.3-2x on 2048 rows of 384-1536 channels,
    +5% for the small and base encoders, no change for tiny."""
    num_blocks, bs, _ = weight.shape
    per_tile = math.gcd(num_blocks, max(1, width // bs))
    w = weight.view(num_blocks // per_tile, per_tile, bs, bs)  # (G, blk, out, in)
    diag = torch.diag_embed(w.permute(0, 3, 2, 1))  # (G, in, out, blk, blk), nonzero where the blocks match
    return diag.permute(0, 3, 1, 4, 2).reshape(-1, per_tile * bs, per_tile * bs)  # (G, blk*in, blk*out)


def _tiled_matmul(x: torch.Tensor, tiles: torch.Tensor) -> torch.Tensor:
    """x (..., C) times block-diagonal tiles (G, C / G, out) -> (G, N, out) with N = prod(x.shape[:-1]); tile g reads
    the channels of tile g. x may be a strided view with a contiguous last axis (e.g. a slice of a wider output)."""
    num_tiles, tile_in, _ = tiles.shape
    rows = x.reshape(-1, x.shape[-1])  # a view for such slices
    return torch.bmm(rows.unflatten(1, (num_tiles, tile_in)).transpose(0, 1), tiles)


def _rows_to_heads(x: torch.Tensor, batch: int, seq: int, num_heads: int) -> torch.Tensor:
    """(B * S, NH * DH) -> (B, NH, S, DH) contiguous, in one copy."""
    return x.view(batch, seq, num_heads, -1).transpose(1, 2).contiguous()


def _tiles_to_heads(y: torch.Tensor, batch: int, seq: int, num_heads: int) -> torch.Tensor:
    """(G, B * S, tile) tile-major projection output -> (B, NH, S, DH) contiguous, in one copy."""
    num_tiles, _, tile = y.shape
    head_dim = num_tiles * tile // num_heads
    if head_dim % tile == 0:  # no tile straddles two heads
        y = y.view(num_heads, head_dim // tile, batch, seq, tile)
        return y.permute(2, 0, 3, 1, 4).reshape(batch, num_heads, seq, head_dim)
    y = y.transpose(0, 1).reshape(batch, seq, num_heads, head_dim)
    return y.transpose(1, 2).contiguous()


class AxLSTMMixer(nn.Module):
    """The mLSTM layer of a block: up-projection, causal conv, q/k/v, mLSTM cell, skip, output gate, down-projection.

    The parameters are the authors' (their names and shapes), but the computation is reorganised into fewer and
    larger operations, all exact rewrites of the same function:
    - q and k only ever meet in dot products q_i . k_j, and both are block-diagonal maps of the conv output c:
      q_i . k_j = c_i^T Wq^T Wk c_j. So the cell gets q' = (Wk^T Wq) c (one block-diagonal map, as 16-wide tiles in
      one batched matmul) and k' = c itself: the k projection disappears.
    - The gates are gate_proj(concat(q, k, v)); their weight is folded through the q/k/v blocks, and the part that
      reads v = Wv x_mlstm further through the up-projection, so the gates are two thin products, one with the
      conv output and one with the mixer's input, and the concatenation is never built.
    - Without autograd the derived weights are cached (keyed on the parameters' storage and version counters) and
      the elementwise tail runs in place.
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
        self._derived_cache: tuple | None = None

    def _apply(self, fn, recurse=True):
        self._derived_cache = None  # .to() / .half() / .cuda() replace the parameters' storage
        return super()._apply(fn, recurse)

    def _derived_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_gate_weight (2NH, D), conv_gate_weight (2NH, I), qk_tiles (G, t, t), v_tiles (G, t, t)), float32.

        The gates are x_gate_weight x + conv_gate_weight c + bias (x the mixer's input, c the conv output); qk_tiles
        are the block-diagonal Wk^T Wq as 16-wide tiles (see the class docstring). Cached while no gradient is
        recorded: a few hundred KiB per block."""
        params = (
            self.proj_up.weight,
            self.q_proj.weight,
            self.k_proj.weight,
            self.v_proj.weight,
            self.gate_proj.weight,
        )
        cacheable = not _records_grad(*params)
        if cacheable:
            key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
            if self._derived_cache is not None and self._derived_cache[0] == key:
                return self._derived_cache[1]
        inner = self.learnable_skip.shape[0]
        acc = _accumulation_dtype(self.proj_up.weight.dtype)
        with torch.autocast(device_type=self.proj_up.weight.device.type, enabled=False):
            w_gate = self.gate_proj.weight.to(acc)  # (2NH, 3I)
            w_up = self.proj_up.weight.to(acc)  # (2I, D)
            w_q, w_k, w_v = (proj.weight.to(acc) for proj in (self.q_proj, self.k_proj, self.v_proj))
            x_gate_weight = _fold_blocks(w_gate[:, 2 * inner :], w_v) @ w_up[:inner]  # (2NH, D)
            conv_gate_weight = _fold_blocks(w_gate[:, :inner], w_q) + _fold_blocks(w_gate[:, inner : 2 * inner], w_k)
            qk = torch.matmul(w_k.transpose(1, 2), w_q)  # (NB, bs, bs): Wk^T Wq
            derived = (x_gate_weight, conv_gate_weight, _block_tiles(qk), _block_tiles(w_v))
        if cacheable:
            self._derived_cache = (key, derived)
        return derived

    def forward(self, x: torch.Tensor, chunk_aligned: bool = False) -> torch.Tensor:
        """x (B, S, D) -> (B, S, D). `chunk_aligned`: S is a multiple of `config.chunk_size` (used under export)."""
        batch, real_seq, _ = x.shape
        inner = self.learnable_skip.shape[0]
        chunk = self.config.chunk_size
        backend = self.config.mlstm_backend
        exporting = torch.compiler.is_exporting()
        if (
            backend == "auto" and not exporting
        ):  # resolved here (not in `mlstm`) because the padding below depends on it
            training = torch.is_grad_enabled() and (x.requires_grad or self.proj_up.weight.requires_grad)
            head_dim = inner // self.num_heads
            backend = select_backend(real_seq, head_dim, chunk, training, x.is_cuda, batch * self.num_heads, x.dtype)
            if backend == "chunkwise":  # float32 CPU training: a chunk length that follows the head width
                chunk = select_chunk_size(real_seq, head_dim, chunk, training, x.is_cuda, x.dtype)
        # The chunkwise kernel works on whole chunks. Padding the (narrow) input at the end, where the causal conv and
        # mLSTM cannot carry it back to the real positions, saves padding q, k and v inside the kernel.
        pad = -real_seq % chunk if backend == "chunkwise" and not exporting and real_seq > chunk else 0
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
        seq = real_seq + pad
        rows = batch * seq
        x_gate_weight, conv_gate_weight, qk_tiles, v_tiles = self._derived_weights()
        x_mlstm, z = self.proj_up(x).chunk(2, dim=-1)  # 2 x (B, S, I)
        # float32 CPU training where hf_axlstm registered its fused kernels: conv + SiLU and q / k / v as one pass each
        fused = None if exporting else _fused_training_ops(x_mlstm, self.conv.conv.weight)
        if fused is not None:
            conv_act = _FusedConvSiLU.apply(x_mlstm, self.conv.conv.weight, self.conv.conv.bias, fused)
            grad = True
        else:
            conv_act = self.conv(x_mlstm)  # (B, S, I)
            grad = _records_grad(conv_act, z)
            conv_act = F.silu(conv_act) if grad else F.silu(conv_act, inplace=True)
        conv_rows = conv_act.reshape(rows, inner)  # a copy only on the autograd path

        # Gates in float32 (float64 for a float64 model) even under autocast or in a 16-bit model: they feed exp().
        acc = conv_gate_weight.dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            gates = torch.addmm(self.gate_proj.bias.to(acc), conv_rows.to(acc), conv_gate_weight.t())
            gates = gates.addmm_(x.reshape(rows, -1).to(acc), x_gate_weight.t()).view(batch, seq, -1)  # (B, S, 2NH)
        igate, fgate = gates.transpose(1, 2).chunk(2, dim=1)  # (B, NH, S) each

        if fused is not None:
            q, k, v = _FusedHeads.apply(conv_act, x_mlstm, qk_tiles, v_tiles, self.num_heads, fused)
        else:
            q = _tiles_to_heads(_tiled_matmul(conv_rows, qk_tiles.to(conv_rows.dtype)), batch, seq, self.num_heads)
            k = _rows_to_heads(conv_rows, batch, seq, self.num_heads)
            v = _tiles_to_heads(_tiled_matmul(x_mlstm, v_tiles.to(x_mlstm.dtype)), batch, seq, self.num_heads)
        if exporting:
            # torch.export / ONNX: the length is symbolic, so the chunk loop cannot be unrolled; one graph for every
            # length, linear in it (the loop-free chunkwise form; `parallel` exports the quadratic one).
            if backend == "parallel":
                h = mlstm_parallel(q, k, v, igate, fgate, eps=self.config.mlstm_eps)
            else:
                h = mlstm_chunkwise_graph(
                    q, k, v, igate, fgate, eps=self.config.mlstm_eps, chunk_size=chunk, aligned=chunk_aligned
                )
        elif backend == "chunkwise" and torch.compiler.is_compiling():
            # torch.compile: the loop over the chunks would pin their number (a recompile for every length); the
            # loop-free form keeps one graph for any length under dynamic shapes (same function).
            h = mlstm_chunkwise_graph(q, k, v, igate, fgate, eps=self.config.mlstm_eps, chunk_size=chunk)
        else:
            h = mlstm(q, k, v, igate, fgate, eps=self.config.mlstm_eps, backend=backend, chunk_size=chunk)
        # h: (B, NH, S, DH)
        tail_grad = grad or _records_grad(h)
        fp32 = h.dtype == conv_act.dtype == z.dtype == torch.float32 and not torch.is_autocast_enabled(x.device.type)
        if tail_grad and fp32 and not torch.compiler.is_compiling():
            h = _MixerOutput.apply(h, self.out_norm.weight, conv_act, self.learnable_skip, z, self.out_norm.eps)
        elif tail_grad:
            h = (self.out_norm(h) + self.learnable_skip * conv_act) * F.silu(z)  # (B, S, I)
        else:
            h = self.out_norm(h).addcmul_(conv_act, self.learnable_skip.to(h.dtype)).mul_(F.silu(z, inplace=True))
        out = self.proj_down(h)  # (B, S, D)
        return out[:, :real_seq] if pad else out


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

    def _encode(
        self,
        input_values: torch.Tensor,
        patch_mask: torch.Tensor,
        padded: bool,
        mask: torch.Tensor | None,
        output_hidden_states: bool,
    ) -> AxLSTMModelOutput:
        """The encoder proper, on input already validated and padded by `prepare_input`."""
        hidden_states, token_mask = self._embed(input_values, patch_mask, mask)  # (B, S, D), (B, S)
        real_seq = hidden_states.shape[1]
        exporting = torch.compiler.is_exporting()
        if exporting:
            # One graph for every length: the tokens are padded once to whole mLSTM chunks (as padding at the end,
            # which the causal blocks never let reach a real token), so no block pads again.
            pad = -real_seq % self.config.chunk_size
            hidden_states = F.pad(hidden_states, (0, 0, 0, pad))
            token_mask = F.pad(token_mask, (0, pad))
            padded = True
        seq = hidden_states.shape[1]

        reverse_index = None
        if padded and (torch.compiler.is_compiling() or not bool(patch_mask.all())):
            # Reverse only each sequence's real prefix so the padding stays behind the real tokens in both
            # directions; the causal mLSTM and conv then never let padding reach a real token.
            lengths = token_mask.sum(dim=1, keepdim=True)  # (B, 1)
            positions = torch.arange(seq, device=hidden_states.device).unsqueeze(0)  # (1, S)
            reverse_index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, S)

        all_hidden = (hidden_states[:, :real_seq],) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states, reverse_index, exporting)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states[:, :real_seq],)

        return self._finish(hidden_states[:, :real_seq], patch_mask, token_mask[:, :real_seq], all_hidden)


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

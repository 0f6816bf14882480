# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Implementations of the AxLSTM mixer, and the one place that decides how a mixer call runs.

`modeling_axlstm.AxLSTMMixer.plain_forward` computes the paper's mLSTM layer step by step. The implementations here
compute the same function (exact rewrites; the tests compare outputs and gradients in float64 and on the authors'
fixtures) with fewer and larger operations. They are chosen the way transformers chooses an attention
implementation: by name, from `config.mixer_implementation` (or `model.set_mixer_implementation(name)`), looked up in
`ALL_MIXER_IMPLEMENTATIONS`:

- `"plain"`: the modeling file's `plain_forward`, trained through autograd.
- `"folded"` (what `"auto"` runs): `folded_mixer_forward` below.
  - q and k only meet in dot products q_i . k_j = c_i^T Wq^T Wk c_j (c the conv output), so the cell gets
    q' = (Wk^T Wq) c and k' = c: the k projection disappears.
  - The gates are gate_proj(concat(q, k, v)); their weight is folded through the q / k / v blocks and, for the part
    that reads v = Wv x_mlstm, through the up-projection: two thin products (with c and with the mixer's input), and
    the concatenation is never built.
  - The 4 x 4 blocks are grouped into 16-wide block-diagonal tiles: one batched matmul per projection.
  - Without autograd the derived weights are cached and the elementwise tail runs in place; with autograd the conv,
    the tail and the cell run hand-written backward passes that recompute instead of keeping (B, S, I) and S x S
    intermediates.
- `"fused_cpu"`: the folded form whose conv + SiLU, q / k / v, tail and chunkwise cell run hf-axlstm's fused C++
  kernels for float32 training on a CPU (registered by `hf_axlstm.cpu_kernels`, which is not Hub remote code).

`resolve_mixer_spec` is the one dispatcher: from the model's settings (`mixer_implementation`, `mlstm_backend`,
`chunk_size`) and the call (sizes, device, dtype, gradients, export / compile) it decides the implementation, the
cell's form and chunk length (`kernels_axlstm.resolve_cell`), the hand-written backward passes, the fused kernels and
the padding, and returns them as a `MixerSpec`. Nothing is chosen by module-level switches.

This module imports only torch and `kernels_axlstm`, so it travels with the modeling file as Hub remote code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .kernels_axlstm import CellSpec, fused_cpu_training, resolve_cell, run_cell


class MixerImplementation(NamedTuple):
    """A registered mixer implementation."""

    forward: Callable | None  # (mixer, x (B, S, D), spec) -> (B, S, D); None: the modeling file's `plain_forward`
    recompute: bool  # training runs the hand-written backward passes (else autograd through the plain ops)
    fused_kernels: Callable | None = None  # returns the fused CPU kernels (built once), or raises why it cannot


class MixerSpec(NamedTuple):
    """How one mixer call runs (see `resolve_mixer_spec`)."""

    forward: Callable | None  # the implementation's (None: the modeling file's `plain_forward`)
    cell: CellSpec
    fused: object  # the fused CPU kernels for the conv, q / k / v and tail of this call, or None
    pad: int  # positions padded at the end (whole chunks), cut off again after the mixer


class MixerImplementations:
    """The registry of mixer implementations by name, like transformers' `ALL_ATTENTION_FUNCTIONS`."""

    def __init__(self) -> None:
        self._entries: dict[str, MixerImplementation] = {}

    def register(self, name: str, implementation: MixerImplementation) -> None:
        if not name.isidentifier() or name == "auto":
            raise ValueError(f"name={name!r} is invalid; expected an identifier other than 'auto'.")
        self._entries[name] = implementation

    def names(self) -> list[str]:
        return ["auto", *self._entries]

    def get(self, name: str) -> MixerImplementation:
        """The implementation registered as `name` (`"auto"`: `"folded"`)."""
        entry = self._entries.get("folded" if name == "auto" else name)
        if entry is None:
            hint = " ('fused_cpu' is registered by `import hf_axlstm`)" if name == "fused_cpu" else ""
            raise ValueError(f"mixer_implementation={name!r} is not registered{hint}; expected one of {self.names()}.")
        return entry


ALL_MIXER_IMPLEMENTATIONS = MixerImplementations()


def resolve_mixer_spec(mixer, x: torch.Tensor, chunk_aligned: bool = False) -> MixerSpec:
    """The one decision of how `mixer` runs on x (B, S, D): see the module docstring. `chunk_aligned`: S is a multiple
    of `config.chunk_size` (the exported model pads once, up front)."""
    config = mixer.config
    implementation = ALL_MIXER_IMPLEMENTATIONS.get(config.mixer_implementation)
    batch, seq, _ = x.shape
    weight = mixer.proj_up.weight
    training = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    fused = None
    if (
        implementation.fused_kernels is not None
        and training
        and fused_cpu_training(implementation.recompute, x.device.type, x.dtype, weight.dtype)
    ):
        fused = implementation.fused_kernels()
    head_dim = config.intermediate_size // config.num_heads
    cell = resolve_cell(
        config.mlstm_backend,
        config.chunk_size,
        seq,
        head_dim,
        batch * config.num_heads,
        x.device.type,
        x.dtype,
        training,
        implementation.recompute,
        fused,
        chunk_aligned,
    )
    # The chunkwise cell works on whole chunks. Padding the (narrow) input at the end, where the causal conv and the
    # mLSTM cannot carry it back to the real positions, saves padding q, k and v inside the cell.
    chunked = cell.form in ("chunkwise", "chunkwise_graph") and not torch.compiler.is_exporting()
    pad = -seq % cell.chunk_size if chunked and seq > cell.chunk_size else 0
    return MixerSpec(implementation.forward, cell, fused, pad)


# --------------------------------------------------------------------------------------------- the folded mixer


def records_grad(*tensors: torch.Tensor) -> bool:
    """Whether autograd records an op on these tensors (then the in-place / `out=` fast paths are off); always True
    under torch.compile, which fuses the plain ops itself."""
    if torch.compiler.is_compiling():
        return True
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for 16-bit models (as under autocast), float64 for a float64 model."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _fold_blocks(weight: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """`weight @ W` for a (rows, features) `weight` and the block-diagonal W given by its blocks (NB, bs, bs)."""
    folded = torch.einsum("rbo,boi->rbi", weight.unflatten(-1, (-1, blocks.shape[-1])), blocks)
    return folded.flatten(-2)


def block_tiles(weight: torch.Tensor, width: int = 16) -> torch.Tensor:
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


def derived_weights(mixer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_gate_weight (2NH, D), conv_gate_weight (2NH, I), qk_tiles (G, t, t), v_tiles (G, t, t)) of a mixer, in the
    accumulation dtype.

    The gates are x_gate_weight x + conv_gate_weight c + bias (x the mixer's input, c the conv output); qk_tiles are
    the block-diagonal Wk^T Wq as 16-wide tiles. Cached on the mixer while no gradient is recorded (keyed on the
    parameters' storage and version counters; the mixer drops the cache when `.to()` & co. replace them): a few
    hundred KiB per block."""
    params = (
        mixer.proj_up.weight,
        mixer.q_proj.weight,
        mixer.k_proj.weight,
        mixer.v_proj.weight,
        mixer.gate_proj.weight,
    )
    cacheable = not records_grad(*params)
    if cacheable:
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        cached = mixer.implementation_cache.get("folded")
        if cached is not None and cached[0] == key:
            return cached[1]
    inner = mixer.learnable_skip.shape[0]
    acc = _accumulation_dtype(mixer.proj_up.weight.dtype)
    with torch.autocast(device_type=mixer.proj_up.weight.device.type, enabled=False):
        w_gate = mixer.gate_proj.weight.to(acc)  # (2NH, 3I)
        w_up = mixer.proj_up.weight.to(acc)  # (2I, D)
        w_q, w_k, w_v = (proj.weight.to(acc) for proj in (mixer.q_proj, mixer.k_proj, mixer.v_proj))
        x_gate_weight = _fold_blocks(w_gate[:, 2 * inner :], w_v) @ w_up[:inner]  # (2NH, D)
        conv_gate_weight = _fold_blocks(w_gate[:, :inner], w_q) + _fold_blocks(w_gate[:, inner : 2 * inner], w_k)
        qk = torch.matmul(w_k.transpose(1, 2), w_q)  # (NB, bs, bs): Wk^T Wq
        derived = (x_gate_weight, conv_gate_weight, block_tiles(qk), block_tiles(w_v))
    if cacheable:
        mixer.implementation_cache["folded"] = (key, derived)
    return derived


def folded_mixer_forward(mixer, x: torch.Tensor, spec: MixerSpec) -> torch.Tensor:
    """The mixer's function through the folded weights (see the module docstring): x (B, S, D) -> (B, S, D)."""
    batch, seq, _ = x.shape
    inner = mixer.learnable_skip.shape[0]
    heads = mixer.num_heads
    rows = batch * seq
    conv, fused = mixer.conv.conv, spec.fused
    x_gate_weight, conv_gate_weight, qk_tiles, v_tiles = derived_weights(mixer)
    x_mlstm, z = mixer.proj_up(x).chunk(2, dim=-1)  # 2 x (B, S, I)
    if fused is not None:  # conv + SiLU in one pass
        conv_act = fused.conv_silu(x_mlstm, conv.weight, conv.bias)
        grad = True
    else:
        conv_act = causal_depthwise_conv(x_mlstm, conv.weight, conv.bias)  # (B, S, I)
        grad = records_grad(conv_act, z)
        conv_act = F.silu(conv_act) if grad else F.silu(conv_act, inplace=True)
    conv_rows = conv_act.reshape(rows, inner)  # a copy only on the autograd path

    # Gates in float32 (float64 for a float64 model) even under autocast or in a 16-bit model: they feed exp().
    acc = conv_gate_weight.dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        gates = torch.addmm(mixer.gate_proj.bias.to(acc), conv_rows.to(acc), conv_gate_weight.t())
        gates = gates.addmm_(x.reshape(rows, -1).to(acc), x_gate_weight.t()).view(batch, seq, -1)  # (B, S, 2NH)
    igate, fgate = gates.transpose(1, 2).chunk(2, dim=1)  # (B, NH, S) each

    if fused is not None:  # q' = (Wk^T Wq) c, k' = c and v = Wv x_mlstm straight into the head layout
        q, k, v = fused.heads(conv_act, x_mlstm, qk_tiles, v_tiles, heads)
    else:
        q = _tiles_to_heads(_tiled_matmul(conv_rows, qk_tiles.to(conv_rows.dtype)), batch, seq, heads)
        k = _rows_to_heads(conv_rows, batch, seq, heads)
        v = _tiles_to_heads(_tiled_matmul(x_mlstm, v_tiles.to(x_mlstm.dtype)), batch, seq, heads)
    h = run_cell(q, k, v, igate, fgate, spec.cell, mixer.config.mlstm_eps)  # (B, NH, S, DH)

    norm_weight, skip, eps = mixer.out_norm.weight, mixer.learnable_skip, mixer.out_norm.eps
    tail_grad = grad or records_grad(h)
    fp32 = h.dtype == conv_act.dtype == z.dtype == torch.float32 and not torch.is_autocast_enabled(x.device.type)
    if fused is not None:
        h = fused.tail(h, norm_weight, conv_act, skip, z, eps)
    elif tail_grad and fp32 and not torch.compiler.is_compiling():
        h = _MixerOutput.apply(h, norm_weight, conv_act, skip, z, eps)
    elif tail_grad:
        h = (mixer.out_norm(h) + skip * conv_act) * F.silu(z)  # (B, S, I)
    else:
        h = _scaled_to_rows(F.layer_norm(h, (h.shape[-1],), eps=eps), norm_weight)
        h = h.addcmul_(conv_act, skip.to(h.dtype)).mul_(F.silu(z, inplace=True))
    return mixer.proj_down(h)  # (B, S, D)


# ------------------------------------------------------------------------------- hand-written conv and tail passes


def _scaled_to_rows(normed: torch.Tensor, norm_weight: torch.Tensor) -> torch.Tensor:
    """normed (B, NH, S, DH) * (1 + norm_weight) -> (B, S, NH * DH), scale and transpose in one pass (no autograd).
    The head norm runs on the contiguous heads layout (measured ~3x faster than on the transposed view, which
    layer_norm would copy first)."""
    batch, heads, seq, head_dim = normed.shape
    out = normed.new_empty(batch, seq, heads, head_dim)
    torch.mul(normed, (1.0 + norm_weight).view(heads, 1, head_dim), out=out.transpose(1, 2))
    return out.view(batch, seq, heads * head_dim)


class _MixerOutput(torch.autograd.Function):
    """The mixer's tail, (headwise_norm(h) * (1 + w) + skip * c) * silu(z), with a backward that recomputes its
    intermediates instead of keeping them: autograd would keep the normed h, the gated sum and silu(z), three
    (B, S, I) tensors per block, while h, c and z are kept alive by other ops anyway (measured: peak memory of a base
    training step 0.63x; docs/performance.md). float32 without autocast only; otherwise plain autograd."""

    @staticmethod
    def forward(ctx, h, norm_weight, conv_act, skip, z, eps):
        # h (B, NH, S, DH); norm_weight, skip (I,); conv_act, z (B, S, I) -> (B, S, I)
        head_dim = h.shape[-1]
        h = h.contiguous()
        normed, mean, rstd = torch.native_layer_norm(h, [head_dim], None, None, eps)
        out = _scaled_to_rows(normed, norm_weight)
        out.addcmul_(conv_act, skip).mul_(F.silu(z))
        ctx.save_for_backward(h, mean, rstd, norm_weight, conv_act, skip, z)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        h, mean, rstd, norm_weight, conv_act, skip, z = ctx.saved_tensors
        batch, heads, seq, head_dim = h.shape
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


def _onednn_rows(x: torch.Tensor) -> bool:
    """Whether the channels-last conv2d path runs on x: CPU tensors with oneDNN (on CUDA the shifted multiply-adds
    measured 4-6% faster end to end than cuDNN's conv, H200)."""
    return x.device.type == "cpu" and torch.backends.mkldnn.is_available()


def causal_depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The causal depthwise conv of x (B, S, C) with an `nn.Conv1d`'s weight (C, 1, k) and bias (C,), in the rows
    layout (`_CausalDepthwiseConv`); under torch.compile the padded Conv1d, which the compiler fuses itself."""
    if torch.compiler.is_compiling():
        padded = F.pad(x.transpose(1, 2), (weight.shape[-1] - 1, 0))  # (B, C, S + k - 1)
        return F.conv1d(padded, weight, bias, groups=weight.shape[0]).transpose(1, 2)
    return _CausalDepthwiseConv.apply(x, weight, bias)


class _CausalDepthwiseConv(torch.autograd.Function):
    """Causal depthwise convolution over the sequence in the (B, S, C) layout, with a hand-written backward.

    On CPU (with oneDNN) the forward and the input gradient are channels-last conv2d calls on the rows
    (`_depthwise_conv_rows`; the input gradient is the anti-causal conv with the flipped kernel); elsewhere they are
    k shifted multiply-adds. The weight gradient is k shifted multiply-reductions everywhere (oneDNN's depthwise
    weight gradient was 3-4.5x slower). Measured (batch 8, 256 tokens, 2 threads, ms; docs/performance.md):
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


ALL_MIXER_IMPLEMENTATIONS.register("plain", MixerImplementation(None, recompute=False))
ALL_MIXER_IMPLEMENTATIONS.register("folded", MixerImplementation(folded_mixer_forward, recompute=True))


__all__ = [
    "ALL_MIXER_IMPLEMENTATIONS",
    "MixerImplementation",
    "MixerImplementations",
    "MixerSpec",
    "block_tiles",
    "causal_depthwise_conv",
    "derived_weights",
    "folded_mixer_forward",
    "records_grad",
    "resolve_mixer_spec",
]

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""mLSTM cell kernels for AxLSTM.

Every kernel computes the same function, the stabilised mLSTM of Beck et al. (2024) as the AxLSTM authors use it,
for queries, keys and values of shape (batch, heads, seq, head_dim) and gate pre-activations of shape
(batch, heads, seq):

    log D[i, j] = sum_{t=j+1..i} logsigmoid(f_t) + i_j          (j <= i, else -inf)
    m_i         = max_j log D[i, j]                               (the stabiliser)
    C[i, j]     = (q_i . k_j / sqrt(head_dim)) * exp(log D[i, j] - m_i)
    n_i         = max(|sum_j C[i, j]|, exp(-m_i))                 (the normaliser)
    h_i         = sum_j C[i, j] v_j / (n_i + eps)

Kernels:
- `mlstm_parallel`: the quadratic form (S x S matrices), fastest for short sequences.
- `mlstm_chunkwise`: linear in the sequence length. Inside a chunk it is the parallel form; across chunks it carries
  the matrix state C, the normaliser state n and the stabiliser m (in log space), so the result is the same function,
  stabiliser and `max(|n|, exp(-m))` normaliser included.
- `mlstm_triton` (optional): NX-AI's `mlstm_kernels` chunkwise Triton kernel on CUDA. Its stabiliser is clamped
  (see the note above `mlstm_triton`), so it is not exactly this function and is only used when asked for by name.

Both torch kernels rest on one identity: with cum_i = sum_{t<=i} logsigmoid(f_t) and b_j = i_j - cum_j,
log D[i, j] = cum_i + b_j, so the stabiliser is m_i = cum_i + cummax_{j<=i} b_j (one O(S) scan instead of a max over
an S x S matrix) and exp(log D[i, j] - m_i) = exp(b_j - cummax_i b), whose exponent is <= 0 on and below the diagonal.

The sequence is causal: position i only sees positions j <= i. Padding placed *after* the real positions of a
sequence can therefore never change a real position's output, which is how the model keeps padded batches exact.

Precision: whatever the input dtype (e.g. bfloat16 under autocast), the gate sums, the stabiliser, the decay
matrix, the normaliser and the chunk states' scale factors are computed in float32; only the matrix products run in
the input dtype.

This module imports only torch (plus, optionally, `mlstm_kernels`) so that it travels with the modeling file as Hub
remote code.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

try:  # optional GPU kernels (NX-AI, https://github.com/NX-AI/mlstm_kernels); never required
    from mlstm_kernels.torch.chunkwise import mlstm_chunkwise__xl_chunk as _triton_chunkwise
except Exception:  # noqa: BLE001 - any import problem (no package, no triton, no CUDA build) means "not available"
    _triton_chunkwise = None

# Decay exponents (log D - m <= 0) are clamped at this value before exp: torch's CPU exp is 10-30x slower below
# about -87.3, and exp(-87) = 1.6e-38 is invisible next to a stabilised weight of 1 (docs/performance.md, "The
# kernel constants").
_DECAY_LOG_FLOOR = -87.0

# A finite "minus infinity" for the stabiliser of an empty state: exp(_NEG - x) is exactly 0 for any real x and,
# unlike -inf, it never produces inf - inf = nan in the forward or the backward pass.
_NEG = -1e30

# `auto` picks the chunkwise form when seq_len > factor * (head_dim + chunk_size); each value below is where the two
# forms' measured times cross. The measurements: docs/performance.md, "The kernel constants".
AUTO_CHUNKWISE_FACTOR = 1.15  # inference (2-core AMD EPYC, AVX2, fp32, benchmarks/encoder.py)
AUTO_CHUNKWISE_FACTOR_GRAD = 1.15  # training, eager kernels (same CPU, benchmarks/cell_training.py --kernels)
AUTO_CHUNKWISE_FACTOR_FUSED = 0.72  # float32 CPU training with the fused C++ cell (same CPU and benchmark)
# `select_chunk_size`: the longest chunk with 3 x chunk <= 2 x head_dim unless it pads the sequence by more than this
# share (same CPU, benchmarks/cell_training.py --kernels --chunk_sizes 64 128 256).
AUTO_CHUNK_MAX_PADDING = 0.15
# On CUDA `auto` keeps the parallel form until one S x S float32 buffer would exceed this (an H100, torch 2.11).
AUTO_CUDA_MAX_PARALLEL_BYTES = 2 * 1024**3


def _cumsum(x: torch.Tensor) -> torch.Tensor:
    """Cumulative sum over the last axis (float32). Under torch.compile as a product with a triangular matrix: the
    inductor of torch 2.11 failed to generate the CUDA code of the fused scan (measured on an H100). Under export
    the plain scan (ONNX has CumSum)."""
    if torch.compiler.is_compiling() and not torch.compiler.is_exporting():
        size = x.shape[-1]
        upper = torch.ones(size, size, dtype=x.dtype, device=x.device).triu()  # upper[j, i] = 1 for j <= i
        with torch.autocast(device_type=x.device.type, enabled=False):
            return x @ upper
    return torch.cumsum(x, dim=-1)


def _cummax(x: torch.Tensor) -> torch.Tensor:
    """Cumulative max over the last axis; under torch.compile as a masked row max (see `_cumsum`). Under export, for
    a static length, log2(length) steps of max with the sequence shifted by 1, 2, 4, ... (ONNX has no cummax, and
    the (L x L) masked max was the largest elementwise cost of the exported chunkwise form)."""
    size = x.shape[-1]
    if torch.compiler.is_exporting() and isinstance(size, int):
        shift = 1
        while shift < size:
            x = torch.maximum(x, F.pad(x[..., :-shift], (shift, 0), value=float("-inf")))
            shift *= 2
        return x
    if torch.compiler.is_compiling():
        future = _causal_mask(x.shape[-1], x.device)
        return x.unsqueeze(-2).masked_fill(future, float("-inf")).amax(dim=-1)
    return torch.cummax(x, dim=-1).values


# Under export the normaliser's floor exp(-m) takes its exponent clamped at this value: exp(-m) overflows float32
# above 88.7 (m below -88.7: every input gate of the visible past that negative), and the exported graph keeps every
# intermediate finite (see `_log_sigmoid`). Eagerly the floor is inf there and h = numerator / inf = 0; the clamped
# floor, e^80 = 5.5e34, gives h = numerator / 5.5e34: 0 to float32 precision next to any output of a finite model.
_EXPORT_FLOOR_LOG_CEIL = 80.0


def _log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """logsigmoid(x), finite for every finite x. Eagerly torch's `F.logsigmoid`. Under export written out as
    min(x, 0) - log(1 + exp(-|x|)), the form torch's own kernel computes: the ONNX exporter translates
    `F.logsigmoid` as Log(Sigmoid(x)), and ONNX Runtime's Sigmoid returns exactly 0 for x <= -16.6, so the graph took
    log(0) = -inf and its outputs were NaN for forget gates that negative. Here exp(-|x|) is in (0, 1], the Log's
    argument in [1, 2]: nothing overflows, nothing reaches log(0)."""
    if not torch.compiler.is_exporting():
        return F.logsigmoid(x)
    return torch.clamp_max(x, 0.0) - torch.log1p(torch.exp(-torch.abs(x)))


def _floor(m: torch.Tensor) -> torch.Tensor:
    """The normaliser's floor exp(-m) (its exponent clamped at _EXPORT_FLOOR_LOG_CEIL under export)."""
    if torch.compiler.is_exporting():
        return torch.exp(torch.clamp_max(-m, _EXPORT_FLOOR_LOG_CEIL))
    return torch.exp(-m)


def _causal_mask(size: int, device: torch.device) -> torch.Tensor:
    """(size, size) bool, True strictly above the diagonal (the positions a query must not see)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).triu(1)


def _stabilised_decay(b: torch.Tensor, row_max: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """scale * exp(b_j - row_max_i) for j <= i, 0 above the diagonal. b, row_max: (..., L) float32 -> (..., L, L).
    (`scale` rides on the final mask multiply.) The exponent is clamped at _DECAY_LOG_FLOOR: see there."""
    log_d = b.unsqueeze(-2) - row_max.unsqueeze(-1)  # (..., L, L), <= 0 on and below the diagonal
    size = b.shape[-1]
    lower = torch.ones(size, size, dtype=log_d.dtype, device=log_d.device).tril()  # 1 on and below the diagonal
    # The future is zeroed by multiplying with the 0/1 mask before exp (exp(0) = 1) and after it, instead of
    # masked_fill(-inf) + exp: exp of -inf takes a slow path on CPU and masked_fill is slower than a broadcast multiply
    # (measured 2-2.8x faster for (8, 4, 251, 251) and (8, 4, 4, 64, 64), bit-identical results; b and row_max are
    # finite). In place on fresh tensors: mul's backward needs only the mask, exp's backward only exp's output.
    log_d = log_d.mul_(lower)
    mask = lower * scale if scale != 1.0 else lower
    if torch.is_grad_enabled() and log_d.requires_grad:
        return log_d.clamp_min(_DECAY_LOG_FLOOR).exp_() * mask  # exp's output must stay intact for its backward
    return log_d.clamp_min_(_DECAY_LOG_FLOOR).exp_().mul_(mask)


def _weighted(scores: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """scores * decay in float32; in place when no gradient is recorded (saves one S x S buffer and a pass)."""
    if scores.dtype == torch.float32 and not (
        torch.is_grad_enabled() and (scores.requires_grad or decay.requires_grad)
    ):
        return scores.mul_(decay)
    return scores.float() * decay


def _float32_recompute(recompute: bool, device_type: str, *dtypes: torch.dtype) -> bool:
    """The hand-written backward asked for (`recompute`), every input float32, no autocast (whose 16-bit products take
    the autograd paths)."""
    return recompute and all(dtype == torch.float32 for dtype in dtypes) and not torch.is_autocast_enabled(device_type)


def _hand_written(recompute: bool, device_type: str, *dtypes: torch.dtype) -> bool:
    """Whether chunkwise training of inputs of these dtypes runs `_ChunkwiseMLSTM`: `_float32_recompute`, eager (a
    compiled step traces its loop over the chunks)."""
    return _float32_recompute(recompute, device_type, *dtypes) and not torch.compiler.is_compiling()


def fused_cpu_training(recompute: bool, device_type: str, *dtypes: torch.dtype) -> bool:
    """Whether training of inputs of these dtypes on this device may run the fused CPU kernels: a CPU and
    `_float32_recompute`. Eager or compiled: each fused step is one custom op, which torch.compile keeps."""
    return device_type == "cpu" and _float32_recompute(recompute, device_type, *dtypes)


class _ParallelMLSTM(torch.autograd.Function):
    """The parallel form with a hand-written backward that keeps only O(S) tensors between the passes and recomputes
    the S x S matrices (decay, scores, C) in the backward pass: autograd would keep three of them per layer.

    q, k, v come in float32, or in the 16-bit dtype of an autocast region: the matrix products run in their dtype;
    the gates, the decay matrix, C, its row sums, the normaliser and their gradients are float32 (as in the autograd
    path). Autocast is off inside: every cast is explicit."""

    @staticmethod
    def forward(ctx, q, k, v, igate, fgate, eps):
        dtype, scale = v.dtype, q.shape[-1] ** -0.5
        with torch.autocast(device_type=q.device.type, enabled=False):
            log_f_cum = torch.cumsum(F.logsigmoid(fgate), dim=-1)  # (B, NH, S)
            b = igate - log_f_cum
            b_max, argmax = torch.cummax(b, dim=-1)
            c = (q @ k.transpose(-2, -1)).float().mul_(scale).mul_(_stabilised_decay(b, b_max))  # (B, NH, S, S)
            row_sum = c.sum(dim=-1)  # (B, NH, S)
            floor = torch.exp(-(log_f_cum + b_max))  # exp(-m)
            normaliser = torch.maximum(row_sum.abs(), floor)
            h = ((c.to(dtype) @ v).float() / (normaliser + eps).unsqueeze(-1)).to(dtype)
        ctx.save_for_backward(q, k, v, fgate, b, b_max, argmax, row_sum, floor, normaliser, h)
        ctx.eps = eps
        return h

    @staticmethod
    def backward(ctx, grad_h):
        q, k, v, fgate, b, b_max, argmax, row_sum, floor, normaliser, h = ctx.saved_tensors
        dtype, scale = v.dtype, q.shape[-1] ** -0.5
        with torch.autocast(device_type=q.device.type, enabled=False):
            grad_h = grad_h.float()
            denom = (normaliser + ctx.eps).unsqueeze(-1)  # (B, NH, S, 1)
            grad_num = (grad_h / denom).to(dtype)  # d/d(C v)
            grad_n = -(grad_h * h.float()).sum(dim=-1) / denom.squeeze(-1)  # (B, NH, S)
            use_sum = row_sum.abs() > floor  # torch.maximum: the larger argument gets the gradient
            grad_row_sum = torch.where(use_sum, grad_n * torch.sign(row_sum), 0.0)
            grad_m = torch.where(use_sum, 0.0, -grad_n * floor)  # d exp(-m) / dm = -exp(-m)

            decay = _stabilised_decay(b, b_max)  # recomputed (B, NH, S, S)
            c = (q @ k.transpose(-2, -1)).float().mul_(scale).mul_(decay)  # the scores are not needed again
            grad_v = c.to(dtype).transpose(-2, -1) @ grad_num
            grad_c = (grad_num @ v.transpose(-2, -1)).float().add_(grad_row_sum.unsqueeze(-1))  # (B, NH, S, S)
            # d log D entries: grad_c * C (zero above the diagonal, where C is 0).
            grad_log_d = c.mul_(grad_c)
            grad_scores = grad_c.mul_(decay).to(dtype)
            grad_q = (grad_scores @ k).mul_(scale)
            grad_k = (grad_scores.transpose(-2, -1) @ q).mul_(scale)
            # log D[i, j] - m_i = b_j - b_max_i: columns feed b, rows feed b_max (with a minus sign).
            grad_b = grad_log_d.sum(dim=-2)  # (B, NH, S)
            grad_b_max = grad_m - grad_log_d.sum(dim=-1)
            grad_b = grad_b.scatter_add(-1, argmax, grad_b_max)  # the cumulative max routes to its argmax
            # m = cum + b_max, b = igate - cum, cum = cumsum(logsigmoid(f)).
            grad_cum = grad_m - grad_b
            grad_log_f = grad_cum.flip(-1).cumsum(-1).flip(-1)  # reverse cumulative sum
            grad_f = grad_log_f * torch.sigmoid(-fgate)
        return grad_q, grad_k, grad_v, grad_b, grad_f, None


def mlstm_parallel(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    eps: float = 1e-6,
    recompute: bool = True,
) -> torch.Tensor:
    """Stabilised parallel (quadratic) mLSTM.

    Args:
        q, k, v: (batch, heads, seq, head_dim).
        igate, fgate: input / forget gate pre-activations, (batch, heads, seq).
        eps: added to the normaliser.
        recompute: train through `_ParallelMLSTM`, whose backward recomputes the S x S matrices (float32 / 16-bit,
            eager); False: autograd through the plain ops (keeps three S x S matrices per call).

    Returns:
        h: (batch, heads, seq, head_dim), in the dtype of `v`.
    """
    out_dtype = v.dtype
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, igate, fgate))
    if grad and recompute and not torch.compiler.is_compiling():
        device = q.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else v.dtype
        if dtype in (torch.float32, torch.bfloat16, torch.float16):  # float64 (gradcheck) keeps the autograd path
            q, k, v = (t.to(dtype) for t in (q, k, v))
            return _ParallelMLSTM.apply(q, k, v, igate.float(), fgate.float(), eps).to(out_dtype)
    scale = q.shape[-1] ** -0.5
    # Gates in float32: cum_i = sum_{t<=i} logsigmoid(f_t); log D[i, j] = cum_i + b_j with b_j = i_j - cum_j.
    log_f_cum = _cumsum(_log_sigmoid(fgate.float()))  # (B, NH, S)
    b = igate.float() - log_f_cum  # (B, NH, S)
    b_max = _cummax(b)  # (B, NH, S): the stabiliser is m_i = cum_i + b_max_i
    decay = _stabilised_decay(b, b_max)  # (B, NH, S, S) = exp(log D - m), float32
    scores = q @ (k * scale).transpose(-2, -1)  # (B, NH, S, S) in the input dtype
    c = _weighted(scores, decay)  # (B, NH, S, S) float32
    # The normaliser n_i = max(|sum_j C_ij|, exp(-m_i)), in float32.
    normaliser = torch.maximum(c.sum(dim=-1).abs(), _floor(log_f_cum + b_max))  # (B, NH, S)
    # Normalise the (S, head_dim) output instead of the (S, S) matrix: same numbers, less work.
    h = (c.to(v.dtype) @ v).float() / (normaliser + eps).unsqueeze(-1)
    return h.to(out_dtype)


class _ChunkGates(NamedTuple):
    g: torch.Tensor  # (B, NH, NC, L): log forget gates cumulated within each chunk
    b: torch.Tensor  # (B, NH, NC, L): i - g
    b_max: torch.Tensor  # (B, NH, NC, L): cumulative max of b within each chunk
    e: torch.Tensor  # (B, NH, NC): m_out - G, a cumulative max (non-decreasing)
    m_out: torch.Tensor  # (B, NH, NC): the stabiliser after each chunk
    m_in: torch.Tensor  # (B, NH, NC): the stabiliser entering each chunk (_NEG for the first)
    key_weight: torch.Tensor  # (B, NH, NC, L): each key's weight as it enters the next state, <= 1
    row_max: torch.Tensor  # (B, NH, NC, L): max(m_in, b_max); the stabiliser at position s is g_s + row_max_s
    state_weight: torch.Tensor  # (B, NH, NC, L): exp(m_in - row_max), the entering state's weight, <= 1


def _chunk_gates(igate: torch.Tensor, fgate: torch.Tensor) -> _ChunkGates:
    """The gate sums and stabilisers of the chunkwise forms, from float32 gates cut into chunks (B, NH, NC, L)."""
    # g_s = sum_{t<=s} logsigmoid(f_t) (t, s in the chunk).
    g = _cumsum(_log_sigmoid(fgate))
    b = igate - g
    b_max = _cummax(b)
    g_last = g[..., -1]  # (B, NH, NC): log decay across a whole chunk
    # Largest log weight chunk c gives one of its own keys, seen from its last position: a_c = g_last_c + max_u b_u.
    # The stabiliser after chunk c, m_out_c = max(g_last_c + m_out_{c-1}, a_c), is again a cumulative max:
    # with G_c = sum_{c'<=c} g_last_c', m_out_c = G_c + e_c, e_c = max_{c'<=c} (a_c' - G_c'). It is exactly the
    # stabiliser m of the chunk's last position, so the per-position stabilisers are the exact global max of log D.
    g_total = _cumsum(g_last)
    e = _cummax(g_last + b_max[..., -1] - g_total)
    m_out = g_total + e
    m_in = torch.cat([torch.full_like(m_out[..., :1], _NEG), m_out[..., :-1]], dim=-1)
    # Chunk c's keys as they enter the next state, already divided by exp(m_out_c).
    key_weight = torch.exp(b + (g_last - m_out).unsqueeze(-1))
    row_max = torch.maximum(m_in.unsqueeze(-1), b_max)
    state_weight = torch.exp(m_in.unsqueeze(-1) - row_max)
    return _ChunkGates(g, b, b_max, e, m_out, m_in, key_weight, row_max, state_weight)


def _carry_states(k_weighted: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The states entering each chunk, (C_in (B, NH, NC, D, DV), n_in (B, NH, NC, D)), chunk 0's empty:
    C_in[c] = keep[c-1] C_in[c-1] + K_w[c-1]^T V[c-1], n_in[c] = keep[c-1] n_in[c-1] + sum_u K_w[c-1, u]. Each
    chunk's K^T V is accumulated into its state in place (no all-chunk K^T V tensor: for wide heads that is as large
    as the states themselves), and the last chunk's, which feeds no state, is never formed. The carry runs on one
    contiguous (B * NH, D, DV) state, copied into C_in after each chunk: `baddbmm_` straight into the strided C_in
    slice ran as one `addmm_` per (batch, head) on CPU (measured, 2 threads: 0.54x the time for tiny's cell at batch
    32, 0.75-0.89x for head dims 192 / 384; bit-identical states)."""
    batch, heads, num_chunks, _, head_dim = k_weighted.shape
    flat, value_dim = batch * heads, v.shape[-1]
    n_add = k_weighted.sum(dim=-2)  # (B, NH, NC, D)
    c_in = k_weighted.new_empty(batch, heads, num_chunks, head_dim, value_dim)  # every chunk is written below
    n_in = n_add.new_empty(batch, heads, num_chunks, head_dim)
    c_in[:, :, 0].zero_()
    n_in[:, :, 0].zero_()
    state = None
    for c in range(1, num_chunks):
        keys = k_weighted[:, :, c - 1].reshape(flat, -1, head_dim).transpose(1, 2)  # (B*NH, D, L)
        values = v[:, :, c - 1].reshape(flat, -1, value_dim)  # (B*NH, L, DV)
        if state is None:
            state = torch.bmm(keys, values)
        else:
            state.mul_(keep[:, :, c - 1].reshape(flat, 1, 1)).baddbmm_(keys, values)
        c_in[:, :, c].copy_(state.view(batch, heads, head_dim, value_dim))
        torch.addcmul(n_add[:, :, c - 1], n_in[:, :, c - 1], keep[:, :, c - 1, None], out=n_in[:, :, c])
    return c_in, n_in


class _ChunkwiseMLSTM(torch.autograd.Function):
    """The chunkwise form's matrix part (states, intra-chunk products, normaliser) with a hand-written backward, for
    float32 training. The gate-derived terms (b and the row max the decay is formed from, state and key weights, keep
    factors, the exp(-m) floor) come in as inputs, computed by autograd outside, so this backward only returns their
    gradients and autograd carries them to the gates. The decay matrix is formed inside, and its gradient goes straight
    to b and the row max (d decay = decay * d(b_j - row_max_i)), so autograd keeps no copy of it for an exp backward;
    q comes in unscaled, the 1 / sqrt(D) riding on the decay and the state weights, so no scaled copy of q is kept.
    Against autograd through the chunk loop it saves the per-chunk stack / unbind copies: the intra-chunk products
    and everything that reads C_in run over all chunks as batched matmuls; only the states' carry (forward) and the
    state products of its gradient (backward) run chunk by chunk.

    Between the passes it keeps q, k, v, the decay, the raw scores, the gate weights and O(S) normaliser terms; the
    weighted keys and q C_in are recomputed or never needed (q C_in enters the backward only through
    grad_num C_in^T, which the q gradient needs anyway). The states C_in (D x DV per head and chunk) are kept when
    `keep_states`, else recomputed in the backward from k, v and the keep factors (one K^T V per chunk and the carry):
    for wide heads they are the largest tensors of the form (384 x 384 per head and chunk of 64 positions against
    64 x 384 for q), so recomputing them is what keeps long-sequence training of small and base in memory.

    Shapes (B, NH batch and heads, NC chunks of L positions, D = head_dim, DV = value dim): q (unscaled), k (B, NH,
    NC, L, D); v (B, NH, NC, L, DV); b, row_max, state_weight, floor, key_weight (B, NH, NC, L); keep (B, NH, NC).
    Returns h (B, NH, NC, L, DV)."""

    @staticmethod
    def forward(ctx, q, k, v, b, row_max, state_weight, floor, keep, key_weight, eps, scale, keep_states):
        decay = _stabilised_decay(b, row_max, scale)  # (B, NH, NC, L, L), scaled by 1 / sqrt(D)
        weight = state_weight * scale  # (B, NH, NC, L): the entering state's weight, scaled
        c_in, n_in = _carry_states(k * key_weight.unsqueeze(-1), v, keep)
        qn = (q @ n_in.unsqueeze(-1)).squeeze(-1)  # (B, NH, NC, L)
        scores = q @ k.transpose(-2, -1)  # (B, NH, NC, L, L), unscaled
        c_intra = scores * decay
        numerator = (c_intra @ v).addcmul_(q @ c_in, weight.unsqueeze(-1))  # (B, NH, NC, L, DV)
        n_raw = c_intra.sum(dim=-1).addcmul_(qn, weight)
        normaliser = torch.maximum(n_raw.abs(), floor)
        h = numerator.div_((normaliser + eps).unsqueeze(-1))
        states = (c_in, n_in) if keep_states else ()
        ctx.save_for_backward(q, k, v, decay, weight, floor, keep, key_weight, qn, scores, n_raw, normaliser, h,
                              *states)  # fmt: skip
        ctx.eps, ctx.scale = eps, scale
        return h

    @staticmethod
    def backward(ctx, grad_h):
        (q, k, v, decay, weight, floor, keep, key_weight, qn, scores, n_raw, normaliser, h,
         *states) = ctx.saved_tensors  # fmt: skip
        num_chunks = q.shape[2]
        k_weighted = k * key_weight.unsqueeze(-1)  # recomputed: keys as they enter the next state
        c_in, n_in = states if states else _carry_states(k_weighted, v, keep)
        denom = (normaliser + ctx.eps).unsqueeze(-1)
        grad_num = grad_h / denom  # d/d numerator
        grad_n = -(grad_h * h).sum(dim=-1) / denom.squeeze(-1)  # d/d normaliser
        use_raw = n_raw.abs() > floor  # torch.maximum: the larger argument gets the gradient
        grad_raw = torch.where(use_raw, grad_n * torch.sign(n_raw), 0.0)
        grad_floor = torch.where(use_raw, 0.0, grad_n)
        # numerator = C_intra v + w * (q C_in), n_raw = rowsum(C_intra) + w * (q . n_in), C_intra = scores * decay,
        # decay = scale * exp(b_j - row_max_i) (masked), w = scale * state_weight
        c_intra = scores * decay
        grad_v = c_intra.transpose(-2, -1) @ grad_num
        grad_c = (grad_num @ v.transpose(-2, -1)).add_(grad_raw.unsqueeze(-1))  # (B, NH, NC, L, L)
        grad_log = c_intra.mul_(grad_c)  # d/d (b_j - row_max_i); zero above the diagonal, where C_intra is
        grad_b = grad_log.sum(dim=-2)
        grad_row_max = grad_log.sum(dim=-1).neg_()
        grad_scores = grad_c.mul_(decay)
        grad_qc = grad_num @ c_in.transpose(-2, -1)  # (B, NH, NC, L, D): d/dq of grad_num . (q C_in), per row
        grad_weight = (grad_qc * q).sum(dim=-1).addcmul_(grad_raw, qn)
        grad_qn = grad_raw * weight  # d/d (q . n_in)
        grad_q = (grad_scores @ k).addcmul_(grad_qc, weight.unsqueeze(-1))
        grad_q = grad_q.addcmul_(grad_qn.unsqueeze(-1), n_in.unsqueeze(-2))
        grad_k = grad_scores.transpose(-2, -1) @ q
        grad_n_in = (q.transpose(-2, -1) @ grad_qn.unsqueeze(-1)).squeeze(-1)  # (B, NH, NC, D), no L x D temporary
        # The carry, backwards. C_in[c] = keep[c-1] C_in[c-1] + kv[c-1] (the same for n), so with T[c] the whole
        # gradient of C_in[c], T[c] = grad_c_in[c] + keep[c] T[c+1], kv[c-1] receives T[c] and keep[c-1] receives
        # <T[c], C_in[c-1]>; the last chunk's K^T V feeds no state. The state products run chunk by chunk, so beside
        # C_in no (D x DV) tensor spans all chunks: batched over the chunks, four such tensors made base's 10 s batch 8
        # backward memory-bound (1.26-1.29x the loop's cell time, now 1.09-1.13x); for tiny both orders measured the
        # same (0.90x / 0.89x vs 0.91x / 0.86x of the loop at batch 32, S=256 / batch 8, S=1280).
        source = grad_num * weight.unsqueeze(-1)  # d/d (q C_in), (B, NH, NC, L, DV)
        grad_keep = torch.zeros_like(keep)
        grad_kw = torch.empty_like(k)  # chunks 0..NC-2 are written in the loop below
        grad_kw[:, :, -1].zero_()  # the last chunk's keys feed no state
        carry = carry_n = None
        for j in range(num_chunks - 1, 0, -1):
            direct = q[:, :, j].transpose(-2, -1) @ source[:, :, j]  # (B, NH, D, DV)
            carry = direct if carry is None else direct.addcmul_(carry, keep[:, :, j, None, None])
            carry_n = (
                grad_n_in[:, :, j]
                if carry_n is None
                else torch.addcmul(grad_n_in[:, :, j], carry_n, keep[:, :, j, None])
            )
            dot = carry.flatten(-2).unsqueeze(-2) @ c_in[:, :, j - 1].flatten(-2).unsqueeze(-1)  # (B, NH, 1, 1)
            grad_keep[:, :, j - 1] = dot.flatten(-3) + (carry_n * n_in[:, :, j - 1]).sum(dim=-1)
            grad_v[:, :, j - 1] += k_weighted[:, :, j - 1] @ carry
            grad_kw[:, :, j - 1] = (v[:, :, j - 1] @ carry.transpose(-2, -1)).add_(carry_n.unsqueeze(-2))
        grad_k = grad_k.addcmul_(grad_kw, key_weight.unsqueeze(-1))
        grad_key_weight = (grad_kw * k).sum(dim=-1)
        grad_state_weight = grad_weight.mul_(ctx.scale)
        return (grad_q, grad_k, grad_v, grad_b, grad_row_max, grad_state_weight, grad_floor, grad_keep,
                grad_key_weight, None, None, None)  # fmt: skip


def mlstm_chunkwise(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    eps: float = 1e-6,
    chunk_size: int = 64,
    recompute: bool = True,
    fused=None,
) -> torch.Tensor:
    """Chunkwise-parallel mLSTM: the same function as `mlstm_parallel` in O(S (chunk + head_dim)) time per head.

    The sequence is cut into chunks of `chunk_size` (the last one zero-padded at the end, which the causal form
    ignores). Within a chunk the output is the parallel form over the chunk plus the contribution of the state
    entering the chunk: C (head_dim x head_dim), n (head_dim) and the stabiliser m, all stored divided by exp(m) so
    nothing overflows. The states are carried across chunks by one short loop over the chunks.

    Shapes as `mlstm_parallel`. `recompute`: float32 training runs the matrix part through `_ChunkwiseMLSTM`
    (hand-written backward) instead of autograd through the loop; `fused`: the fused CPU kernels
    (`hf_axlstm.cpu_kernels`), whose `cell` then runs that part on CPU tensors.
    """
    batch, heads, seq, head_dim = q.shape
    if seq <= chunk_size:
        return mlstm_parallel(q, k, v, igate, fgate, eps=eps, recompute=recompute)
    out_dtype = v.dtype
    scale = head_dim**-0.5
    num_chunks = -(-seq // chunk_size)
    pad = num_chunks * chunk_size - seq
    # Without autograd the float32 steps below run in place on fresh tensors (fewer buffers and passes); eager only.
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, igate, fgate))
    in_place = not grad and not torch.compiler.is_compiling()
    if pad:
        # Padding after the real positions: causal, so it cannot reach them; zeros keep it finite. (The model pads
        # its narrow input to whole chunks instead, so inside AxLSTM this never runs.)
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        igate, fgate = (F.pad(t, (0, pad)) for t in (igate, fgate))
    fused_cell = grad and fused is not None and fused_cpu_training(recompute, q.device.type, q.dtype, k.dtype, v.dtype)
    hand_written = fused_cell or (grad and _hand_written(recompute, q.device.type, q.dtype, k.dtype, v.dtype))
    # Without autograd and in the hand-written backward q is not scaled (a full pass, and a copy kept for the
    # backward): the scale rides on the decay mask and the state weights.
    q_scaled = q if in_place or hand_written else q * scale

    def chunks(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, heads, num_chunks, chunk_size, *t.shape[3:])

    q, k, v = chunks(q_scaled), chunks(k), chunks(v)  # (B, NH, NC, L, DH)
    gates = _chunk_gates(chunks(igate.float()), chunks(fgate.float()))
    g, b, m_in = gates.g, gates.b, gates.m_in
    # How much of the state entering chunk c survives it (<= 1).
    keep = torch.exp(g[..., -1] + m_in - gates.m_out)  # (B, NH, NC)
    if hand_written:
        # float32 training: the matrix part through `_ChunkwiseMLSTM` (hand-written backward) or the fused cell, the
        # gate weights through autograd. Narrow heads (up to 1.5 chunks) keep their states between the passes, wider
        # ones recompute them (measured against autograd through the loop: docs/performance.md, "The kernel
        # constants").
        keep_states = 2 * head_dim <= 3 * chunk_size
        floor = torch.exp(-(g + gates.row_max))
        terms = (q, k, v, b, gates.row_max, gates.state_weight, floor, keep, gates.key_weight, eps, scale, keep_states)
        h = fused.cell(*terms) if fused_cell else _ChunkwiseMLSTM.apply(*terms)
        return h.reshape(batch, heads, num_chunks * chunk_size, -1)[:, :, :seq].to(out_dtype)
    k_weighted = k.float() * gates.key_weight.unsqueeze(-1)  # (B, NH, NC, L, DH) float32
    n_add = k_weighted.sum(dim=-2)  # (B, NH, NC, DH)
    k_weighted = k_weighted.to(v.dtype)

    # Carry the states across chunks (state c enters chunk c; state 0 is empty):
    # C_{c+1} = keep_c C_c + K_c^T V_c and n_{c+1} = keep_c n_c + sum_u k_u (keys weighted as above). Each state is
    # used as soon as it exists, q_c C_c, so the (DH x DH) states are never stacked.
    flat = batch * heads
    value_dim = v.shape[-1]  # may differ from head_dim
    # unbind (not indexing in the loop): its backward is one stack, where each index's backward is a zero-filled copy.
    q_chunks = q.reshape(flat, num_chunks, chunk_size, head_dim).unbind(1)  # NC x (B*NH, L, DH)
    k_chunks = k_weighted.reshape(flat, num_chunks, chunk_size, head_dim).unbind(1)
    v_chunks = v.reshape(flat, num_chunks, chunk_size, value_dim).unbind(1)
    keep_chunks = keep.reshape(flat, num_chunks, 1, 1).unbind(1)  # NC x (B*NH, 1, 1)
    n_add_chunks = n_add.unbind(2)  # NC x (B, NH, DH)
    keep_n = keep.unsqueeze(-1).unbind(2)  # NC x (B, NH, 1)
    n_state = [n_add.new_zeros(batch, heads, head_dim)]
    c_state = None
    if in_place and q.dtype == v.dtype == torch.float32:
        # Without autograd: the state is updated in place and each q_c C_c is written straight into one buffer
        # (chunk-major, so each chunk's slice is contiguous), which saves the stack copy and a state buffer per chunk.
        inter_buf = q.new_empty(num_chunks, flat, chunk_size, value_dim)
        inter_buf[0].zero_()  # chunk 0 has no state
        for c in range(1, num_chunks):
            k_t, v_c = k_chunks[c - 1].transpose(1, 2), v_chunks[c - 1]  # (B*NH, DH, L), (B*NH, L, DH)
            c_state = torch.bmm(k_t, v_c) if c_state is None else c_state.mul_(keep_chunks[c - 1]).baddbmm_(k_t, v_c)
            torch.bmm(q_chunks[c], c_state, out=inter_buf[c])
            n_state.append(n_state[-1] * keep_n[c - 1] + n_add_chunks[c - 1])
        inter = inter_buf.view(num_chunks, batch, heads, chunk_size, value_dim).permute(1, 2, 0, 3, 4)
    else:
        inter = [q_chunks[0].new_zeros(flat, chunk_size, value_dim)]  # chunk 0 has no state
        for c in range(1, num_chunks):
            contribution = (k_chunks[c - 1].transpose(1, 2), v_chunks[c - 1])  # (B*NH, DH, L), (B*NH, L, DH)
            if c_state is None:
                c_state = torch.bmm(*contribution).float()  # (B*NH, DH, DH)
            else:
                # In place on the fresh product: autograd needs neither the product nor the old state here.
                c_state = (c_state * keep_chunks[c - 1]).baddbmm_(*(t.float() for t in contribution))
            inter.append(q_chunks[c] @ c_state.to(q.dtype))  # (B*NH, L, DH)
            n_state.append(n_state[-1] * keep_n[c - 1] + n_add_chunks[c - 1])
        inter = torch.stack(inter, dim=1).view(batch, heads, num_chunks, chunk_size, value_dim)
    n_in = torch.stack(n_state, dim=2)  # (B, NH, NC, DH)

    # Per position s of chunk c: m = g_s + row_max_s with row_max_s = max(m_in_c, b_max_s).
    row_max, state_weight = gates.row_max, gates.state_weight
    if in_place:
        state_weight = state_weight.mul_(scale)  # q was left unscaled
    decay = _stabilised_decay(b, row_max, scale if in_place else 1.0)  # (B, NH, NC, L, L)
    c_intra = _weighted(q @ k.transpose(-2, -1), decay)  # (B, NH, NC, L, L) float32
    numerator = (c_intra.to(v.dtype) @ v).float()  # (B, NH, NC, L, DH)
    if in_place and numerator.dtype == inter.dtype == torch.float32:
        numerator.addcmul_(state_weight.unsqueeze(-1), inter)
    else:
        numerator = numerator + state_weight.unsqueeze(-1) * inter.float()
    n_raw = c_intra.sum(dim=-1) + state_weight * (q.float() @ n_in.unsqueeze(-1)).squeeze(-1)  # (B, NH, NC, L)
    normaliser = torch.maximum(n_raw.abs(), torch.exp(-(g + row_max)))  # (B, NH, NC, L)
    denominator = (normaliser + eps).unsqueeze(-1)
    h = numerator.div_(denominator) if in_place else numerator / denominator  # (B, NH, NC, L, DH)
    h = h.reshape(batch, heads, num_chunks * chunk_size, value_dim)[:, :, :seq]
    return h.to(out_dtype)


def mlstm_chunkwise_graph(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    eps: float = 1e-6,
    chunk_size: int = 64,
    aligned: bool = False,
) -> torch.Tensor:
    """The chunkwise mLSTM without a Python loop over the chunks: the form `torch.export` / ONNX export records, where
    the number of chunks is symbolic (one graph for any length). Same function and shapes as `mlstm_chunkwise`.

    The states entering each chunk come from one product instead of a loop. With e_c = m_out_c - G_c (the chunk
    stabiliser minus the summed log forget gates up to chunk c, a cumulative max and so non-decreasing), the state
    entering chunk c, divided by exp(m_in_c), is sum_{c' < c} exp(e_c' - e_{c-1}) K_c'^T V_c' (keys weighted as in
    `mlstm_chunkwise`): a lower-triangular (chunks x chunks) matrix of weights <= 1 times the per-chunk K^T V. That
    costs chunks^2 x head_dim^2 per head, under a tenth of the block's other work up to a minute of audio, so the graph
    stays (close to) linear in the length. Every branch below depends only on static sizes.

    `aligned=True` promises that seq is a multiple of `chunk_size` (the exported encoder pads its tokens once, so
    that no block pads q, k, v and the gates again).
    """
    batch, heads, seq, head_dim = q.shape
    value_dim = v.shape[-1]
    out_dtype = v.dtype
    scale = head_dim**-0.5
    q, igate, fgate = q * scale, igate.float(), fgate.float()
    if not aligned:
        pad = -seq % chunk_size  # symbolic under export: F.pad with a zero amount is a no-op
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        igate, fgate = (F.pad(t, (0, pad)) for t in (igate, fgate))

    def chunks(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, heads, -1, chunk_size, *t.shape[3:])

    q, k, v = chunks(q), chunks(k), chunks(v)  # (B, NH, NC, L, DH)
    gates = _chunk_gates(chunks(igate), chunks(fgate))
    g, b, e = gates.g, gates.b, gates.e
    k_weighted = k.float() * gates.key_weight.unsqueeze(-1)  # (B, NH, NC, L, DH)
    kv = (k_weighted.to(v.dtype).transpose(-2, -1) @ v).float()  # (B, NH, NC, DH, DV): each chunk's K^T V
    # carry[c, c'] = exp(e_c' - e_{c-1}) for c' < c, else 0 (row 0: the empty state entering the first chunk).
    # (Slicing off the last chunk's K^T V, which no chunk reads, would save 1 / NC of this work, but the sliced sizes
    # made torch.export assume at least three chunks: the exported graph then failed on short clips.)
    e_before = torch.cat([torch.full_like(e[..., :1], -_NEG), e[..., :-1]], dim=-1)  # (B, NH, NC): e_{c-1}
    num_chunks = kv.shape[2]
    strictly_lower = torch.ones(num_chunks, num_chunks, dtype=e.dtype, device=e.device).tril(-1)
    carry = (e.unsqueeze(-2) - e_before.unsqueeze(-1)).mul(strictly_lower).exp().mul(strictly_lower)  # <= 1
    c_in = (carry @ kv.reshape(batch, heads, num_chunks, head_dim * value_dim)).view_as(kv)  # entering chunk c
    n_in = carry @ k_weighted.sum(dim=-2)  # (B, NH, NC, DH)

    row_max, state_weight = gates.row_max, gates.state_weight
    decay = _stabilised_decay(b, row_max)  # (B, NH, NC, L, L)
    c_intra = (q @ k.transpose(-2, -1)).float() * decay  # (B, NH, NC, L, L)
    numerator = (c_intra.to(v.dtype) @ v).float() + state_weight.unsqueeze(-1) * (q @ c_in.to(q.dtype)).float()
    n_raw = c_intra.sum(dim=-1) + state_weight * (q.float() @ n_in.unsqueeze(-1)).squeeze(-1)  # (B, NH, NC, L)
    normaliser = torch.maximum(n_raw.abs(), _floor(g + row_max))  # (B, NH, NC, L)
    h = numerator / (normaliser + eps).unsqueeze(-1)  # (B, NH, NC, L, DV)
    if aligned:
        return h.reshape(batch, heads, seq, value_dim).to(out_dtype)
    return h.reshape(batch, heads, -1, value_dim)[:, :, :seq].to(out_dtype)


# NX-AI's `mlstm_kernels` chunkwise Triton kernel ("xl_chunk", TFLA) computes the same gated linear attention with the
# same normaliser form, max(|q . n|, exp(-m)) + eps, but not quite the same stabiliser m (from its source, v2.0.6):
# (1) without an initial state its running stabiliser starts at 0 instead of -inf, so m_i >= sum of the log forget
#     gates up to i; we pass an explicit empty state with m = _NEG to remove this difference;
# (2) the within-chunk maximum is clamped from below at MINIMUM_MAX_VAL = -10 (hard-wired in its wrapper), so wherever
#     the exact stabiliser m_i is below -10 (all input gates of the visible past very negative) its exp(-m) floor, and
#     therefore h, differs from the authors' function.
# (3) it tiles the head dimensions in blocks of min(64, next power of 2 >= head_dim) and expects head dims that are a
#     power of 2 or a multiple of 64 (the check is commented out in its source, v2.0.6). Tiny's head dim 96 crashed it
#     with an illegal memory access (H200, one clip). `_pad_head_dims` zero-pads such head dims (exact, see there).
# The functions are therefore not identical, and "triton" is opt-in: `auto` never picks it. Measured on an H100: see
# benchmarks/README.md.
def mlstm_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    eps: float = 1e-6,
    chunk_size: int = 64,
) -> torch.Tensor:
    """NX-AI's chunkwise Triton kernel (CUDA only, `pip install mlstm_kernels`). Shapes as `mlstm_parallel`."""
    if _triton_chunkwise is None:
        raise ValueError(
            "backend='triton' needs the optional package mlstm_kernels (with triton); it is not importable here."
        )
    if not q.is_cuda:
        raise ValueError("backend='triton' runs on CUDA tensors only; use 'parallel', 'chunkwise' or 'auto'.")
    dtype = q.dtype if q.dtype in (torch.float16, torch.bfloat16) else torch.float32
    if torch.is_autocast_enabled("cuda"):
        dtype = torch.get_autocast_dtype("cuda")
    batch, heads, seq, head_dim = q.shape
    value_dim = v.shape[-1]
    pad = -seq % chunk_size  # the kernel needs whole chunks; padding at the end is invisible to a causal kernel
    q, k, v = _pad_head_dims(q, k, v, seq_pad=pad)
    if pad:
        igate, fgate = (F.pad(t, (0, pad)) for t in (igate, fgate))
    with torch.autocast("cuda", enabled=False):
        h = _triton_chunkwise(
            q=q.to(dtype).contiguous(),
            k=k.to(dtype).contiguous(),
            v=v.to(dtype).contiguous(),
            i=igate.float().contiguous(),  # the gates stay in float32
            f=fgate.float().contiguous(),
            c_initial=q.new_zeros(batch, heads, q.shape[-1], v.shape[-1], dtype=torch.float32),
            n_initial=q.new_zeros(batch, heads, q.shape[-1], dtype=torch.float32),
            m_initial=q.new_full((batch, heads, 1), _NEG, dtype=torch.float32),
            eps=eps,
            chunk_size=chunk_size,
            autocast_kernel_dtype=dtype,
        )
    return h[:, :, :seq, :value_dim]


def _tileable(dim: int) -> bool:
    return dim & (dim - 1) == 0 or dim % 64 == 0  # a power of 2, or whole blocks of 64


def _pad_head_dims(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, seq_pad: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-pad head dims the Triton kernel cannot tile (see above) to a multiple of 64, and the sequence by `seq_pad`
    positions at the end, in one pad per tensor. Exact: zero channels add nothing to q . k, k's normaliser state or
    C, and the zero value channels are sliced off h. The kernel scales q . k by 1 / sqrt(padded dim), so q is
    multiplied by sqrt(padded / head_dim) to keep 1 / sqrt(head_dim)."""
    head_dim, value_dim = q.shape[-1], v.shape[-1]
    qk_pad = 0 if _tileable(head_dim) else -head_dim % 64
    v_pad = 0 if _tileable(value_dim) else -value_dim % 64
    if qk_pad:
        q = q * math.sqrt((head_dim + qk_pad) / head_dim)
    if qk_pad or seq_pad:
        q, k = (F.pad(t, (0, qk_pad, 0, seq_pad)) for t in (q, k))
    if v_pad or seq_pad:
        v = F.pad(v, (0, v_pad, 0, seq_pad))
    return q, k, v


BACKENDS = ("auto", "parallel", "chunkwise", "triton")


class CellSpec(NamedTuple):
    """How one mLSTM cell call runs: everything `run_cell` needs, decided by `resolve_cell` (the one place that
    decides it)."""

    form: str  # "parallel", "chunkwise", "chunkwise_graph" (loop-free: export and torch.compile) or "triton"
    chunk_size: int
    recompute: bool = True  # training through the hand-written backward passes (else autograd through the ops)
    fused: object = None  # the fused CPU kernels (`hf_axlstm.cpu_kernels`) for float32 chunkwise CPU training
    aligned: bool = False  # the length is a multiple of chunk_size (the exported model pads once, up front)


def select_backend(
    seq_len: int,
    head_dim: int,
    chunk_size: int,
    training: bool = False,
    cuda: bool = False,
    batch_heads: int = 1,
    fused: bool = False,
) -> str:
    """The kernel `auto` runs. On CPU: the parallel form up to factor x (head_dim + chunk_size) positions, chunkwise
    beyond (factor AUTO_CHUNKWISE_FACTOR, or AUTO_CHUNKWISE_FACTOR_GRAD when gradients are recorded, or
    AUTO_CHUNKWISE_FACTOR_FUSED when that training runs the fused CPU cell). On CUDA: the parallel form while one
    (batch x heads x S x S) float32 buffer fits in AUTO_CUDA_MAX_PARALLEL_BYTES."""
    if cuda:
        return "parallel" if 4 * batch_heads * seq_len**2 <= AUTO_CUDA_MAX_PARALLEL_BYTES else "chunkwise"
    factor = AUTO_CHUNKWISE_FACTOR_GRAD if training else AUTO_CHUNKWISE_FACTOR
    if training and fused:
        factor = AUTO_CHUNKWISE_FACTOR_FUSED
    return "chunkwise" if seq_len > factor * (head_dim + chunk_size) else "parallel"


def select_chunk_size(seq_len: int, head_dim: int, chunk_size: int, hand_written_training: bool = False) -> int:
    """The chunk length `auto` runs the chunkwise form with: `chunk_size`, except where it was measured, training on
    a CPU through the hand-written backward (`hand_written_training`): there the longest chunk_size x 2^j (j >= 0)
    with 3 x chunk <= 2 x head_dim that pads `seq_len` by at most AUTO_CHUNK_MAX_PADDING of it (for head dims of 192
    and 384 such chunks trained 1.06-1.47x faster than 64; docs/performance.md)."""
    if not hand_written_training:
        return chunk_size
    best, chunk = chunk_size, 2 * chunk_size
    while 3 * chunk <= 2 * head_dim:
        if -seq_len % chunk <= AUTO_CHUNK_MAX_PADDING * seq_len:
            best = chunk
        chunk *= 2
    return best


def resolve_cell(
    backend: str,
    chunk_size: int,
    seq_len: int,
    head_dim: int,
    batch_heads: int,
    device_type: str,
    dtype: torch.dtype,
    training: bool,
    recompute: bool = True,
    fused=None,
    aligned: bool = False,
) -> CellSpec:
    """The one decision of how a cell call runs, from the asked `backend` ("auto" or a form of BACKENDS), the
    configured `chunk_size` and what the call is (its sizes, device, dtype, whether gradients are recorded):

    - under `torch.export` the loop-free chunkwise form (one graph for every length; "parallel" stays parallel);
    - "auto": `select_backend`, and for hand-written CPU training the chunk length of `select_chunk_size`;
    - `fused` (the fused CPU kernels) is kept only where they apply: chunkwise float32 training on a CPU through the
      hand-written backward (eager or compiled: the fused cell is one custom op);
    - another chunkwise call under torch.compile: the loop-free form (the loop would pin the number of chunks).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not a known mLSTM backend; expected one of {list(BACKENDS)}.")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size={chunk_size!r} is invalid; expected a positive integer.")
    if torch.compiler.is_exporting():
        form = "parallel" if backend == "parallel" else "chunkwise_graph"
        return CellSpec(form, chunk_size, recompute, None, aligned)
    fused = fused if training and fused_cpu_training(recompute, device_type, dtype) else None
    hand_written = fused is not None or (
        training and device_type == "cpu" and _hand_written(recompute, device_type, dtype)
    )
    form = backend
    if backend == "auto":
        cuda = device_type == "cuda"
        form = select_backend(seq_len, head_dim, chunk_size, training, cuda, batch_heads, fused is not None)
        if form == "chunkwise":
            chunk_size = select_chunk_size(seq_len, head_dim, chunk_size, hand_written)
    if form == "chunkwise" and fused is None and torch.compiler.is_compiling():
        form = "chunkwise_graph"
    return CellSpec(form, chunk_size, recompute, fused if form == "chunkwise" else None, aligned)


def run_cell(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, igate: torch.Tensor, fgate: torch.Tensor, spec: CellSpec, eps
) -> torch.Tensor:
    """The mLSTM cell as `spec` says (shapes as `mlstm_parallel`)."""
    if spec.form == "parallel":
        return mlstm_parallel(q, k, v, igate, fgate, eps=eps, recompute=spec.recompute)
    if spec.form == "chunkwise":
        return mlstm_chunkwise(
            q, k, v, igate, fgate, eps=eps, chunk_size=spec.chunk_size, recompute=spec.recompute, fused=spec.fused
        )
    if spec.form == "chunkwise_graph":
        return mlstm_chunkwise_graph(q, k, v, igate, fgate, eps=eps, chunk_size=spec.chunk_size, aligned=spec.aligned)
    return mlstm_triton(q, k, v, igate, fgate, eps=eps, chunk_size=spec.chunk_size)


def _check_shapes(q, k, v, igate, fgate) -> None:
    named = {"q": q, "k": k, "v": v, "igate": igate, "fgate": fgate}
    for name, t in named.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}.")
    if q.ndim != 4:
        raise ValueError(f"q has shape {tuple(q.shape)}; expected (batch, heads, seq, head_dim).")
    for name in ("k", "v"):
        if named[name].shape[:3] != q.shape[:3] or (name == "k" and named[name].shape != q.shape):
            raise ValueError(
                f"{name} has shape {tuple(named[name].shape)}; expected (batch, heads, seq, head_dim) matching q's "
                f"{tuple(q.shape)}" + (" (v may have another head_dim)." if name == "v" else ".")
            )
    for name in ("igate", "fgate"):
        if named[name].shape != q.shape[:3]:
            raise ValueError(
                f"{name} has shape {tuple(named[name].shape)}; expected (batch, heads, seq) = {tuple(q.shape[:3])}."
            )


def mlstm(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    eps: float = 1e-6,
    backend: str = "auto",
    chunk_size: int = 64,
    recompute: bool = True,
    fused=None,
) -> torch.Tensor:
    """Dispatch to an mLSTM kernel by name (`"auto"`, `"parallel"`, `"chunkwise"` or `"triton"`).

    Shapes as `mlstm_parallel`. `"auto"` runs the parallel form for short sequences and the chunkwise form for long
    ones, training on a CPU with a chunk length that follows the head width (`resolve_cell`, the same decision the
    model's mixer takes); all compute the same function. `recompute=False` trains through autograd instead of the
    hand-written backward passes; `fused` (`hf_axlstm.cpu_kernels.fused_kernels()`) runs float32 chunkwise CPU training
    through the fused C++ cell. Inputs of the wrong rank or mismatched shapes raise a `ValueError` naming the tensor
    (shape checks only: nothing is read back from the device).
    """
    _check_shapes(q, k, v, igate, fgate)
    training = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, igate, fgate))
    dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    batch, heads, seq, head_dim = q.shape
    device = q.device.type
    spec = resolve_cell(backend, chunk_size, seq, head_dim, batch * heads, device, dtype, training, recompute, fused)
    return run_cell(q, k, v, igate, fgate, spec, eps)


__all__ = [
    "BACKENDS",
    "CellSpec",
    "fused_cpu_training",
    "mlstm",
    "mlstm_chunkwise",
    "mlstm_chunkwise_graph",
    "mlstm_parallel",
    "mlstm_triton",
    "resolve_cell",
    "run_cell",
    "select_backend",
    "select_chunk_size",
]

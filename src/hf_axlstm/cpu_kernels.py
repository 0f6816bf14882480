# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Fused CPU kernels for float32 training (`csrc/cpu_kernels.cpp`), each forward + backward: the chunkwise mLSTM
cell and, in the mixer around it, the causal conv + SiLU, the q / k / v projections into the cell's head layout and
the output tail (head norm, skip, output gate).

`enable_fused_cpu_cell()` registers them with `kernels_axlstm`, so that every float32 chunkwise training call on a
CPU tensor runs the fused cell instead of `_ChunkwiseMLSTM`, and the mixer's float32 CPU training its fused conv,
projections and tail (`_FusedConvSiLU`, `_FusedHeads`, `_MixerOutput`); `auto` then also trains the chunkwise form
from shorter lengths (`kernels_axlstm.AUTO_CHUNKWISE_FACTOR_FUSED`). The first such call builds them with torch's C++
extension loader (a C++ compiler and ninja are needed; about a minute on 2 cores, then cached under torch's
extensions folder, `TORCH_EXTENSIONS_DIR`, for later processes). The same functions and gradients; on the 2-core AMD
EPYC they were measured on, the cell's forward + backward takes 0.6x the eager time for tiny's heads, the conv and
the projections 0.42-0.5x, the tail 0.56x, and tiny's whole pretraining step 0.71x (benchmarks/README.md).
examples/pretrain.py and finetune.py call it on a CPU (`build_now=True`: before their first step, so the build is
not timed as training) unless `--cpu_kernels eager`. Inference, CUDA, 16-bit and compiled training are not affected.

Where the build fails (no compiler, no ninja, a BLAS without `sgemm_`), that call warns with the reason and the
eager kernels keep running. The modeling files never import this module: as Hub remote code (without hf_axlstm
installed) the model runs the eager kernels.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time

import torch

from . import kernels_axlstm

logger = logging.getLogger(__name__)

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "cpu_kernels.cpp")
_ops = None


def _build_flags() -> tuple[str, list[str]]:
    """The extension's name and compiler flags for this CPU and torch build. The name carries torch's version and
    the CPU capability torch detected, so a cache shared between machines or torch versions never loads a build made
    for another one."""
    capability = torch.backends.cpu.get_cpu_capability()  # e.g. "AVX2", "AVX512", "DEFAULT"
    flags = ["-O3", "-fopenmp", "-fno-trapping-math"]  # the last: lets the exp loops vectorise (see the .cpp)
    if capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    tag = re.sub(r"[^0-9A-Za-z]+", "_", f"{torch.__version__}_{capability}")
    return f"hf_axlstm_cpu_kernels_{tag}", flags


def build(verbose: bool = False):
    """Build (or load the cached build of) the fused kernel and return its module; raises on failure."""
    from torch.utils import cpp_extension

    global _ops
    if _ops is not None:
        return _ops
    for tool in ("ninja", os.environ.get("CXX", "c++")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"the fused CPU kernel needs {tool!r} on PATH (a C++ compiler and ninja)")
    name, flags = _build_flags()
    start = time.perf_counter()
    _ops = cpp_extension.load(
        name=name, sources=[SOURCE], extra_cflags=flags, extra_ldflags=["-fopenmp"], verbose=verbose
    )
    logger.info("fused CPU mLSTM cell ready (%s, %.1f s)", name, time.perf_counter() - start)
    return _ops


def _build_or_warn():
    """The kernels_axlstm provider: the built kernel, or None (with a warning naming the reason)."""
    if _ops is None:
        logger.warning("building the fused CPU mLSTM cell (once; about a minute, then cached)")
    try:
        return build()
    except Exception as error:  # no compiler, no ninja, a BLAS without sgemm_: the eager kernel keeps running
        logger.warning("fused CPU mLSTM cell unavailable, training runs the eager kernel: %s", error)
        return None


def enable_fused_cpu_cell(build_now: bool = False) -> bool:
    """Run float32 chunkwise training on CPU tensors through the fused kernel. By default it is built (or loaded from
    the cache) on the first training call that uses it, so runs that never train chunkwise never build it; where the
    build fails, that call warns with the reason and the eager kernel keeps running. With `build_now` it is built
    here, and the return value says whether it is available (otherwise always True)."""
    if build_now and _build_or_warn() is None:
        kernels_axlstm.register_fused_cpu_cell(None)
        return False
    kernels_axlstm.register_fused_cpu_cell(_build_or_warn)
    return True


def disable_fused_cpu_cell() -> None:
    """Run chunkwise training through the eager `_ChunkwiseMLSTM` again."""
    kernels_axlstm.register_fused_cpu_cell(None)

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

The cache, `<TORCH_EXTENSIONS_DIR or torch's per-user cache>/<name>`, is trusted only as far as it is private:
- the build folder's name carries a hash of the C++ source, the compiler and linker flags, torch's version, the CPU
  capability and the Python version, so a build of another source or for another machine is never loaded;
- the cache folder and the build folder must belong to the current user and be writable by no one else (otherwise
  the build is refused, naming the folder and the `chmod` / `TORCH_EXTENSIONS_DIR` fix), and the library is loaded
  only if its SHA-256 matches the one recorded when it was built here (a torn or replaced library is rebuilt);
- builds are serialised by an flock on `<build folder>/hf_axlstm_build.lock`, which the kernel releases when its
  holder dies: a torch `lock` file found while holding it was left by a killed build and is removed (torch would
  otherwise wait for it forever), and a live holder is waited for at most BUILD_WAIT_SECONDS, then an error names
  the folder to delete.
The warning "building the fused CPU kernels" is logged only when a build actually runs, not for a cached one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import stat
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import kernels_axlstm
from .mixers_axlstm import ALL_MIXER_IMPLEMENTATIONS, MixerImplementation, folded_mixer_forward

logger = logging.getLogger(__name__)

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "cpu_kernels.cpp")
LDFLAGS = ["-fopenmp"]
# How long a process waits for another live process that is building the kernels into the same folder.
BUILD_WAIT_SECONDS = 900.0
LOCK_FILE = "hf_axlstm_build.lock"  # ours (flock); torch's own is "lock"
DIGEST_FILE = "hf_axlstm_build.sha256"  # the SHA-256 of the library as built here
_ops = None


def _build_flags() -> tuple[str, list[str]]:
    """The extension's name and compiler flags for this CPU and torch build. The name carries torch's version, the
    CPU capability torch detected and a hash of the C++ source and every build input (flags, torch and Python
    versions), so a cache shared between machines or torch versions, or holding a build of another source, never
    loads a build made for something else."""
    capability = torch.backends.cpu.get_cpu_capability()  # e.g. "AVX2", "AVX512", "DEFAULT"
    flags = ["-O3", "-fopenmp", "-fno-trapping-math"]  # the last: lets the exp loops vectorise (see the .cpp)
    if capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    digest = hashlib.sha256(Path(SOURCE).read_bytes())
    digest.update(repr((flags, LDFLAGS, torch.__version__, capability, sys.version_info[:2])).encode())
    tag = re.sub(r"[^0-9A-Za-z]+", "_", f"{torch.__version__}_{capability}")
    return f"hf_axlstm_cpu_kernels_{tag}_{digest.hexdigest()[:16]}", flags


def _cache_root() -> Path:
    from torch.utils import cpp_extension

    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root())


def _check_private(path: Path) -> None:
    """RuntimeError unless `path` belongs to this user and no one else can write to it (a library planted there would
    run inside this process)."""
    info = os.stat(path)
    uid = os.getuid() if hasattr(os, "getuid") else None
    problem = None
    if uid is not None and info.st_uid != uid:
        problem = f"belongs to another user (uid {info.st_uid}; you are {uid})"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by other users (mode {stat.filemode(info.st_mode)})"
    if problem is not None:
        raise RuntimeError(
            f"the fused-kernel cache {str(path)!r} {problem}, so a library placed there by someone else could be "
            f"loaded: refusing it. Make it yours and private (`chmod go-w {path}`, or delete it) or set "
            "TORCH_EXTENSIONS_DIR to a folder only you can write to."
        )


def _build_directory(name: str) -> Path:
    """The private build folder `<cache root>/<name>` (created 0700 where missing), checked with `_check_private`."""
    root = _cache_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(root)
    folder = root / name
    folder.mkdir(mode=0o700, exist_ok=True)
    _check_private(folder)
    return folder


@contextlib.contextmanager
def _build_lock(folder: Path):
    """Hold an exclusive flock on `folder/LOCK_FILE` (the kernel drops it when its holder dies), waiting at most
    BUILD_WAIT_SECONDS for a live holder."""
    try:
        import fcntl
    except ImportError:  # not POSIX: torch's own lock file alone
        yield
        return
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        start = time.monotonic()
        warned = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                if time.monotonic() - start > BUILD_WAIT_SECONDS:
                    raise RuntimeError(
                        f"waited {BUILD_WAIT_SECONDS:g} s for process {holder}, which is building the fused CPU "
                        f"kernels in {str(folder)!r}; if no such build is running, delete that folder and run again"
                    ) from None
                if not warned:
                    logger.warning(
                        "waiting for process %s, which is building the fused CPU kernels in %s", holder, folder
                    )
                    warned = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # (releases the flock)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(verbose: bool = False):
    """Build (or load the cached build of) the fused kernel and return its module; raises on failure (see the
    module docstring for the cache's checks)."""
    from torch.utils import cpp_extension

    global _ops
    if _ops is not None:
        return _ops
    for tool in ("ninja", os.environ.get("CXX", "c++")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"the fused CPU kernel needs {tool!r} on PATH (a C++ compiler and ninja)")
    name, flags = _build_flags()
    folder = _build_directory(name)
    with _build_lock(folder):
        baton = folder / "lock"
        if baton.exists():  # torch's lock file, while no live process holds ours: left by a killed build
            baton.unlink()
            logger.warning("removed the lock file %s, left by a build that was killed", baton)
        library, digest = folder / f"{name}.so", folder / DIGEST_FILE
        cached = library.is_file() and digest.is_file() and digest.read_text().strip() == _file_digest(library)
        if cached:
            _check_private(library)
        else:
            library.unlink(missing_ok=True)  # torn or not ours: ninja would take it as up to date
            digest.unlink(missing_ok=True)
            logger.warning("building the fused CPU kernels (once; about a minute, then cached in %s)", folder)
        start = time.perf_counter()
        ops = cpp_extension.load(
            name=name,
            sources=[SOURCE],
            extra_cflags=flags,
            extra_ldflags=LDFLAGS,
            build_directory=str(folder),
            verbose=verbose,
        )
        digest.write_text(_file_digest(library) + "\n")  # (ninja may have rebuilt it: its sources' mtimes)
    logger.info(
        "fused CPU kernels %s (%s, %.1f s)", "loaded" if cached else "built", name, time.perf_counter() - start
    )
    _ops = ops
    return _ops


class _FusedChunkwiseMLSTM(torch.autograd.Function):
    """`kernels_axlstm._ChunkwiseMLSTM` (same inputs, outputs and gradients) through the fused cell: each worker thread
    runs one (batch, head) sequence's chunks at a time with every intermediate in per-thread scratch, so nothing
    (B, NH, NC, L, L)-sized but the decay and the weighted scores (kept for the backward) exists (see the kernel's
    header). The decay is formed here, in torch; the kernel returns its gradient as the gradients of b and the row
    max, as `_ChunkwiseMLSTM` does. The states are kept between the passes when `keep_states`, else recomputed."""

    @staticmethod
    def forward(ctx, q, k, v, b, row_max, state_weight, floor, keep, key_weight, eps, scale, keep_states, ops):
        batch, heads, num_chunks, chunk, head_dim = q.shape
        flat = batch * heads

        def rows(t: torch.Tensor) -> torch.Tensor:  # (B, NH, ...) -> (B * NH, ...), contiguous
            return t.reshape(flat, *t.shape[2:]).contiguous()

        decay = kernels_axlstm._stabilised_decay(b, row_max, scale)  # (B, NH, NC, L, L), scaled by 1 / sqrt(D)
        inputs = [rows(t) for t in (q, k, v, decay, state_weight * scale, floor, keep, key_weight)]
        h, weighted, n_raw, normaliser, *states = ops.forward(*inputs, float(eps), bool(keep_states))
        if not states:
            states = [h.new_empty(0), h.new_empty(0)]
        q, k, v, decay, *gate_terms = inputs
        ctx.save_for_backward(q, k, v, decay, weighted, *gate_terms, n_raw, normaliser, h, *states)
        ctx.eps, ctx.scale, ctx.batch, ctx.ops, ctx.out_shape = eps, scale, batch, ops, h.shape
        return h.view(batch, heads, num_chunks, chunk, -1)

    @staticmethod
    def backward(ctx, grad_h):
        grads = ctx.ops.backward(grad_h.reshape(ctx.out_shape).contiguous(), *ctx.saved_tensors, float(ctx.eps))
        grad_q, grad_k, grad_v, grad_b, grad_row_max, grad_w, grad_floor, grad_keep, grad_key_weight = (
            g.view(ctx.batch, -1, *g.shape[1:]) for g in grads
        )
        return (grad_q, grad_k, grad_v, grad_b, grad_row_max, grad_w.mul_(ctx.scale), grad_floor, grad_keep,
                grad_key_weight, None, None, None, None)  # fmt: skip


class _FusedConvSiLU(torch.autograd.Function):
    """silu(causal depthwise conv(x)) in one pass over the rows forward, one backward (which recomputes the
    pre-activation from x, so only x is kept). The eager pair runs a padded copy, the conv and the SiLU forward, and
    the SiLU's backward, the conv's input gradient and k + 1 reductions backward: 0.45-0.5x their time for tiny and
    base at batch 32 (docs/performance.md)."""

    @staticmethod
    def forward(ctx, x, weight, bias, ops):
        # x (B, S, C) rows with a unit channel stride; weight (C, 1, k) as nn.Conv1d stores it; bias (C,)
        taps = weight.reshape(weight.shape[0], -1).contiguous()  # (C, k)
        ctx.save_for_backward(x, taps, bias)
        ctx.ops = ops
        return ops.conv_forward(x, taps, bias.contiguous())

    @staticmethod
    def backward(ctx, grad_act):
        x, taps, bias = ctx.saved_tensors
        grad_x, grad_taps, grad_bias = ctx.ops.conv_backward(grad_act.contiguous(), x, taps, bias.contiguous())
        return grad_x, grad_taps.view(taps.shape[0], 1, -1), grad_bias, None


class _FusedHeads(torch.autograd.Function):
    """q, k, v in the cell's head layout, (B, NH, S, DH) each: q = the 16-wide tiles of Wk^T Wq applied to the conv
    output c, k = c, v = the tiles of Wv applied to x_mlstm (as the folded mixer's tiled products and layout copies).
    Each row is read once and its head slices written, where the eager form runs a batched product and a layout copy
    per tensor (and their reverses backward): 0.42-0.5x the time for tiny and base at batch 32."""

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


class _FusedTail(torch.autograd.Function):
    """The mixer's tail, (headwise_norm(h) * (1 + w) + skip * c) * silu(z), one loop over the rows each way, keeping
    only h's norm statistics besides the inputs (forward + backward 0.56x the eager recomputing tail's time for
    tiny's block at batch 32)."""

    @staticmethod
    def forward(ctx, h, norm_weight, conv_act, skip, z, eps, ops):
        # h (B, NH, S, DH); norm_weight, skip (I,); conv_act, z (B, S, I) -> (B, S, I)
        h = h.contiguous()
        out, mean, rstd = ops.tail_forward(
            h, norm_weight.contiguous(), conv_act.contiguous(), skip.contiguous(), F.silu(z).contiguous(), float(eps)
        )
        ctx.save_for_backward(h, mean, rstd, norm_weight, conv_act, skip, z)
        ctx.ops = ops
        return out

    @staticmethod
    def backward(ctx, grad_out):
        h, mean, rstd, norm_weight, conv_act, skip, z = ctx.saved_tensors
        # z may be a strided half of the up-projection: the kernel reads its rows
        grads = ctx.ops.tail_backward(
            grad_out.contiguous(), h, mean, rstd, norm_weight.contiguous(), conv_act.contiguous(), skip.contiguous(),
            z, torch.sigmoid(z).contiguous()
        )  # fmt: skip
        return (*grads, None, None)


class FusedCPUKernels:
    """The fused kernels as the differentiable steps the folded mixer and the chunkwise cell call (`spec.fused`)."""

    def __init__(self, ops) -> None:
        self.ops = ops

    def conv_silu(self, x, weight, bias):
        return _FusedConvSiLU.apply(x, weight, bias, self.ops)

    def heads(self, conv_act, x_mlstm, qk_tiles, v_tiles, num_heads):
        return _FusedHeads.apply(conv_act, x_mlstm, qk_tiles, v_tiles, num_heads, self.ops)

    def tail(self, h, norm_weight, conv_act, skip, z, eps):
        return _FusedTail.apply(h, norm_weight, conv_act, skip, z, eps, self.ops)

    def cell(self, q, k, v, b, row_max, state_weight, floor, keep, key_weight, eps, scale, keep_states):
        terms = (q, k, v, b, row_max, state_weight, floor, keep, key_weight, eps, scale, keep_states)
        return _FusedChunkwiseMLSTM.apply(*terms, self.ops)


def fused_kernels() -> FusedCPUKernels:
    """The fused kernels (built, or loaded from the cache, on the first call); raises RuntimeError with the reason
    where they cannot be built (no compiler, no ninja, a BLAS without `sgemm_`, a cache others can write)."""
    global _kernels
    if _kernels is None:
        try:
            ops = build()
        except Exception as error:  # noqa: BLE001 - any build problem is reported as one RuntimeError with its cause
            raise RuntimeError(f"the fused CPU kernels are unavailable: {error}") from error
        _kernels = FusedCPUKernels(ops)
    return _kernels


_kernels: FusedCPUKernels | None = None


def enable_fused_cpu_kernels(model) -> bool:
    """Run `model`'s mixers through the "fused_cpu" implementation (`model.set_mixer_implementation("fused_cpu")`),
    building the kernels now (or loading them from the cache), so that the build is not timed as training. Where
    they cannot be built, warn with the reason and leave the model as it is (the folded eager forms keep running).
    Returns whether the model runs them; a model without mLSTM mixers (SSAST) is left alone (False)."""
    if not hasattr(model, "set_mixer_implementation"):
        return False
    try:
        model.set_mixer_implementation("fused_cpu")
    except RuntimeError as error:
        logger.warning("fused CPU kernels unavailable, training runs the eager forms: %s", error)
        return False
    return True


ALL_MIXER_IMPLEMENTATIONS.register(
    "fused_cpu", MixerImplementation(folded_mixer_forward, recompute=True, fused_kernels=fused_kernels)
)

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Fused CPU kernels for float32 training (`csrc/cpu_kernels.cpp`), each forward + backward: the chunkwise mLSTM
cell and, in the mixer around it, the causal conv + SiLU, the q / k / v projections into the cell's head layout and
the output tail (head norm, skip, output gate).

Importing this module (which `import hf_axlstm` does) registers the mixer implementation "fused_cpu" beside
"plain" and "folded" (`mixers_axlstm.py`): the folded form whose conv + SiLU, q / k / v, tail and chunkwise cell run
these kernels for float32 training on a CPU (`FusedCPUKernels`, the differentiable steps); inference, CUDA, 16-bit
and autocast steps run the folded eager forms, and a compiled float32 training step keeps the kernels (custom ops,
below). With them `auto` also trains the chunkwise cell from shorter lengths
(`kernels_axlstm.AUTO_CHUNKWISE_FACTOR_FUSED`). A model runs them once told so:
`model.set_mixer_implementation("fused_cpu")` (raises with the reason where they cannot be built) or
`enable_fused_cpu_kernels(model)` (warns and leaves the model as it is), which examples/pretrain.py and finetune.py
call on a CPU unless `--cpu_kernels eager`, before their first step, so that the build is not timed as training.
Both build them with torch's C++ extension loader (a C++ compiler and ninja are needed; about a minute on 2 cores,
then cached under torch's extensions folder, `TORCH_EXTENSIONS_DIR`, for later processes). The same functions and
gradients; on the 2-core AMD EPYC they were measured on, the cell's forward + backward takes 0.6x the eager time for
tiny's heads, the conv and the projections 0.42-0.5x, the tail 0.56x, and tiny's whole pretraining step 0.71x
(docs/performance.md). The modeling files never import this module: as Hub remote code (without hf_axlstm
installed) there is no "fused_cpu".

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

Once built or loaded, the 8 C++ functions are registered (once per process) as torch.library custom ops in the
`hf_axlstm` namespace, each with a fake (meta) implementation giving its outputs' shapes, so that torch.compile
traces through them (no graph break) instead of switching them off: `cell_forward`, `cell_backward` (the chunkwise
mLSTM cell), `tail_forward`, `tail_backward`, `conv_silu_forward`, `conv_silu_backward`, `heads_forward`,
`heads_backward` (see `FusedCPUOps` for their arguments and outputs). None mutates or aliases an input; none has an
autograd formula of its own (the `autograd.Function`s below pair them).
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
from torch import Tensor

from . import kernels_axlstm
from .mixers_axlstm import ALL_MIXER_IMPLEMENTATIONS, MixerImplementation, folded_mixer_forward

logger = logging.getLogger(__name__)

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "cpu_kernels.cpp")
LDFLAGS = ["-fopenmp"]
# How long a process waits for another live process that is building the kernels into the same folder.
BUILD_WAIT_SECONDS = 900.0
LOCK_FILE = "hf_axlstm_build.lock"  # ours (flock); torch's own is "lock"
DIGEST_FILE = "hf_axlstm_build.sha256"  # the SHA-256 of the library as built here
OP_NAMESPACE = "hf_axlstm"
_ops = None  # what `build` returned: a FusedCPUOps
_extension = None  # the loaded C++ extension, which the custom ops' real implementations call


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


def build(verbose: bool = False) -> FusedCPUOps:
    """Build (or load the cached build of) the fused kernels, register them as the `hf_axlstm::*` custom ops (once
    per process) and return a `FusedCPUOps` calling them; raises on failure (see the module docstring for the
    cache's checks)."""
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
    global _extension
    _extension = ops
    _define_ops()
    _ops = FusedCPUOps(name)
    return _ops


def _define_ops() -> None:
    """Register the extension's 8 functions as `hf_axlstm::*` custom ops with their fake implementations, once per
    process (their real implementations call the extension `build` loaded last, `_extension`)."""
    if hasattr(torch.ops, OP_NAMESPACE) and hasattr(getattr(torch.ops, OP_NAMESPACE), "cell_forward"):
        return
    library = torch.library

    def empty_states(q: Tensor) -> list[Tensor]:
        return [q.new_empty(0), q.new_empty(0)]

    @library.custom_op(f"{OP_NAMESPACE}::cell_forward", mutates_args=(), device_types="cpu")
    def cell_forward(
        q: Tensor, k: Tensor, v: Tensor, decay: Tensor, w: Tensor, floor: Tensor, keep: Tensor,
        key_weight: Tensor, eps: float, keep_states: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
        out = _extension.forward(q, k, v, decay, w, floor, keep, key_weight, eps, keep_states)
        return tuple(out) if keep_states else (*out, *empty_states(q))

    @cell_forward.register_fake
    def _(q, k, v, decay, w, floor, keep, key_weight, eps, keep_states):
        flat, num_chunks, _, head_dim = q.shape
        states = (
            [q.new_empty(flat, num_chunks, head_dim, v.shape[3]), q.new_empty(flat, num_chunks, head_dim)]
            if keep_states
            else empty_states(q)
        )
        return (v.new_empty(v.shape), decay.new_empty(decay.shape), w.new_empty(w.shape), w.new_empty(w.shape),
                *states)  # fmt: skip

    @library.custom_op(f"{OP_NAMESPACE}::cell_backward", mutates_args=(), device_types="cpu")
    def cell_backward(
        grad_h: Tensor, q: Tensor, k: Tensor, v: Tensor, decay: Tensor, weighted: Tensor, w: Tensor, floor: Tensor,
        keep: Tensor, key_weight: Tensor, n_raw: Tensor, normaliser: Tensor, h: Tensor, c_in: Tensor, n_in: Tensor,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
        return tuple(
            _extension.backward(
                grad_h, q, k, v, decay, weighted, w, floor, keep, key_weight, n_raw, normaliser, h, c_in, n_in, eps
            )
        )

    @cell_backward.register_fake
    def _(grad_h, q, k, v, decay, weighted, w, floor, keep, key_weight, n_raw, normaliser, h, c_in, n_in, eps):
        like = (q, k, v, w, w, w, w, keep, key_weight)  # q, k, v, b, row max, w, floor, keep, key weight
        return tuple(t.new_empty(t.shape) for t in like)

    @library.custom_op(f"{OP_NAMESPACE}::tail_forward", mutates_args=(), device_types="cpu")
    def tail_forward(
        h: Tensor, norm_weight: Tensor, conv_act: Tensor, skip: Tensor, silu_z: Tensor, eps: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(_extension.tail_forward(h, norm_weight, conv_act, skip, silu_z, eps))

    @tail_forward.register_fake
    def _(h, norm_weight, conv_act, skip, silu_z, eps):
        batch, heads, seq, head_dim = h.shape
        return (
            h.new_empty(batch, seq, heads * head_dim),
            h.new_empty(batch, heads, seq),
            h.new_empty(batch, heads, seq),
        )

    @library.custom_op(f"{OP_NAMESPACE}::tail_backward", mutates_args=(), device_types="cpu")
    def tail_backward(
        grad_out: Tensor, h: Tensor, mean: Tensor, rstd: Tensor, norm_weight: Tensor, conv_act: Tensor,
        skip: Tensor, z: Tensor, sig_z: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
        return tuple(_extension.tail_backward(grad_out, h, mean, rstd, norm_weight, conv_act, skip, z, sig_z))

    @tail_backward.register_fake
    def _(grad_out, h, mean, rstd, norm_weight, conv_act, skip, z, sig_z):
        inner = h.shape[1] * h.shape[3]
        return (h.new_empty(h.shape), h.new_empty(inner), conv_act.new_empty(conv_act.shape), h.new_empty(inner),
                conv_act.new_empty(conv_act.shape))  # fmt: skip

    @library.custom_op(f"{OP_NAMESPACE}::conv_silu_forward", mutates_args=(), device_types="cpu")
    def conv_silu_forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return _extension.conv_forward(x, weight, bias)

    @conv_silu_forward.register_fake
    def _(x, weight, bias):
        return x.new_empty(x.shape[0], x.shape[1], weight.shape[0])

    @library.custom_op(f"{OP_NAMESPACE}::conv_silu_backward", mutates_args=(), device_types="cpu")
    def conv_silu_backward(grad_act: Tensor, x: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(_extension.conv_backward(grad_act, x, weight, bias))

    @conv_silu_backward.register_fake
    def _(grad_act, x, weight, bias):
        grad_x = grad_act.new_empty(x.shape[0], x.shape[1], weight.shape[0])
        return grad_x, weight.new_empty(weight.shape), bias.new_empty(bias.shape)

    @library.custom_op(f"{OP_NAMESPACE}::heads_forward", mutates_args=(), device_types="cpu")
    def heads_forward(
        conv_act: Tensor, x_mlstm: Tensor, qk_tiles: Tensor, v_tiles: Tensor, heads: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(_extension.heads_forward(conv_act, x_mlstm, qk_tiles, v_tiles, heads))

    @heads_forward.register_fake
    def _(conv_act, x_mlstm, qk_tiles, v_tiles, heads):
        batch, seq, inner = conv_act.shape
        return tuple(conv_act.new_empty(batch, heads, seq, inner // heads) for _ in range(3))

    @library.custom_op(f"{OP_NAMESPACE}::heads_backward", mutates_args=(), device_types="cpu")
    def heads_backward(
        grad_q: Tensor, grad_k: Tensor, grad_v: Tensor, conv_act: Tensor, x_mlstm: Tensor, qk_tiles: Tensor,
        v_tiles: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
        return tuple(_extension.heads_backward(grad_q, grad_k, grad_v, conv_act, x_mlstm, qk_tiles, v_tiles))

    @heads_backward.register_fake
    def _(grad_q, grad_k, grad_v, conv_act, x_mlstm, qk_tiles, v_tiles):
        batch, seq, inner = conv_act.shape
        grad_c, grad_x = (conv_act.new_empty(batch, seq, inner) for _ in range(2))
        return grad_c, grad_x, qk_tiles.new_empty(qk_tiles.shape), v_tiles.new_empty(v_tiles.shape)


class FusedCPUOps:
    """What `build` returns: the fused kernels under the method names and arguments of the C++ extension's functions,
    each calling its `torch.ops.hf_axlstm` custom op (so torch.compile traces them). All tensors float32 on the CPU;
    none of the outputs aliases an input. `name` is the extension's build name.

    - `forward(q, k, v, decay, w, floor, keep, key_weight, eps, keep_states)` -> `cell_forward`: 6 tensors (h,
      weighted, n_raw, normaliser, c_in, n_in); q, k (BH, NC, L, D), v (BH, NC, L, DV), decay (BH, NC, L, L), w,
      floor, key_weight (BH, NC, L), keep (BH, NC), all contiguous; h like v, weighted like decay, n_raw and
      normaliser like w; the states entering each chunk c_in (BH, NC, D, DV) and n_in (BH, NC, D) when
      `keep_states`, else two empty (0,) tensors.
    - `backward(grad_h, q, k, v, decay, weighted, w, floor, keep, key_weight, n_raw, normaliser, h, c_in, n_in, eps)`
      -> `cell_backward`: 9 tensors, the gradients of q, k, v, b, the row max, w, floor, keep and key_weight (like
      q, k, v, w, w, w, w, keep, key_weight); c_in and n_in as `forward` returned them (empty: recomputed).
    - `tail_forward(h, norm_weight, conv_act, skip, silu_z, eps)`: out (B, S, I), mean and rstd (B, NH, S), from h
      (B, NH, S, DH), norm_weight and skip (I,), conv_act and silu_z (B, S, I), I = NH * DH.
    - `tail_backward(grad_out, h, mean, rstd, norm_weight, conv_act, skip, z, sig_z)`: the gradients of h, norm_weight,
      conv_act, skip and z (z may be rows with a unit channel stride; the gradient is contiguous).
    - `conv_forward(x, weight, bias)` -> `conv_silu_forward`: one tensor, silu(causal depthwise conv(x) + bias)
      (B, S, C), from x (B, S, C) rows with a unit channel stride, weight (C, K), bias (C,).
    - `conv_backward(grad_act, x, weight, bias)` -> `conv_silu_backward`: the gradients of x (B, S, C, contiguous),
      weight (C, K) and bias (C,).
    - `heads_forward(conv_act, x_mlstm, qk_tiles, v_tiles, heads)`: q, k, v (B, NH, S, I / NH) from conv_act and
      x_mlstm (B, S, I) rows, the tiles (G, W, W) with G * W = I.
    - `heads_backward(grad_q, grad_k, grad_v, conv_act, x_mlstm, qk_tiles, v_tiles)`: the gradients of conv_act,
      x_mlstm (B, S, I), qk_tiles and v_tiles (G, W, W).
    """

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"FusedCPUOps({self.name!r})"

    @staticmethod
    def forward(q, k, v, decay, w, floor, keep, key_weight, eps, keep_states):
        return torch.ops.hf_axlstm.cell_forward(q, k, v, decay, w, floor, keep, key_weight, eps, keep_states)

    @staticmethod
    def backward(grad_h, q, k, v, decay, weighted, w, floor, keep, key_weight, n_raw, normaliser, h, c_in, n_in, eps):
        return torch.ops.hf_axlstm.cell_backward(
            grad_h, q, k, v, decay, weighted, w, floor, keep, key_weight, n_raw, normaliser, h, c_in, n_in, eps
        )

    @staticmethod
    def tail_forward(h, norm_weight, conv_act, skip, silu_z, eps):
        return torch.ops.hf_axlstm.tail_forward(h, norm_weight, conv_act, skip, silu_z, eps)

    @staticmethod
    def tail_backward(grad_out, h, mean, rstd, norm_weight, conv_act, skip, z, sig_z):
        return torch.ops.hf_axlstm.tail_backward(grad_out, h, mean, rstd, norm_weight, conv_act, skip, z, sig_z)

    @staticmethod
    def conv_forward(x, weight, bias):
        return torch.ops.hf_axlstm.conv_silu_forward(x, weight, bias)

    @staticmethod
    def conv_backward(grad_act, x, weight, bias):
        return torch.ops.hf_axlstm.conv_silu_backward(grad_act, x, weight, bias)

    @staticmethod
    def heads_forward(conv_act, x_mlstm, qk_tiles, v_tiles, heads):
        return torch.ops.hf_axlstm.heads_forward(conv_act, x_mlstm, qk_tiles, v_tiles, heads)

    @staticmethod
    def heads_backward(grad_q, grad_k, grad_v, conv_act, x_mlstm, qk_tiles, v_tiles):
        return torch.ops.hf_axlstm.heads_backward(grad_q, grad_k, grad_v, conv_act, x_mlstm, qk_tiles, v_tiles)


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
        # the states (C_in, n_in) are empty tensors unless kept; the backward then recomputes them
        h, weighted, n_raw, normaliser, c_in, n_in = ops.forward(*inputs, float(eps), bool(keep_states))
        q, k, v, decay, *gate_terms = inputs
        ctx.save_for_backward(q, k, v, decay, weighted, *gate_terms, n_raw, normaliser, h, c_in, n_in)
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

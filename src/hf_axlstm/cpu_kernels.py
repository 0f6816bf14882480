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

from . import kernels_axlstm

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


def _build_or_warn():
    """The kernels_axlstm provider: the built kernel, or None (with a warning naming the reason)."""
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

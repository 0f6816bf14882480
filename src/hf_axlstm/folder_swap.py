# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Write a tool's output folder so that no one ever sees it half written (used by `export_onnx` and
`convert_official`).

A tool writes its whole set of files into a staging folder beside the target, `.tmp-<name>-<host>-<pid>-<token>`
(same parent, so the renames below stay on one file system), then publishes it:

- new target: one rename, stage -> target;
- `--overwrite`: the user's own files in the target (every entry the tool does not own) are hard-linked (copied where
  links fail) into the stage, the stage is marked complete by renaming it to `...-ready`, then two renames swap the
  folders, target -> `...-old` and ready -> target, and the old folder is deleted. Files the tool owns but did not
  write this time (an old `model_int8.onnx` after an export without `--quantize`) are thereby gone.

So the target is at every instant either the old complete set or the new complete set, never a mix; only between
the two renames of a swap (microseconds) is it absent, and a reader then finds no folder rather than a mixed one.
The renames of a swap and of a clean-up run under an flock on the parent folder, so two runs on one target never
interleave them. A run killed anywhere leaves its staging folders behind; the next run of either tool on the same
target removes those of dead processes (the pid in the name, checked on this host; a live run's folders are never touched). If the
kill fell between the two renames, so that the target is missing, that run first restores it: the `-ready` folder
(the new complete set) becomes the target, or failing that the `-old` one (the old complete set).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

_READY = "-ready"
_OLD = "-old"


def _resolve(target: str | os.PathLike) -> Path:
    """`target`, or where it points when it is a symlink (the link stays and sees the new folder)."""
    target = Path(target)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


@contextlib.contextmanager
def _parent_lock(parent: Path):
    """An exclusive flock on the parent folder itself, held while a swap or a clean-up renames in it: two runs on
    one target never interleave their renames. (The kernel drops it when its holder dies; no lock file.)"""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _pattern(name: str) -> re.Pattern:
    return re.compile(r"^\.tmp-" + re.escape(name) + r"-([0-9a-f]{8})-(\d+)-([0-9a-f]+)(-ready|-old)?$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale(target: str | os.PathLike) -> list[str]:
    """Remove the staging folders that dead runs left beside `target` (this host's only), restoring `target` first
    when a run died between the renames of a swap. Returns what was done, one line each."""
    target = _resolve(target)
    parent = target.parent
    if not parent.is_dir():
        return []
    with _parent_lock(parent):
        return _clean_stale(target, parent)


def _clean_stale(target: Path, parent: Path) -> list[str]:
    pattern, host = _pattern(target.name), _host_tag()
    stale: list[tuple[str, Path]] = []  # (kind: "", "-ready" or "-old", folder)
    for entry in parent.iterdir():
        match = pattern.match(entry.name)
        if match is not None and match.group(1) == host and not _alive(int(match.group(2))):
            stale.append((match.group(4) or "", entry))
    done = []
    if not target.exists() and not target.is_symlink():
        for kind, what in ((_READY, "the new complete set"), (_OLD, "the old complete set")):
            found = sorted((e for k, e in stale if k == kind), key=lambda e: e.stat().st_mtime, reverse=True)
            if found:
                os.rename(found[0], target)
                done.append(f"restored {target} from {found[0].name} ({what}; a run was killed while swapping)")
                break
    for _, entry in stale:
        if entry.exists() or entry.is_symlink():
            _remove(entry)
            done.append(f"removed {entry.name}, left by a killed run")
    return done


def make_stage(target: str | os.PathLike) -> Path:
    """A new, empty staging folder beside `target` (created with the usual permissions, not mkdtemp's 0700)."""
    target = _resolve(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        stage = target.parent / f".tmp-{target.name}-{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            stage.mkdir()
            return stage
        except FileExistsError:
            continue


def _link_tree(source: Path, destination: Path) -> None:
    """Hard-link `source` (a file, symlink or folder) to `destination`; files that cannot be linked are copied."""
    if source.is_symlink():
        os.symlink(os.readlink(source), destination)
    elif source.is_dir():
        destination.mkdir()
        shutil.copystat(source, destination)
        for child in source.iterdir():
            _link_tree(child, destination / child.name)
    else:
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)


def publish(stage: Path, target: str | os.PathLike, owned: Callable[[str], bool]) -> None:
    """Make the complete folder `stage` the `target` (see the module docstring). `owned(name)`: whether a top-level
    entry of an existing target is one the tool writes (replaced or removed); every other entry is kept. On failure
    the target is left as it was and the stage is removed."""
    target = _resolve(target)
    try:
        with _parent_lock(target.parent):
            _publish(stage, target, owned)
    finally:
        for leftover in (stage, stage.with_name(stage.name + _READY)):  # (none after a success: both were renamed)
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def _publish(stage: Path, target: Path, owned: Callable[[str], bool]) -> None:
    """The renames of `publish`, under the parent's lock."""
    if not target.exists() and not target.is_symlink():
        os.rename(stage, target)
        return
    if not target.is_dir():
        raise ValueError(f"output_dir {str(target)!r} is not a folder; expected a folder (new, empty or to replace).")
    os.chmod(stage, target.stat().st_mode & 0o7777)
    for entry in target.iterdir():
        if not owned(entry.name) and not (stage / entry.name).exists():
            _link_tree(entry, stage / entry.name)
    ready = stage.with_name(stage.name + _READY)
    os.rename(stage, ready)
    old = stage.with_name(stage.name + _OLD)
    os.rename(target, old)
    try:
        os.rename(ready, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["clean_stale", "make_stage", "publish"]

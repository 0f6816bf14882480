# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Bad inputs to the checkpoint converter (`python -m hf_axlstm.convert_official`, `convert_checkpoint`)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from .badinputs import OFFICIAL_PTH, Api, Cli


def _file(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _random(tmp: Path) -> Path:
    return _file(tmp, "random.pth", bytes(range(256)) * 8)


def _text(tmp: Path) -> Path:
    return _file(tmp, "notes.pth", b"epoch 10: loss 0.31\nepoch 11: loss 0.30\n")


def _truncated(tmp: Path) -> Path:
    return _file(tmp, "truncated.pth", OFFICIAL_PTH.read_bytes()[:50_000])


def _truncated_legacy(tmp: Path) -> Path:
    import torch

    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(1000)}}, buffer, _use_new_zipfile_serialization=False)
    return _file(tmp, "truncated_legacy.pth", buffer.getvalue()[:600])


def _zip_without_pickle(tmp: Path) -> Path:
    path = tmp / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return path


def _tar(tmp: Path) -> Path:
    path = tmp / "old.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("storages")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    return path


def _safetensors(tmp: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    path = tmp / "model.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    return path


def _saved(tmp: Path, obj, name: str = "ckpt.pth") -> Path:
    import torch

    path = tmp / name
    torch.save(obj, path)
    return path


def _not_axlstm(tmp: Path) -> Path:
    import torch

    return _saved(tmp, {"model": {"encoder.weight": torch.zeros(2, 2)}})


def _wrong_ndim(tmp: Path) -> Path:
    from hf_axlstm.convert_official import extract_state_dict, load_official_checkpoint

    state = extract_state_dict(load_official_checkpoint(OFFICIAL_PTH))
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"].flatten()
    return _saved(tmp, {"model": state})


def _full_dir(tmp: Path) -> Path:
    out = tmp / "out"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    return out


def _convert(path_fn):
    from hf_axlstm.convert_official import convert_checkpoint

    return lambda ctx, tmp: convert_checkpoint(path_fn(tmp))


def _cli(path_fn, out_fn=lambda tmp: tmp / "out"):
    return lambda ctx, tmp: [str(path_fn(tmp)), str(out_fn(tmp))]


CASES = [
    # the API
    Api(
        "convert-api-missing-file",
        _convert(lambda tmp: tmp / "nope.pth"),
        FileNotFoundError,
        "nope.pth.*does not exist",
    ),
    Api("convert-api-directory", _convert(lambda tmp: tmp), ValueError, "is a directory"),
    Api(
        "convert-api-empty-file", _convert(lambda tmp: _file(tmp, "empty.pth", b"")), ValueError, "empty.pth.*is empty"
    ),
    Api("convert-api-random-bytes", _convert(_random), ValueError, "random.pth.*not a PyTorch checkpoint"),
    Api("convert-api-text-file", _convert(_text), ValueError, "notes.pth.*not a PyTorch checkpoint"),
    Api("convert-api-truncated-zip", _convert(_truncated), ValueError, "truncated.pth"),
    Api(
        "convert-api-truncated-legacy", _convert(_truncated_legacy), ValueError, "truncated_legacy.pth.*cannot be read"
    ),
    Api("convert-api-zip-without-data-pkl", _convert(_zip_without_pickle), ValueError, "without data.pkl"),
    Api("convert-api-tar-archive", _convert(_tar), ValueError, "tar archive"),
    Api("convert-api-safetensors-file", _convert(_safetensors), ValueError, "model.safetensors.*not a PyTorch"),
    Api("convert-api-not-axlstm", _convert(_not_axlstm), ValueError, "missing the weight 'patch_embed.proj.weight'"),
    Api("convert-api-no-state-dict", _convert(lambda tmp: _saved(tmp, [1, 2, 3])), ValueError, "no state dict"),
    Api("convert-api-empty-state-dict", _convert(lambda tmp: _saved(tmp, {"model": {}})), ValueError, "no state dict"),
    Api(
        "convert-api-non-tensor-entry",
        _convert(lambda tmp: _saved(tmp, {"model": {"patch_embed.proj.weight": "abc"}})),
        ValueError,
        "not tensors: \\['patch_embed.proj.weight'\\]",
    ),
    Api("convert-api-wrong-weight-rank", _convert(_wrong_ndim), ValueError, "patch_embed.proj.weight.*shape"),
    # the CLI
    Cli(
        "convert-cli-missing-file", "convert_official", _cli(lambda tmp: tmp / "nope.pth"), "nope.pth.*does not exist"
    ),
    Cli("convert-cli-directory", "convert_official", _cli(lambda tmp: tmp), "is a directory"),
    Cli("convert-cli-empty-file", "convert_official", _cli(lambda tmp: _file(tmp, "e.pth", b"")), "e.pth.*is empty"),
    Cli("convert-cli-random-bytes", "convert_official", _cli(_random), "random.pth.*not a PyTorch checkpoint"),
    Cli("convert-cli-text-file", "convert_official", _cli(_text), "notes.pth.*not a PyTorch checkpoint"),
    Cli("convert-cli-truncated", "convert_official", _cli(_truncated), "truncated.pth"),
    Cli("convert-cli-not-axlstm", "convert_official", _cli(_not_axlstm), "missing the weight"),
    Cli(
        "convert-cli-output-is-a-file",
        "convert_official",
        _cli(lambda tmp: OFFICIAL_PTH, lambda tmp: _file(tmp, "taken.txt", b"mine")),
        "output_dir .*taken.txt.* is a file",
    ),
    Cli(
        "convert-cli-output-holds-files",
        "convert_official",
        _cli(lambda tmp: OFFICIAL_PTH, _full_dir),
        "already holds files \\(config.json\\); pass --overwrite",
    ),
    Cli("convert-cli-no-output", "convert_official", lambda ctx, tmp: [str(OFFICIAL_PTH)], "output_dir"),
]

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Bad inputs to the checkpoint converter (`python -m hf_axlstm.convert_official`, `convert_checkpoint`), the ONNX
exporter (`python -m hf_axlstm.export_onnx`, `export`) and the ONNX Runtime classes (`hf_axlstm.ort`). The exporter's
cases fail before any export runs (fast)."""

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


def _nan_weights(tmp: Path) -> Path:
    from hf_axlstm.convert_official import extract_state_dict, load_official_checkpoint

    state = extract_state_dict(load_official_checkpoint(OFFICIAL_PTH))
    state["blocks.1.layer.proj_up.weight"][0, 0] = float("nan")
    return _saved(tmp, {"model": state}, "diverged.pth")


def _int_weights(tmp: Path) -> Path:
    from hf_axlstm.convert_official import extract_state_dict, load_official_checkpoint

    state = extract_state_dict(load_official_checkpoint(OFFICIAL_PTH))
    state["cls_token"] = state["cls_token"].long()
    return _saved(tmp, {"model": state}, "ints.pth")


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


# ------------------------------------------------------------------------------------------- export_onnx helpers


def _export(**kwargs):
    def call(ctx, tmp):
        from hf_axlstm import export_onnx

        args = {"model_dir": ctx.classifier_dir, "output_dir": tmp / "onnx", "verbose": False, **kwargs}
        for key in ("model_dir", "output_dir"):
            if callable(args[key]):
                args[key] = args[key](ctx, tmp)
        return export_onnx.export(**args)

    return call


def _export_cli(*flags, model=lambda ctx, tmp: ctx.classifier_dir, out=lambda ctx, tmp: tmp / "onnx"):
    return lambda ctx, tmp: [str(model(ctx, tmp)), str(out(ctx, tmp)), *flags]


def _folder_with_config(text: str):
    def make(ctx, tmp):
        folder = tmp / "model"
        folder.mkdir(exist_ok=True)
        (folder / "config.json").write_text(text)
        return folder

    return make


def _config_only(ctx, tmp):  # a classifier's config.json without its weights
    folder = tmp / "no_weights"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text((ctx.classifier_dir / "config.json").read_text())
    return folder


def _taken(ctx, tmp):
    return _file(tmp, "taken.onnx", b"mine")


def _occupied(ctx, tmp):
    folder = tmp / "onnx"
    folder.mkdir(exist_ok=True)
    (folder / "model.onnx").write_bytes(b"the user's graph")
    return folder


# ----------------------------------------------------------------------------------------------- hf_axlstm.ort helpers


def _dummy_ort_folder(ctx, tmp, config=None) -> Path:
    """A folder with a stand-in model.onnx (the encoder's inputs and outputs, Identity inside) and a config.json: the
    ORT classes' own checks run before the graph does."""
    import onnx
    from onnx import TensorProto, helper

    folder = tmp / "ort"
    folder.mkdir(exist_ok=True)
    values = helper.make_tensor_value_info("input_values", TensorProto.FLOAT, ["batch", "frames", 80])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "frames"])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("last_hidden_state", "pooler_output")]
    nodes = [helper.make_node("Identity", ["input_values"], [o.name]) for o in outs]
    graph = helper.make_graph(nodes, "stand-in", [values, mask], outs)
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(folder / "model.onnx"))
    (folder / "config.json").write_text(config or (ctx.pretrain_dir / "config.json").read_text())
    return folder


def _ort_call(make_inputs):
    def call(ctx, tmp):
        from hf_axlstm.ort import ORTAxLSTMModel

        model = ORTAxLSTMModel.from_pretrained(_dummy_ort_folder(ctx, tmp))
        args, kwargs = make_inputs()
        return model(*args, **kwargs)

    return call


def _ort_load(folder_fn, **kwargs):
    def call(ctx, tmp):
        from hf_axlstm.ort import ORTAxLSTMModel

        return ORTAxLSTMModel.from_pretrained(folder_fn(ctx, tmp), **kwargs)

    return call


def _session(path_fn, **kwargs):
    def call(ctx, tmp):
        from hf_axlstm.ort import make_session

        return make_session(path_fn(ctx, tmp), **kwargs)

    return call


def _zeros(*shape, dtype="float32"):
    import numpy as np

    return np.zeros(shape, dtype=dtype)


def _left_padded():
    import numpy as np

    mask = np.ones((2, 30), dtype=np.int64)
    mask[1, 10:20] = 0  # a hole: real frames after padding
    return (_zeros(2, 30, 80),), {"attention_mask": mask}


def _no_config(ctx, tmp):
    folder = _dummy_ort_folder(ctx, tmp)
    (folder / "config.json").unlink()
    return folder


BAD_CONFIG = "{not json"
BERT_CONFIG = '{"model_type": "bert"}'


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
    Api("convert-api-nan-weights", _convert(_nan_weights), ValueError, r"proj_up.weight'\] hold NaN or Inf"),
    Api(
        "convert-api-integer-weights",
        _convert(_int_weights),
        ValueError,
        r"not floating point: \['cls_token'\] \(torch.int64\)",
    ),
    Cli("convert-cli-nan-weights", "convert_official", _cli(_nan_weights), "hold NaN or Inf values"),
    Cli(
        "convert-cli-output-parent-is-a-file",
        "convert_official",
        _cli(lambda tmp: OFFICIAL_PTH, lambda tmp: _file(tmp, "plain.txt", b"x") / "out"),
        "plain.txt",
    ),
    Cli(
        "convert-cli-push-to-a-bad-repo-id",
        "convert_official",
        lambda ctx, tmp: [str(OFFICIAL_PTH), str(tmp / "out"), "--push_to_hub", "bad id//x"],
        "was written, but the upload to 'bad id//x' failed",
    ),
    # export_onnx: the API (every case fails before an export starts)
    Api(
        "export-api-long-seconds-zero", _export(long_seconds=0), ValueError, r"long_seconds=0 is invalid.*0.1 and 600"
    ),
    Api("export-api-long-seconds-negative", _export(long_seconds=-5), ValueError, "long_seconds=-5 is invalid"),
    Api("export-api-long-seconds-nan", _export(long_seconds=float("nan")), ValueError, "long_seconds=nan is invalid"),
    Api("export-api-long-seconds-inf", _export(long_seconds=float("inf")), ValueError, "long_seconds=inf is invalid"),
    Api("export-api-long-seconds-huge", _export(long_seconds=1e6), ValueError, "long_seconds=1000000.0 is invalid"),
    Api("export-api-long-seconds-string", _export(long_seconds="10"), ValueError, "long_seconds='10' is invalid"),
    Api("export-api-long-seconds-bool", _export(long_seconds=True), ValueError, "long_seconds=True is invalid"),
    Api("export-api-opset-string", _export(opset="18"), ValueError, "opset='18' is invalid"),
    Api("export-api-opset-float", _export(opset=18.0), ValueError, "opset=18.0 is invalid"),
    Api("export-api-opset-bool", _export(opset=True), ValueError, "opset=True is invalid"),
    Api("export-api-opset-too-old", _export(opset=12), ValueError, "opset=12 is invalid; expected an integer >= 18"),
    Api("export-api-opset-too-new", _export(opset=99), ValueError, "opset=99 is invalid; the installed onnx .* up to"),
    Api("export-api-bad-task", _export(task="classification"), ValueError, "task='classification' is invalid"),
    Api("export-api-bad-quantize", _export(quantize="int4"), ValueError, "quantize='int4' is invalid"),
    Api("export-api-overwrite-not-bool", _export(overwrite="yes"), ValueError, "overwrite='yes' is invalid"),
    Api(
        "export-api-model-dir-none", _export(model_dir=lambda ctx, tmp: None), ValueError, "model_dir=None is invalid"
    ),
    Api(
        "export-api-model-dir-without-config",
        _export(model_dir=lambda ctx, tmp: tmp),
        ValueError,
        "has no config.json",
    ),
    Api(
        "export-api-model-dir-is-a-file",
        _export(model_dir=lambda ctx, tmp: _file(tmp, "model.bin", b"x")),
        ValueError,
        "model_dir .*model.bin' is a file",
    ),
    Api(
        "export-api-output-is-model-dir",
        _export(output_dir=lambda ctx, tmp: ctx.classifier_dir, overwrite=True),
        ValueError,
        "output_dir .* is model_dir; expected another folder",
    ),
    Api("export-api-output-is-a-file", _export(output_dir=_taken), ValueError, "taken.onnx' is a file"),
    Api(
        "export-api-output-holds-files",
        _export(output_dir=_occupied),
        ValueError,
        r"already holds files \(model.onnx\); pass --overwrite",
    ),
    Api(
        "export-api-unreadable-config",
        _export(model_dir=_folder_with_config(BAD_CONFIG)),
        ValueError,
        "has a config.json that cannot be read",
    ),
    Api(
        "export-api-not-axlstm",
        _export(model_dir=_folder_with_config(BERT_CONFIG)),
        ValueError,
        "holds a 'bert' model; expected an 'axlstm' or 'ssast' one",
    ),
    Api(
        "export-api-classifier-task-on-an-encoder",
        _export(model_dir=lambda ctx, tmp: ctx.pretrain_dir, task="audio-classification"),
        ValueError,
        "task='audio-classification' needs a classifier folder",
    ),
    Api(
        "export-api-config-without-weights",
        _export(model_dir=_config_only),
        ValueError,
        "no_weights': the model cannot be loaded",
    ),
    # export_onnx: the CLI
    Cli("export-cli-long-seconds-zero", "export_onnx", _export_cli("--long_seconds", "0"), "--long_seconds 0.0 is"),
    Cli("export-cli-long-seconds-nan", "export_onnx", _export_cli("--long_seconds", "nan"), "--long_seconds nan is"),
    Cli("export-cli-long-seconds-word", "export_onnx", _export_cli("--long_seconds", "ten"), "invalid float value"),
    Cli("export-cli-opset-too-old", "export_onnx", _export_cli("--opset", "11"), "--opset 11 is invalid"),
    Cli("export-cli-opset-too-new", "export_onnx", _export_cli("--opset", "99"), "opset=99 is invalid"),
    Cli("export-cli-bad-task", "export_onnx", _export_cli("--task", "speech"), "invalid choice: 'speech'"),
    Cli("export-cli-bad-quantize", "export_onnx", _export_cli("--quantize", "int4"), "invalid choice: 'int4'"),
    Cli("export-cli-no-config", "export_onnx", _export_cli(model=lambda ctx, tmp: tmp), "has no config.json"),
    Cli(
        "export-cli-output-is-model-dir",
        "export_onnx",
        _export_cli("--overwrite", out=lambda ctx, tmp: ctx.classifier_dir),
        "is model_dir",
    ),
    Cli("export-cli-output-holds-files", "export_onnx", _export_cli(out=_occupied), "pass --overwrite"),
    Cli("export-cli-output-is-a-file", "export_onnx", _export_cli(out=_taken), "taken.onnx' is a file"),
    Cli(
        "export-cli-unreadable-config",
        "export_onnx",
        _export_cli(model=_folder_with_config(BAD_CONFIG)),
        "cannot be read",
    ),
    Cli("export-cli-config-without-weights", "export_onnx", _export_cli(model=_config_only), "cannot be loaded"),
    Cli("export-cli-no-arguments", "export_onnx", lambda ctx, tmp: [], "the following arguments are required"),
    # hf_axlstm.ort
    Api("ort-session-missing-file", _session(lambda ctx, tmp: tmp / "nope.onnx"), ValueError, "nope.onnx' does not"),
    Api(
        "ort-session-a-folder", _session(lambda ctx, tmp: tmp), ValueError, "is a folder; expected the path of a .onnx"
    ),
    Api(
        "ort-session-not-onnx",
        _session(lambda ctx, tmp: _file(tmp, "junk.onnx", b"not a graph")),
        ValueError,
        "junk.onnx' cannot be loaded by ONNX Runtime",
    ),
    Api(
        "ort-session-threads-zero",
        _session(lambda ctx, tmp: tmp / "m.onnx", threads=0),
        ValueError,
        "threads=0 is invalid",
    ),
    Api(
        "ort-load-file-name-with-a-path",
        _ort_load(_dummy_ort_folder, file_name="../model.onnx"),
        ValueError,
        r"file_name='\.\./model.onnx' is invalid; expected the name of a .onnx file",
    ),
    Api(
        "ort-load-file-name-not-onnx",
        _ort_load(_dummy_ort_folder, file_name="config.json"),
        ValueError,
        "file_name='config.json' is invalid",
    ),
    Api("ort-load-folder-none", _ort_load(lambda ctx, tmp: None), ValueError, "folder=None is invalid"),
    Api("ort-load-no-config", _ort_load(_no_config), ValueError, "has no readable config.json"),
    Api(
        "ort-load-bert-config",
        _ort_load(lambda ctx, tmp: _dummy_ort_folder(ctx, tmp, BERT_CONFIG)),
        ValueError,
        "holds a 'bert' config",
    ),
    Api(
        "ort-load-int8-missing",
        _ort_load(_dummy_ort_folder, file_name="model_int8.onnx"),
        ValueError,
        "model_int8.onnx' does not exist",
    ),
    Api(
        "ort-call-empty-batch",
        _ort_call(lambda: ((_zeros(0, 20, 80),), {})),
        ValueError,
        r"shape \(0, 20, 80\); expected at least one clip",
    ),
    Api(
        "ort-call-zero-frames",
        _ort_call(lambda: ((_zeros(1, 0, 80),), {})),
        ValueError,
        r"shape \(1, 0, 80\); expected at least one clip of at least one frame",
    ),
    Api("ort-call-hole-in-mask", _ort_call(_left_padded), ValueError, r"rows \[1\] have real frames after padding"),
    Api(
        "ort-call-integer-input",
        _ort_call(lambda: ((_zeros(1, 20, 80, dtype="int64"),), {})),
        TypeError,
        "dtype int64; expected a floating-point",
    ),
    Api(
        "ort-call-unexpected-argument",
        _ort_call(lambda: ((_zeros(1, 20, 80),), {"labels": [0]})),
        TypeError,
        r"unexpected arguments \['labels'\]",
    ),
    Api(
        "ort-call-wrong-mel-bins",
        _ort_call(lambda: ((_zeros(1, 20, 64),), {})),
        ValueError,
        r"expected \(batch, frames, 80\)",
    ),
]

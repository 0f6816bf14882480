# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Convert a checkpoint saved by the AxLSTM authors' training script into a `save_pretrained` folder.

    python -m hf_axlstm.convert_official CHECKPOINT.pth OUTPUT_DIR [--overwrite] [--push_to_hub REPO_ID]
    python -m hf_axlstm.convert_official axlstm_tiny_200_16x4_4x256_fp16_r1 axlstm-tiny   # an authors' run folder

The authors publish one run folder per model on Google Drive (linked from their repository, SarthakYadav/
axlstm-official); give the folder as downloaded, or the `.pth` file in it.

The authors' script pickles the whole training state (`model`, `optimizer`, `epoch`, `scaler`, and `args`: an
`argparse.Namespace` holding an `ml_collections.ConfigDict`). Loading it with a plain `torch.load` would execute
whatever the pickle names. Here every pickle of the file (the zip format's `data.pkl`; the legacy format's magic number,
protocol, system info, object and storage keys) is read with an unpickler that only builds tensors and standard
containers and turns every other class into an inert placeholder, so no pickled code runs and ml_collections is not
needed; TorchScript archives (which `torch.load` would hand to `torch.jit.load`) and tar archives are refused. The
configuration is inferred from the weight shapes, every weight is mapped, and any missing or unexpected key fails.
The output folder must be new or empty unless `--overwrite` is given; the folder is written as a whole, in one step
that no reader sees half done (`hf_axlstm.folder_swap`: a staging folder beside it, swapped in with renames; with
`--overwrite` the user's other files in it are kept and the converter's own are all replaced). Staging folders left
by a killed run are removed by the next run on the same output folder.
"""

from __future__ import annotations

import argparse
import pickle
import re
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import torch

from . import folder_swap
from .configuration_axlstm import AxLSTMConfig
from .configuration_ssast import SSASTConfig
from .modeling_axlstm import AxLSTMForPreTraining, sincos_position_embedding
from .modeling_ssast import SSASTForPreTraining

# ---------------------------------------------------------------------------------------------- safe unpickling


class _Inert:
    """Stands in for any class the checkpoint names that is not a tensor or a standard container."""

    _qualname = "?"

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):  # dict-like subclasses are filled with SETITEMS
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value):  # list-like subclasses are filled with APPENDS
        self.__dict__.setdefault("items_list", []).append(value)

    def extend(self, values):
        for value in values:
            self.append(value)

    def __repr__(self) -> str:
        return f"<inert {self._qualname}>"


_ALLOWED = {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "dtype"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
}
_TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and (name.endswith("Storage") or name in _TORCH_DTYPES):
            return super().find_class(module, name)
        return type(name, (_Inert,), {"_qualname": f"{module}.{name}"})


def _safe_load(file, **kwargs):
    """`pickle.load` through the restricted unpickler: torch's legacy loader reads its leading pickles (magic number,
    protocol, system info) and its trailing storage-key list with `pickle_module.load`."""
    return _SafeUnpickler(file, **kwargs).load()


# What `torch.load(pickle_module=...)` uses: both its `Unpickler` (the main pickle, in both formats) and its `load`
# (every other pickle of the legacy format) are the restricted ones, so no byte of a checkpoint reaches `pickle.load`.
_safe_pickle = types.SimpleNamespace(
    Unpickler=_SafeUnpickler, load=_safe_load, UnpicklingError=pickle.UnpicklingError, __name__="hf_axlstm_safe_pickle"
)


def _check_format(path: Path) -> None:
    """Accept only the two formats `torch.save` writes today: a zip archive (not TorchScript, which `torch.load` would
    hand to `torch.jit.load`) or the legacy stream of pickles. Everything else gets a ValueError naming the file."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist.")
    if path.is_dir():
        raise ValueError(
            f"checkpoint {str(path)!r} is a directory; expected the .pth file the authors' training script saves "
            "(for a save_pretrained folder use from_pretrained)."
        )
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise ValueError(f"checkpoint {str(path)!r} is empty (0 bytes); expected a PyTorch .pth file.")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(n.split("/", 1)[-1] in ("constants.pkl", "code") or "/code/" in n for n in names):
            raise ValueError(
                f"checkpoint {str(path)!r} is a TorchScript archive (torch.jit.save), which carries code; expected a "
                "checkpoint saved with torch.save."
            )
        if not any(n.endswith("data.pkl") for n in names):
            raise ValueError(f"checkpoint {str(path)!r} is a zip archive without data.pkl; not a torch.save file.")
        return
    if head[:1] != b"\x80" or head[1:2] not in (b"\x02", b"\x03", b"\x04", b"\x05"):
        kind = "a tar archive (torch < 0.4 format, not supported)" if tarfile.is_tarfile(path) else "not a pickle"
        raise ValueError(f"checkpoint {str(path)!r} is not a PyTorch checkpoint ({kind}); expected a .pth file.")


def load_official_checkpoint(path: str | Path) -> dict:
    """Read an official checkpoint without executing pickled code. Returns the unpickled top-level object; any
    non-standard object in it (argparse Namespace, ConfigDict, ...) is an inert placeholder.

    Raises `FileNotFoundError` for a missing file and `ValueError` (naming the file) for anything that is not a
    readable `torch.save` checkpoint: empty, random or text bytes, a directory, a TorchScript or tar archive."""
    path = Path(path)
    _check_format(path)
    try:
        return torch.load(str(path), map_location="cpu", pickle_module=_safe_pickle, weights_only=False)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        zipfile.BadZipFile,
    ) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(
            f"checkpoint {str(path)!r} cannot be read as a PyTorch checkpoint ({type(err).__name__}: {first})."
        ) from None


def extract_state_dict(checkpoint) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint: its `model` / `state_dict` entry (or itself), without DDP prefixes."""
    state = checkpoint
    if isinstance(checkpoint, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in checkpoint and isinstance(checkpoint[key], dict):
                state = checkpoint[key]
                break
    if not isinstance(state, dict) or not state:
        found = sorted(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"checkpoint holds no state dict of tensors under 'model' / 'state_dict' (found: {found}).")
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise ValueError(f"checkpoint's state dict has entries that are not tensors: {not_tensors[:5]}.")
    not_float = sorted(str(k) for k, v in state.items() if not v.is_floating_point())
    if not_float:
        raise ValueError(
            f"checkpoint's state dict has weights that are not floating point: {not_float[:5]} "
            f"({state[not_float[0]].dtype}); an AxLSTM / SSAST checkpoint holds float weights only."
        )
    not_finite = sorted(str(k) for k, v in state.items() if not bool(torch.isfinite(v).all()))
    if not_finite:
        raise ValueError(
            f"checkpoint's weights {not_finite[:5]} hold NaN or Inf values (a diverged run?); converting them would "
            "give a model whose every output is NaN."
        )
    return {re.sub(r"^(module\.|_orig_mod\.)+", "", k): v for k, v in state.items()}


# -------------------------------------------------------------------------------------------- config inference


def _need(state: dict[str, torch.Tensor], key: str, ndim: int) -> torch.Tensor:
    if key not in state:
        raise ValueError(f"checkpoint is missing the weight {key!r}; is this an AxLSTM or SSAST checkpoint?")
    if state[key].ndim != ndim:
        raise ValueError(
            f"weight {key!r} has shape {tuple(state[key].shape)}; an AxLSTM / SSAST checkpoint has {ndim} dimensions "
            "there."
        )
    return state[key]


def is_ssast_checkpoint(state: dict[str, torch.Tensor]) -> bool:
    """Whether the weights are the authors' SSAST baseline (transformer blocks) rather than AxLSTM (mLSTM blocks)."""
    return any(re.match(r"blocks\.\d+\.attn\.", k) for k in state)


def _front_end(state: dict[str, torch.Tensor]) -> dict:
    """The config fields both architectures share, from the patch embedding, the blocks and the position table."""
    patch_w = _need(state, "patch_embed.proj.weight", 4)  # (D, 1, pt, pf)
    hidden = patch_w.shape[0]
    patch_size = [int(patch_w.shape[2]), int(patch_w.shape[3])]
    depth = len({int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))})
    if depth == 0:
        raise ValueError("checkpoint has no 'blocks.N.' weights; is this an AxLSTM or SSAST checkpoint?")
    use_cls = "cls_token" in state
    num_mel_bins, frames = 80, 200
    if "pos_embed" in state:
        # The table is a fixed function of the grid: find the (time x freq) grid that reproduces it.
        table = _need(state, "pos_embed", 3)[0, int(use_cls) :].float()  # (P, D)
        num_patches = table.shape[0]
        grid = None
        for num_freq in range(1, num_patches + 1):
            if num_patches % num_freq:
                continue
            ref = sincos_position_embedding(hidden, num_patches // num_freq, num_freq)
            if torch.allclose(ref, table, atol=1e-5):
                grid = (num_patches // num_freq, num_freq)
                break
        if grid is None:
            raise ValueError("pos_embed is not the 2-D sin-cos table of any patch grid; cannot infer the input size.")
        frames, num_mel_bins = grid[0] * patch_size[0], grid[1] * patch_size[1]
    return {
        "hidden_size": hidden,
        "num_hidden_layers": depth,
        "num_mel_bins": num_mel_bins,
        "frames_per_window": frames,
        "patch_size": patch_size,
        "use_cls_token": use_cls,
    }


def infer_config(state: dict[str, torch.Tensor], **overrides) -> AxLSTMConfig | SSASTConfig:
    """Infer the config from the official weight shapes (and check the fixed position table against it): an
    `SSASTConfig` for the authors' SSAST baseline, an `AxLSTMConfig` otherwise."""
    kwargs = _front_end(state)
    if is_ssast_checkpoint(state):
        qkv = _need(state, "blocks.0.attn.qkv_layer.weight", 2)  # (3D, D)
        mlp = _need(state, "blocks.0.mlp.layer1.weight", 2)  # (rD, D)
        # The authors' SSAST uses heads of 64 (3 / 6 / 12 for tiny / small / base); the weights do not record it.
        heads = overrides.pop("num_attention_heads", max(1, kwargs["hidden_size"] // 64))
        kwargs.update(
            num_attention_heads=heads,
            mlp_ratio=mlp.shape[0] // kwargs["hidden_size"],
            qkv_bias="blocks.0.attn.qkv_layer.bias" in state and qkv.shape[0] == 3 * kwargs["hidden_size"],
        )
        return SSASTConfig(**{**kwargs, **overrides})
    up = _need(state, "blocks.0.layer.proj_up.weight", 2)  # (2I, D)
    q = _need(state, "blocks.0.layer.q_proj.weight", 3)  # (I/bs, bs, bs)
    kwargs.update(
        expansion_factor=(up.shape[0] // 2) // kwargs["hidden_size"],
        qkv_block_size=int(q.shape[-1]),
        num_heads=int(_need(state, "blocks.0.layer.mlstm_cell.igate.weight", 2).shape[0]),
        conv_kernel_size=int(_need(state, "blocks.0.layer.conv1d.conv.weight", 3).shape[-1]),
    )
    return AxLSTMConfig(**{**kwargs, **overrides})


# ------------------------------------------------------------------------------------------------- weight mapping

_BLOCK_RENAMES = {
    "norm.weight": "norm.weight",
    "layer.learnable_skip": "mixer.learnable_skip",
    "layer.proj_up.weight": "mixer.proj_up.weight",
    "layer.proj_down.weight": "mixer.proj_down.weight",
    "layer.q_proj.weight": "mixer.q_proj.weight",
    "layer.k_proj.weight": "mixer.k_proj.weight",
    "layer.v_proj.weight": "mixer.v_proj.weight",
    "layer.conv1d.conv.weight": "mixer.conv.conv.weight",
    "layer.conv1d.conv.bias": "mixer.conv.conv.bias",
    "layer.mlstm_cell.outnorm.weight": "mixer.out_norm.weight",
}
_SSAST_BLOCK_RENAMES = {
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "attn.qkv_layer.weight": "attention.qkv.weight",
    "attn.qkv_layer.bias": "attention.qkv.bias",
    "attn.proj_layer.weight": "attention.proj.weight",
    "attn.proj_layer.bias": "attention.proj.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
    "mlp.layer1.weight": "mlp.fc1.weight",
    "mlp.layer1.bias": "mlp.fc1.bias",
    "mlp.layer2.weight": "mlp.fc2.weight",
    "mlp.layer2.bias": "mlp.fc2.bias",
}
# `{base}` is the encoder's attribute: `axlstm` or `ssast`.
_TOP_RENAMES = {
    "cls_token": "{base}.embeddings.cls_token",
    "mask_token": "{base}.embeddings.mask_token",
    "patch_embed.proj.weight": "{base}.embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "{base}.embeddings.patch_embeddings.projection.bias",
    "encoder_norm.weight": "{base}.layernorm.weight",
    "encoder_norm.bias": "{base}.layernorm.bias",
    "pred.0.weight": "head.dense.weight",
    "pred.0.bias": "head.dense.bias",
    "pred.2.weight": "head.decoder.weight",
    "pred.2.bias": "head.decoder.bias",
}


def convert_state_dict(state: dict[str, torch.Tensor], config: AxLSTMConfig | SSASTConfig) -> dict[str, torch.Tensor]:
    """Map official weight names to `AxLSTMForPreTraining` / `SSASTForPreTraining` names. Raises on any key it does
    not know."""
    ssast = isinstance(config, SSASTConfig)
    base = "ssast" if ssast else "axlstm"
    block_renames = _SSAST_BLOCK_RENAMES if ssast else _BLOCK_RENAMES
    out: dict[str, torch.Tensor] = {}
    gates: dict[int, dict[str, torch.Tensor]] = {}
    unexpected = []
    for key, value in state.items():
        if key == "pos_embed":
            continue  # fixed table, recomputed by the model (checked in infer_config)
        if key in _TOP_RENAMES:
            out[_TOP_RENAMES[key].format(base=base)] = value
            continue
        m = re.match(r"blocks\.(\d+)\.(.+)$", key)
        if m is None:
            unexpected.append(key)
            continue
        idx, rest = int(m.group(1)), m.group(2)
        if rest in block_renames:
            out[f"{base}.layers.{idx}.{block_renames[rest]}"] = value
        elif not ssast and (g := re.match(r"layer\.mlstm_cell\.(igate|fgate)\.(weight|bias)$", rest)) is not None:
            gates.setdefault(idx, {})[f"{g.group(1)}.{g.group(2)}"] = value
        else:
            unexpected.append(key)
    if unexpected:
        raise ValueError(f"checkpoint has weights the converter does not know: {sorted(unexpected)}")
    for idx, g in gates.items():
        missing = {"igate.weight", "igate.bias", "fgate.weight", "fgate.bias"} - set(g)
        if missing:
            raise ValueError(f"block {idx} is missing gate weights {sorted(missing)}")
        # One linear for both gates: input-gate rows first, then forget-gate rows.
        out[f"axlstm.layers.{idx}.mixer.gate_proj.weight"] = torch.cat([g["igate.weight"], g["fgate.weight"]])
        out[f"axlstm.layers.{idx}.mixer.gate_proj.bias"] = torch.cat([g["igate.bias"], g["fgate.bias"]])
    return {k: v.detach().clone().float().contiguous() for k, v in out.items()}


_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


def checkpoint_in_folder(folder: str | Path) -> Path:
    """The checkpoint file of an authors' run folder as downloaded from their Google Drive (for example
    `axlstm_tiny_200_16x4_4x256_fp16_r1/`): its only `.pth` / `.pt` / `.ckpt` file, searched recursively, or, where
    the run saved several, the one whose name carries the highest number (the last epoch), with a note naming it.
    A path that is not a folder is returned as it is."""
    folder = Path(folder)
    if not folder.is_dir():
        return folder
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in _CHECKPOINT_SUFFIXES)
    if not found:
        raise ValueError(
            f"checkpoint {str(folder)!r} is a directory without a checkpoint file ({', '.join(_CHECKPOINT_SUFFIXES)}) "
            "in it; expected the authors' run folder or the .pth file their training script saves (for a "
            "save_pretrained folder use from_pretrained)."
        )
    if len(found) == 1:
        return found[0]

    def number(path: Path) -> tuple[int, str]:
        digits = re.findall(r"\d+", path.stem)
        return (int(digits[-1]) if digits else -1, str(path))

    chosen = max(found, key=number)
    print(f"note: {str(folder)!r} holds {len(found)} checkpoints; converting {str(chosen)!r} (the highest-numbered).")
    return chosen


def convert_checkpoint(checkpoint_path: str | Path, **config_overrides) -> AxLSTMForPreTraining | SSASTForPreTraining:
    """Load an official checkpoint (a `.pth` file, or an authors' run folder holding one: `checkpoint_in_folder`)
    into an `AxLSTMForPreTraining`, or an `SSASTForPreTraining` when its keys are the SSAST baseline's (every weight
    checked)."""
    state = extract_state_dict(load_official_checkpoint(checkpoint_in_folder(checkpoint_path)))
    config = infer_config(state, **config_overrides)
    weights = convert_state_dict(state, config)
    model = (SSASTForPreTraining if isinstance(config, SSASTConfig) else AxLSTMForPreTraining)(config)
    expected = set(model.state_dict())
    missing = sorted(expected - set(weights))
    has_head = any(k.startswith("head.") for k in weights)
    if not has_head:
        missing = [k for k in missing if not k.startswith("head.")]
    unexpected = sorted(set(weights) - expected)
    if missing or unexpected:
        raise ValueError(f"weight mapping failed: missing {missing}, unexpected {unexpected}")
    for key, value in weights.items():
        target = model.state_dict()[key]
        if target.shape != value.shape:
            raise ValueError(f"weight {key!r} has shape {tuple(value.shape)}; the model expects {tuple(target.shape)}")
    model.load_state_dict(weights, strict=has_head)
    if not has_head:
        print("note: the checkpoint has no pretraining head (pred.*); the reconstruction head is left at random init.")
    return model.eval()


# What the converter writes into OUTPUT_DIR (save_pretrained's weights, possibly sharded, the configs and the remote
# code files): an overwrite replaces all of them and keeps every other file.
_WRITTEN = re.compile(
    r"^(config\.json|preprocessor_config\.json|generation_config\.json|model\.safetensors(\.index\.json)?"
    r"|model-\d+-of-\d+\.safetensors|(configuration|modeling)_(axlstm|ssast)\.py|feature_extraction_axlstm\.py"
    r"|kernels_axlstm\.py|mixers_axlstm\.py|validation_axlstm\.py|audio_rules_axlstm\.py)$"
)


def _write_folder(model: AxLSTMForPreTraining, out: Path, overwrite: bool) -> None:
    """Save the model and feature extractor as `out`, the whole set in one step (`hf_axlstm.folder_swap`): written
    into a staging folder beside `out`, then renamed into place (with `overwrite`, swapped with the old folder, whose
    files the converter does not write are kept). A failure or a kill never leaves a half-written or mixed folder."""
    import shutil

    from .feature_extraction_axlstm import AxLSTMFeatureExtractor

    for line in folder_swap.clean_stale(out):
        print(line)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"output_dir {str(out)!r} already holds files; pass --overwrite to replace them.")
    stage = folder_swap.make_stage(out)
    try:
        model.save_pretrained(stage)
        AxLSTMFeatureExtractor().save_pretrained(stage)
        folder_swap.publish(stage, out, owned=lambda name: _WRITTEN.match(name) is not None)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hf_axlstm.convert_official",
        description="Convert an AxLSTM checkpoint saved by the authors' training script into a save_pretrained folder.",
    )
    parser.add_argument(
        "checkpoint", help="the authors' .pth checkpoint, or their run folder as downloaded (its checkpoint is found)"
    )
    parser.add_argument(
        "output_dir", help="folder to write (config.json, model.safetensors, preprocessor_config.json)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into output_dir even if it already holds files (the converter's files are replaced)",
    )
    parser.add_argument(
        "--push_to_hub", metavar="REPO_ID", default=None, help="also upload the folder to this Hub repo"
    )
    args = parser.parse_args(argv)

    def error(message: str) -> int:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2

    checkpoint = Path(args.checkpoint)
    out = Path(args.output_dir)
    try:
        for line in folder_swap.clean_stale(out):  # first: it may restore a folder a killed run left mid-swap
            print(line)
    except OSError as err:
        return error(f"cannot tidy the staging folders beside output_dir {args.output_dir!r}: {err}")
    if out.exists() and not out.is_dir():
        return error(f"output_dir {args.output_dir!r} is a file; expected a folder (new or empty)")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        names = ", ".join(sorted(p.name for p in out.iterdir())[:4])
        return error(
            f"output_dir {args.output_dir!r} already holds files ({names}); pass --overwrite to replace the "
            "converter's files in it, or choose a new folder"
        )
    try:
        model = convert_checkpoint(checkpoint)
        _write_folder(model, out, args.overwrite)
    except (ValueError, OSError) as err:  # OSError: FileNotFoundError, a read-only or full output folder, ...
        return error(str(err))
    n_params = sum(p.numel() for p in model.base_model.parameters())
    print(
        f"converted {args.checkpoint} -> {out} ({model.config.model_type}, hidden_size={model.config.hidden_size}, "
        f"layers={model.config.num_hidden_layers}, encoder parameters={n_params:,})"
    )
    if args.push_to_hub:
        from .feature_extraction_axlstm import AxLSTMFeatureExtractor

        try:
            model.push_to_hub(args.push_to_hub)
            AxLSTMFeatureExtractor().push_to_hub(args.push_to_hub)
        except Exception as err:  # noqa: BLE001 - offline, no token, a bad repo id: one clear line
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            return error(f"{out} was written, but the upload to {args.push_to_hub!r} failed ({first})")
        print(f"uploaded to https://huggingface.co/{args.push_to_hub}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

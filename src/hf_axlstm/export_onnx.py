# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Export an AxLSTM (or SSAST) folder to ONNX, validated against PyTorch, optionally with a dynamic int8 copy.

    python -m hf_axlstm.export_onnx MODEL_DIR OUTPUT_DIR [--task feature-extraction | audio-classification]
        [--opset N] [--quantize int8] [--overwrite]

`OUTPUT_DIR` receives `model.onnx` (float32), `config.json` and `preprocessor_config.json`, and with `--quantize int8`
also `model_int8.onnx` (ONNX Runtime's dynamic int8 quantisation of the projections, see `quantize_int8`). The graph takes
`input_values` (batch, frames, num_mel_bins) float32 and `attention_mask` (batch, frames) int64, both dynamic in batch
and frames, and returns `last_hidden_state` (batch, 1 + patches, hidden) and `pooler_output` (batch, hidden) for
`feature-extraction`, or `logits` (batch, num_labels) for `audio-classification` (the default when the folder's
architecture is a `*ForAudioClassification`).

One graph serves every length: the mLSTM runs in its chunkwise form without a loop over the chunks
(`kernels_axlstm.mlstm_chunkwise_graph`), so the cost grows linearly with the clip, and the tokens are padded once to
whole chunks. Every export is checked with ONNX Runtime against the PyTorch model on a padded batch and a long clip;
the worst relative error is printed and an fp32 export above 1e-4 fails. Nothing is written unless the export and the
check pass, and an output folder that holds files is only replaced with `--overwrite` (the user's other files stay).

Needs the `onnx` extra: `pip install "hf-axlstm[onnx]"` (onnx, onnxscript, onnxruntime). `hf_axlstm.ort` runs the
exported folders, also in `pipeline("audio-classification")`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

TASKS = ("feature-extraction", "audio-classification")
QUANTIZATIONS = ("int8",)
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model_int8.onnx"
FP32_TOLERANCE = 1e-4
# The exporter's own default opset: the torch 2.13 dynamo exporter translates to opset 18 and converts to others.
DEFAULT_OPSET = 18
MIN_OPSET = 18


def require_onnx() -> None:
    """Raise an ImportError naming the extra when onnx, onnxscript or onnxruntime is missing."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed; "
            'install the extra with `pip install "hf-axlstm[onnx]"`.'
        )


def default_task(config) -> str:
    """`audio-classification` for a folder saved from a `*ForAudioClassification`, else `feature-extraction`."""
    architectures = getattr(config, "architectures", None) or []
    return (
        "audio-classification"
        if any(a.endswith("ForAudioClassification") for a in architectures)
        else ("feature-extraction")
    )


class _ExportWrapper(torch.nn.Module):
    """(input_values, attention_mask) -> the task's outputs as a plain tuple, in the order of `output_names`."""

    def __init__(self, model: torch.nn.Module, task: str):
        super().__init__()
        self.model = model
        self.task = task

    @property
    def output_names(self) -> list[str]:
        return ["logits"] if self.task == "audio-classification" else ["last_hidden_state", "pooler_output"]

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor):
        outputs = self.model(input_values=input_values, attention_mask=attention_mask, return_dict=True)
        if self.task == "audio-classification":
            return (outputs.logits,)
        return outputs.last_hidden_state, outputs.pooler_output


def load_for_export(model_dir: str | Path, task: str | None = None):
    """(model in eval mode, feature extractor, task) from a local folder; no code from the folder runs."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

    import hf_axlstm  # noqa: F401 - registers the Auto classes

    from .feature_extraction_axlstm import AxLSTMFeatureExtractor

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ValueError(
            f"model_dir {str(model_dir)!r} has no config.json; expected a folder written by save_pretrained "
            "(e.g. by examples/pretrain.py, examples/finetune.py or python -m hf_axlstm.convert_official)."
        )
    config = AutoConfig.from_pretrained(model_dir)
    if config.model_type not in ("axlstm", "ssast"):
        raise ValueError(
            f"model_dir {str(model_dir)!r} holds a {config.model_type!r} model; expected an 'axlstm' or 'ssast' one."
        )
    if task is None:
        task = default_task(config)
    if task not in TASKS:
        raise ValueError(f"task={task!r} is invalid; expected one of {list(TASKS)}.")
    if task == "audio-classification" and default_task(config) != task:
        raise ValueError(
            f"task='audio-classification' needs a classifier folder, but {str(model_dir)!r} holds "
            f"{config.architectures}; fine-tune one with examples/finetune.py or export --task feature-extraction."
        )
    auto = AutoModelForAudioClassification if task == "audio-classification" else AutoModel
    model = auto.from_pretrained(model_dir, dtype=torch.float32).eval()
    if (model_dir / "preprocessor_config.json").is_file():
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    else:
        warnings.warn(
            f"{model_dir} has no preprocessor_config.json; the exported folder gets the default AxLSTMFeatureExtractor.",
            stacklevel=2,
        )
        feature_extractor = AxLSTMFeatureExtractor(num_mel_bins=config.num_mel_bins)
    return model, feature_extractor, task


@contextlib.contextmanager
def _quiet():
    """The exporter prints progress lines and logs warnings about unrelated optional packages (torchvision)."""
    # (The root logger too: onnxruntime.quantization advises pre-processing through it, which quantize_int8 does.)
    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", None)
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_graph(model: torch.nn.Module, task: str, path: str | Path, opset: int = DEFAULT_OPSET) -> None:
    """Write the ONNX graph of `model` for `task` to `path` (one file, weights inside)."""
    require_onnx()
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset={opset!r} is invalid; expected an integer >= {MIN_OPSET} (LayerNormalization etc.).")
    config = model.config
    wrapper = _ExportWrapper(model, task).eval()
    frames = 2 * config.frames_per_window
    example = (
        torch.randn(2, frames, config.num_mel_bins),
        torch.ones(2, frames, dtype=torch.long),
    )
    dynamic = torch.export.Dim.DYNAMIC
    shapes = {"input_values": {0: dynamic, 1: dynamic}, "attention_mask": {0: dynamic, 1: dynamic}}
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            example,
            input_names=["input_values", "attention_mask"],
            output_names=wrapper.output_names,
            dynamic_shapes=shapes,
            opset_version=opset,
            dynamo=True,
            optimize=True,
            verify=False,
        )
    proto = program.model_proto  # a fresh proto on every access
    _name_dynamic_axes(proto, task)
    import onnx

    onnx.save_model(proto, str(path))


def _name_dynamic_axes(proto, task: str) -> None:
    """Rename the exporter's symbols (s0, s1, ...) for batch and frames everywhere in the graph, so the inputs read
    (batch, frames, mels) and the outputs (batch, sequence, hidden) / (batch, ...)."""
    import re

    dims = proto.graph.input[0].type.tensor_type.shape.dim  # input_values: (batch, frames, mels)
    rename = {dims[0].dim_param: "batch", dims[1].dim_param: "frames"}
    rename = {old: new for old, new in rename.items() if old}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, rename)) + r")\b") if rename else None

    def visit(values):
        for value in values:
            for dim in value.type.tensor_type.shape.dim:
                if pattern is not None and dim.dim_param:
                    dim.dim_param = pattern.sub(lambda m: rename[m.group(1)], dim.dim_param)

    def walk(graph):
        visit(graph.input)
        visit(graph.output)
        visit(graph.value_info)
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.g.node:
                    walk(attribute.g)

    walk(proto.graph)
    if task == "feature-extraction":
        for value in proto.graph.output:
            if value.name == "last_hidden_state":
                value.type.tensor_type.shape.dim[1].dim_param = "sequence"  # 1 + 5 * ceil(frames / 4) tokens


def quantize_int8(source: str | Path, target: str | Path) -> list[str]:
    """ONNX Runtime's dynamic int8 quantisation of the projections (the MatMuls with a weight matrix: weights int8
    per tensor, activations quantised per call); returns the quantised node names. Kept float32: the gate products
    (they feed exp(), and are a tiny share of the work), the mLSTM cell's products of two activations, and the batched
    16-wide q / v tiles. Per-channel weights were worse here: on the demo corpus's encoder the pooled embedding moved
    by 19% and the linear probe lost 13 points, against 0.6% and no loss per tensor (benchmarks/int8_accuracy.py)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        # The graph computes its folded weights (transposes, the mixer's derived q/k and gate weights) from the
        # parameters; ONNX Runtime's basic optimisation level (standard ONNX ops only) folds them into constants
        # first, so that the quantiser sees the weight matrices.
        folded = Path(tmp) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        proto = onnx.load(str(folded))
        matrices = {init.name for init in proto.graph.initializer if len(init.dims) == 2}
        nodes = [n.name for n in proto.graph.node if n.op_type == "MatMul" and n.input[1] in matrices]
        with _quiet():
            quantize_dynamic(
                str(folded),
                str(target),
                weight_type=QuantType.QInt8,
                per_channel=False,
                op_types_to_quantize=["MatMul"],
                nodes_to_quantize=nodes,
            )
    return nodes


def validation_inputs(config, long_seconds: float = 10.0, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, input_values, attention_mask) cases the exporter checks: a padded batch of three lengths (one not a
    multiple of the patch height) and one long clip."""
    rng = np.random.default_rng(seed)
    mels = config.num_mel_bins
    frames = config.frames_per_window
    lengths = [frames, frames * 2 // 3 + 1, 7]
    batch = rng.standard_normal((3, frames, mels)).astype(np.float32)
    mask = np.zeros((3, frames), dtype=np.int64)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        batch[row, length:] = 0.0
    long_frames = int(round(long_seconds * 100))
    long_clip = rng.standard_normal((1, long_frames, mels)).astype(np.float32)
    return [
        (f"padded batch {lengths} frames", batch, mask),
        (f"{long_seconds:g} s clip", long_clip, np.ones((1, long_frames), dtype=np.int64)),
    ]


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| (the scale of a whole output, so near-zero entries don't dominate)."""
    scale = float(np.abs(expected).max()) or 1.0
    return float(np.abs(actual.astype(np.float64) - expected).max()) / scale


def validate(
    model: torch.nn.Module, task: str, onnx_path: str | Path, cases=None, threads: int | None = None
) -> dict[str, float]:
    """Worst relative error of each output of the ONNX graph against `model`, over `cases`
    (`validation_inputs` by default). Padded rows are compared on their real tokens only."""
    from .ort import make_session

    session = make_session(onnx_path, threads=threads)
    names = [o.name for o in session.get_outputs()]
    cases = validation_inputs(model.config) if cases is None else cases
    worst = dict.fromkeys(names, 0.0)
    for _, values, mask in cases:
        ort_out = dict(zip(names, session.run(None, {"input_values": values, "attention_mask": mask})))
        with torch.inference_mode():
            ref = model(torch.from_numpy(values), attention_mask=torch.from_numpy(mask), return_dict=True)
        for name in names:
            expected = getattr(ref, name).float().numpy()
            actual = ort_out[name]
            if actual.shape != expected.shape:
                raise RuntimeError(f"ONNX output {name} has shape {actual.shape}; PyTorch gives {expected.shape}.")
            if name == "last_hidden_state":
                keep = ref.token_mask.numpy()[..., None]
                actual, expected = actual * keep, expected * keep
            worst[name] = max(worst[name], relative_error(actual, expected))
    return worst


def export(
    model_dir: str | Path,
    output_dir: str | Path,
    task: str | None = None,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
    overwrite: bool = False,
    long_seconds: float = 10.0,
    verbose: bool = True,
) -> dict:
    """Export, validate and write `output_dir` (see the module docstring). Returns a report: task, files, export
    seconds, and the worst relative error of each output (and of the int8 copy)."""
    require_onnx()

    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r} is invalid; expected one of {list(QUANTIZATIONS)} or None.")
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir {str(out)!r} is a file; expected a folder (new, empty, or with --overwrite).")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        names = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise ValueError(
            f"output_dir {str(out)!r} already holds files ({names}); pass --overwrite to replace the exported "
            "files (other files are kept), or choose a new folder."
        )
    say = print if verbose else (lambda *a, **k: None)
    model, feature_extractor, task = load_for_export(model_dir, task)
    report = {"task": task, "model_type": model.config.model_type}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        say(f"exporting {model_dir} ({model.config.model_type}, {task}) to ONNX (a few minutes for 12 blocks) ...")
        start = time.perf_counter()
        export_graph(model, task, tmp / ONNX_FILE, opset=opset)
        report["export_seconds"] = round(time.perf_counter() - start, 1)
        cases = validation_inputs(model.config, long_seconds)
        errors = validate(model, task, tmp / ONNX_FILE, cases)
        report["max_relative_error"] = errors
        for name, error in errors.items():
            say(f"  {name}: worst relative error vs PyTorch {error:.2e} ({'; '.join(c[0] for c in cases)})")
        worst = max(errors.values())
        if worst > FP32_TOLERANCE:
            raise RuntimeError(
                f"the ONNX graph differs from PyTorch by a relative {worst:.2e} (> {FP32_TOLERANCE:g}); nothing was "
                f"written. Please report this with the folder's config.json."
            )
        files = [ONNX_FILE]
        if quantize == "int8":
            quantize_int8(tmp / ONNX_FILE, tmp / ONNX_INT8_FILE)
            int8_errors = validate(model, task, tmp / ONNX_INT8_FILE, cases)
            report["int8_max_relative_error"] = int8_errors
            for name, error in int8_errors.items():
                say(f"  int8 {name}: worst relative error vs PyTorch fp32 {error:.2e}")
            files.append(ONNX_INT8_FILE)
        model.config.save_pretrained(tmp)
        feature_extractor.save_pretrained(tmp)
        _write_export_info(tmp, report, opset)
        files += ["config.json", "preprocessor_config.json", "onnx_export.json"]
        report["files"] = files
        if not out.exists():
            tmp.rename(out)
        else:
            for item in tmp.iterdir():  # --overwrite: replace what the exporter writes, keep the user's other files
                target = out / item.name
                if target.is_dir():
                    shutil.rmtree(target)
                item.replace(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"wrote {', '.join(report['files'])} to {out}")
    return report


def _write_export_info(folder: Path, report: dict, opset: int) -> None:
    import onnx
    import onnxruntime

    info = dict(
        report, opset=opset, torch=torch.__version__, onnx=onnx.__version__, onnxruntime=onnxruntime.__version__
    )
    (folder / "onnx_export.json").write_text(json.dumps(info, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hf_axlstm.export_onnx",
        description="Export an AxLSTM / SSAST folder to ONNX (validated against PyTorch with ONNX Runtime).",
    )
    parser.add_argument("model_dir", help="a save_pretrained folder (encoder, pretraining or classifier)")
    parser.add_argument("output_dir", help="the folder to write model.onnx, config.json and preprocessor_config.json")
    parser.add_argument("--task", choices=TASKS, default=None, help="default: from the folder's architecture")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None, help="also write model_int8.onnx")
    parser.add_argument("--long_seconds", type=float, default=10.0, help="length of the long validation clip")
    parser.add_argument("--overwrite", action="store_true", help="replace the exported files in output_dir")
    args = parser.parse_args(argv)
    if args.opset < MIN_OPSET:
        parser.error(f"--opset {args.opset} is invalid; expected an integer >= {MIN_OPSET}.")
    if not 0.1 <= args.long_seconds <= 600:
        parser.error(f"--long_seconds {args.long_seconds} is invalid; expected a length between 0.1 and 600 s.")
    try:
        export(
            args.model_dir, args.output_dir, args.task, args.opset, args.quantize, args.overwrite, args.long_seconds
        )
    except (ValueError, ImportError, OSError) as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())

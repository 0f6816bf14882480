# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Export an AxLSTM (or SSAST) folder to ONNX, validated against PyTorch, optionally with a dynamic int8 copy.

    python -m hf_axlstm.export_onnx MODEL_DIR OUTPUT_DIR [--task feature-extraction | audio-classification]
        [--opset N] [--quantize int8] [--long_seconds S] [--overwrite]

`OUTPUT_DIR` receives `model.onnx` (float32), `config.json`, `preprocessor_config.json` and `onnx_export.json` (the
validation report and versions), and with `--quantize int8`
also `model_int8.onnx` (ONNX Runtime's dynamic int8 quantisation of the projections, see `quantize_int8`). The graph takes
`input_values` (batch, frames, num_mel_bins) float32 and `attention_mask` (batch, frames) int64, both dynamic in batch
and frames, and returns `last_hidden_state` (batch, 1 + patches, hidden) and `pooler_output` (batch, hidden) for
`feature-extraction`, or `logits` (batch, num_labels) for `audio-classification` (the default when the folder's
architecture is a `*ForAudioClassification`).

One graph serves every length: the mLSTM runs in its chunkwise form without a loop over the chunks
(`kernels_axlstm.mlstm_chunkwise_graph`), so the cost grows linearly with the clip, and the tokens are padded once to
whole chunks.

Validation (`check_export`): nothing is written unless the graph passes every check, and a failure names the check.
1. Graph: every Log in the graph takes an argument with a provably positive lower bound (`graph_problems`), so no
   input can make it log(0) = -inf (the old Log(Sigmoid(x)) of the forget gates did, for x <= -16.6).
2. Inputs: ONNX Runtime against the PyTorch model on the user's weights, over a padded batch, a long clip, digital
   silence, a loud clip and an impulse train (`validation_inputs`); every output of both must be finite, and the worst
   relative error of the fp32 graph must be <= 1e-4. The range of gate pre-activations these inputs reached is
   reported.
3. Gates at their extremes, whatever the inputs reach: the same comparison on a copy of the model and of the graph
   whose gate biases are set per head to forget gates of -40, -17, 3 and +40 and input gates of -100, -20, 0 and +20
   (rolled across the blocks), for AxLSTM models.
A non-finite value anywhere, in either output, fails validation (it is never counted as an error of 0).

Writing: an output folder that holds files is only replaced with `--overwrite`. The whole set of files the exporter
writes is replaced in one step (`hf_axlstm.folder_swap`): the new set is written into a staging folder beside
OUTPUT_DIR and swapped in with renames, the user's other files are kept, and exported files this run does not write
(an old `model_int8.onnx`) are removed. Staging folders left by killed runs are cleaned up by the next run.

Needs the `onnx` extra: `pip install "hf-axlstm[onnx]"` (onnx, onnxscript, onnxruntime). `hf_axlstm.ort` runs the
exported folders, also in `pipeline("audio-classification")`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import logging
import math
import numbers
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from . import folder_swap

TASKS = ("feature-extraction", "audio-classification")
QUANTIZATIONS = ("int8",)
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model_int8.onnx"
FP32_TOLERANCE = 1e-4
# The exporter's own default opset: the torch 2.13 dynamo exporter translates to opset 18 and converts to others.
DEFAULT_OPSET = 18
MIN_OPSET = 18
MIN_LONG_SECONDS, MAX_LONG_SECONDS = 0.1, 600.0
# The files the exporter writes into OUTPUT_DIR (with the remote code files of the configs, REMOTE_CODE_FILES): an
# overwrite replaces all of them and keeps every other file.
EXPORTED_FILES = frozenset({ONNX_FILE, ONNX_INT8_FILE, "config.json", "preprocessor_config.json", "onnx_export.json"})
REMOTE_CODE_FILES = frozenset(
    {
        "configuration_axlstm.py",
        "configuration_ssast.py",
        "feature_extraction_axlstm.py",
        "modeling_axlstm.py",
        "modeling_ssast.py",
        "kernels_axlstm.py",
        "mixers_axlstm.py",
        "validation_axlstm.py",
        "audio_rules_axlstm.py",
    }
)
# The gate biases of the extreme-gate check (`check_export`, step 3), per head, rolled by one head per block.
STRESS_FORGET_GATES = (-40.0, -17.0, 3.0, 40.0)
STRESS_INPUT_GATES = (-100.0, -20.0, 0.0, 20.0)


class ExportError(RuntimeError):
    """The export failed (torch's exporter, or a check of the graph); nothing was written."""


class ExportValidationError(ExportError):
    """The exported graph failed a check (`check_export`); nothing was written."""


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
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError, KeyError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"model_dir {str(model_dir)!r} has a config.json that cannot be read ({first}).") from None
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
    try:
        model = auto.from_pretrained(model_dir, dtype=torch.float32).eval()
    except (OSError, ValueError, RuntimeError) as err:  # no weights, torn weights, shapes that do not fit
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"model_dir {str(model_dir)!r}: the model cannot be loaded ({first}).") from None
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


@contextlib.contextmanager
def _exporter_errors():
    try:
        yield
    except Exception as err:  # noqa: BLE001 - torch.export / onnxscript raise many classes: one clear failure
        first = (str(err).strip().splitlines() or [""])[0]
        raise ExportError(f"torch's ONNX exporter failed ({type(err).__name__}: {first})") from err


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
    with _quiet(), torch.no_grad(), _exporter_errors():
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

    # (The folded copy sits beside `target`: in the exporter's staging folder, which a killed run's successor removes.)
    with tempfile.TemporaryDirectory(prefix=".tmp-quantize-", dir=Path(target).parent) as tmp:
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
    multiple of the patch height), one long clip, and three clips that drive the blocks away from typical input (the
    gates' pre-activations are linear in the normalised tokens, whose direction these change): digital silence (the
    feature extractor gives zeros), a loud clip (values of +-30, as an unnormalised log-mel) and an impulse train."""
    rng = np.random.default_rng(seed)
    mels = config.num_mel_bins
    frames = config.frames_per_window
    lengths = [frames, frames * 2 // 3 + 1, 7]
    batch = rng.standard_normal((3, frames, mels)).astype(np.float32)
    mask = np.zeros((3, frames), dtype=np.int64)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        batch[row, length:] = 0.0
    long_frames = max(1, int(round(long_seconds * 100)))
    long_clip = rng.standard_normal((1, long_frames, mels)).astype(np.float32)
    ones = np.ones((1, frames), dtype=np.int64)
    impulses = np.full((1, frames, mels), -3.0, dtype=np.float32)
    impulses[:, ::17] = 12.0
    return [
        (f"padded batch {lengths} frames", batch, mask),
        (f"{long_seconds:g} s clip", long_clip, np.ones((1, long_frames), dtype=np.int64)),
        ("silence", np.zeros((1, frames, mels), dtype=np.float32), ones),
        ("loud clip", (30.0 * np.tanh(rng.standard_normal((1, frames, mels)))).astype(np.float32), ones),
        ("impulse train", impulses, ones),
    ]


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| (the scale of a whole output, so near-zero entries don't dominate);
    inf when either holds a NaN or an infinity (never 0: `max(0.0, nan)` is 0.0)."""
    if not (np.isfinite(actual).all() and np.isfinite(expected).all()):
        return math.inf
    scale = float(np.abs(expected).max(initial=0.0)) or 1.0
    return float(np.abs(actual.astype(np.float64) - expected).max(initial=0.0)) / scale


def _session(onnx_path, threads=None):
    """An ONNX Runtime session, or ExportValidationError when ONNX Runtime cannot load the graph."""
    from .ort import make_session

    try:
        return make_session(onnx_path, threads=threads)
    except Exception as err:  # noqa: BLE001 - ORT's own exception classes: one clear failure
        raise ExportValidationError(
            f"ONNX Runtime cannot load the exported graph ({type(err).__name__}: {str(err).splitlines()[0]})"
        ) from None


@contextlib.contextmanager
def _gate_range(model: torch.nn.Module, seen: dict):
    """Record the smallest and largest input / forget gate pre-activation the AxLSTM blocks compute meanwhile."""
    if getattr(model.config, "model_type", None) != "axlstm":
        yield
        return
    from . import mixers_axlstm, modeling_axlstm

    original = mixers_axlstm.run_cell  # the mLSTM cell call of every mixer implementation (as modeling_axlstm's)

    def recording(q, k, v, igate, fgate, *args, **kwargs):
        for name, gate in (("input_gate", igate), ("forget_gate", fgate)):
            low, high = seen.get(name, (math.inf, -math.inf))
            seen[name] = (min(low, float(gate.min())), max(high, float(gate.max())))
        return original(q, k, v, igate, fgate, *args, **kwargs)

    mixers_axlstm.run_cell = modeling_axlstm.run_cell = recording
    try:
        yield
    finally:
        mixers_axlstm.run_cell = modeling_axlstm.run_cell = original


def validate(
    model: torch.nn.Module,
    task: str,
    onnx_path: str | Path,
    cases=None,
    threads: int | None = None,
    gate_range: dict | None = None,
) -> dict[str, float]:
    """Worst relative error of each output of the ONNX graph against `model`, over `cases`
    (`validation_inputs` by default). Padded rows are compared on their real tokens only. Raises
    ExportValidationError when an output of either is not finite, naming the output and the case. `gate_range`, a
    dict, receives the range of gate pre-activations the PyTorch model computed (AxLSTM)."""
    session = _session(onnx_path, threads)
    names = [o.name for o in session.get_outputs()]
    cases = validation_inputs(model.config) if cases is None else cases
    worst = dict.fromkeys(names, 0.0)
    for case, values, mask in cases:
        ort_out = dict(zip(names, session.run(None, {"input_values": values, "attention_mask": mask})))
        with torch.inference_mode(), _gate_range(model, gate_range if gate_range is not None else {}):
            ref = model(torch.from_numpy(values), attention_mask=torch.from_numpy(mask), return_dict=True)
        for name in names:
            expected = getattr(ref, name).float().numpy()
            actual = ort_out[name]
            if actual.shape != expected.shape:
                raise ExportValidationError(
                    f"ONNX output {name} has shape {actual.shape}; PyTorch gives {expected.shape} ({case})."
                )
            if name == "last_hidden_state":
                keep = ref.token_mask.numpy()[..., None].astype(bool)
                actual, expected = np.where(keep, actual, 0.0), np.where(keep, expected, 0.0)
            if not np.isfinite(expected).all():
                raise ExportValidationError(
                    f"the PyTorch model's own {name} holds {np.size(expected) - np.isfinite(expected).sum()} NaN / "
                    f"Inf values on the {case}; its weights are not finite or overflow, so there is nothing to "
                    "export."
                )
            if not np.isfinite(actual).all():
                raise ExportValidationError(
                    f"the ONNX graph's {name} holds {np.size(actual) - np.isfinite(actual).sum()} NaN / Inf values "
                    f"on the {case}, where PyTorch's are finite."
                )
            worst[name] = max(worst[name], relative_error(actual, expected))
    return worst


# Ops whose output is >= 0 for any input, and ops that pass their first input's bound through.
_NONNEGATIVE_OPS = {"Exp", "Abs", "Sigmoid", "Relu", "Softplus", "Sqrt", "Softmax", "ReduceSumSquare"}
_SHAPE_OPS = {
    "Cast",
    "Identity",
    "Reshape",
    "Expand",
    "Unsqueeze",
    "Squeeze",
    "Transpose",
    "Slice",
    "Gather",
    "Flatten",
    "Tile",
}


def graph_problems(proto) -> list[str]:
    """The graph-level check: every Log must take an argument with a provably positive lower bound, from constants
    and ops with known ranges (Exp, Abs, ... >= 0; Add and Max of bounds; Clip's min). Independent of inputs and
    weights. Returns one line per Log that fails (empty: the graph passes)."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    producer = {}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        for out in node.output:
            producer[out] = node
    memo: dict[str, float] = {}

    def lower(name: str, depth: int = 0) -> float:
        if name in memo:
            return memo[name]
        bound = -math.inf
        if name in constants:
            values = np.asarray(constants[name], dtype=np.float64)
            bound = float(values.min()) if values.size and np.isfinite(values).all() else -math.inf
        elif name in producer and depth < 64:
            node = producer[name]
            inputs = [lower(i, depth + 1) if i else -math.inf for i in node.input]
            if node.op_type in _NONNEGATIVE_OPS:
                bound = 0.0
            elif node.op_type in _SHAPE_OPS or node.op_type == "Concat":
                bound = min(inputs[:1] if node.op_type != "Concat" else inputs)
            elif node.op_type == "Add":
                bound = inputs[0] + inputs[1]
            elif node.op_type == "Max":
                bound = max(inputs)
            elif node.op_type == "Clip" and len(inputs) > 1:
                bound = inputs[1]
            elif node.op_type == "Mul" and min(inputs) >= 0:
                bound = inputs[0] * inputs[1]
        memo[name] = bound
        return bound

    problems = []
    for node in proto.graph.node:
        if node.op_type == "Log" and not lower(node.input[0]) > 0:
            source = producer.get(node.input[0])
            problems.append(
                f"Log node {node.name!r} takes {node.input[0]!r} (from {source.op_type if source else 'an input'}), "
                "which can be 0 or negative: log would give -inf / NaN"
            )
    return problems


def _stressed(model: torch.nn.Module, onnx_path: Path, target: Path):
    """(a copy of `model`, a copy of its graph at `target`) with the gate biases set to the extremes of
    STRESS_FORGET_GATES / STRESS_INPUT_GATES; None when the model has no mLSTM gates (SSAST)."""
    import onnx
    from onnx import numpy_helper

    if model.config.model_type != "axlstm":
        return None
    stressed = copy.deepcopy(model)
    biases = {}
    with torch.no_grad():
        for name, param in stressed.named_parameters():
            match = re.search(r"layers\.(\d+)\.mixer\.gate_proj\.bias$", name)
            if match is None:
                continue
            heads = param.shape[0] // 2
            roll = int(match.group(1))
            forget = [STRESS_FORGET_GATES[(h + roll) % len(STRESS_FORGET_GATES)] for h in range(heads)]
            inputs = [STRESS_INPUT_GATES[(h + roll) % len(STRESS_INPUT_GATES)] for h in range(heads)]
            param.copy_(torch.tensor(inputs + forget))
            biases[name] = param.detach().numpy().copy()
    proto = onnx.load(str(onnx_path))
    found = 0
    for init in proto.graph.initializer:
        key = next((name for name in biases if init.name == name or init.name.endswith("." + name)), None)
        if key is not None:
            init.CopyFrom(numpy_helper.from_array(biases[key].astype(np.float32), init.name))
            found += 1
    if found != len(biases):
        raise ExportValidationError(
            f"the exported graph holds {found} of the model's {len(biases)} gate biases as named initializers, so the "
            "extreme-gate check cannot run; please report this with your torch and onnxscript versions."
        )
    onnx.save_model(proto, str(target))
    return stressed


def check_export(
    model: torch.nn.Module, task: str, onnx_path: str | Path, cases, work_dir: str | Path, say=lambda *a: None
) -> dict:
    """Run the three checks of the module docstring on the fp32 graph at `onnx_path`; raise ExportValidationError
    naming the first that fails. Returns the report entries: `max_relative_error` (per output), `gate_range` (the
    gate pre-activations the inputs reached) and `extreme_gates_max_relative_error`."""
    import onnx

    onnx_path = Path(onnx_path)
    problems = graph_problems(onnx.load(str(onnx_path), load_external_data=False))
    if problems:
        raise ExportValidationError("the ONNX graph failed the graph check: " + "; ".join(problems) + ".")
    seen: dict = {}
    errors = validate(model, task, onnx_path, cases, gate_range=seen)
    report = {"max_relative_error": errors, "gate_range": {k: [round(v, 3) for v in r] for k, r in seen.items()}}
    for name, error in errors.items():
        say(f"  {name}: worst relative error vs PyTorch {error:.2e} ({'; '.join(c[0] for c in cases)})")
    for name, (low, high) in seen.items():
        say(f"  {name} pre-activations reached [{low:.3g}, {high:.3g}]")
    _require_close(errors, "")
    stressed_path = Path(work_dir) / "extreme_gates.onnx"
    try:
        stressed = _stressed(model, onnx_path, stressed_path)
        if stressed is not None:
            extreme = validate(stressed, task, stressed_path, cases[:1])
            report["extreme_gates_max_relative_error"] = extreme
            say(
                f"  with gates at the extremes (forget {list(STRESS_FORGET_GATES)}, input {list(STRESS_INPUT_GATES)}):"
                f" worst relative error {max(extreme.values()):.2e}"
            )
            _require_close(extreme, " with its gates at the extremes")
    finally:
        stressed_path.unlink(missing_ok=True)
    return report


def _require_close(errors: dict[str, float], where: str) -> None:
    worst = max(errors.values())
    if not worst <= FP32_TOLERANCE:  # (also catches NaN)
        raise ExportValidationError(
            f"the ONNX graph differs from PyTorch{where} by a relative {worst:.2e} (> {FP32_TOLERANCE:g})."
        )


def _check_arguments(model_dir, output_dir, task, opset, quantize, overwrite, long_seconds, verbose) -> None:
    """ValueError / TypeError naming the first bad argument of `export`."""
    for name, value in (("model_dir", model_dir), ("output_dir", output_dir)):
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise ValueError(f"{name}={value!r} is invalid; expected a folder path.")
    if task is not None and task not in TASKS:
        raise ValueError(f"task={task!r} is invalid; expected one of {list(TASKS)} or None.")
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or opset < MIN_OPSET:
        raise ValueError(f"opset={opset!r} is invalid; expected an integer >= {MIN_OPSET} (LayerNormalization etc.).")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r} is invalid; expected one of {list(QUANTIZATIONS)} or None.")
    for name, value in (("overwrite", overwrite), ("verbose", verbose)):
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r} is invalid; expected True or False.")
    if (
        isinstance(long_seconds, bool)
        or not isinstance(long_seconds, numbers.Real)
        or not MIN_LONG_SECONDS <= long_seconds <= MAX_LONG_SECONDS
    ):
        raise ValueError(
            f"long_seconds={long_seconds!r} is invalid; expected the length of the long validation clip in seconds, "
            f"between {MIN_LONG_SECONDS:g} and {MAX_LONG_SECONDS:g}."
        )
    model_dir, out = Path(model_dir), Path(output_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise ValueError(f"model_dir {str(model_dir)!r} is a file; expected a save_pretrained folder.")
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir {str(out)!r} is a file; expected a folder (new, empty, or with --overwrite).")
    if out.resolve() == model_dir.resolve():
        raise ValueError(
            f"output_dir {str(out)!r} is model_dir; expected another folder (e.g. {str(model_dir / 'onnx')!r}), so "
            "the exported config.json never replaces the model's."
        )


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
    seconds, the worst relative error of each output (and of the int8 copy), the range of gate pre-activations the
    validation inputs reached and the error with the gates at their extremes. Raises ValueError for bad arguments
    and ExportValidationError (a RuntimeError) when the graph fails a check; nothing is written then."""
    _check_arguments(model_dir, output_dir, task, opset, quantize, overwrite, long_seconds, verbose)
    require_onnx()
    import onnx

    if opset > onnx.defs.onnx_opset_version():
        raise ValueError(
            f"opset={opset!r} is invalid; the installed onnx {onnx.__version__} knows opsets up to "
            f"{onnx.defs.onnx_opset_version()}."
        )
    out = Path(output_dir)
    say = print if verbose else (lambda *a, **k: None)
    for line in folder_swap.clean_stale(out):  # first: it may restore a folder a killed run left mid-swap
        say(line)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        names = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise ValueError(
            f"output_dir {str(out)!r} already holds files ({names}); pass --overwrite to replace the exported "
            "files (other files are kept), or choose a new folder."
        )
    model, feature_extractor, task = load_for_export(model_dir, task)
    report = {"task": task, "model_type": model.config.model_type}
    stage = folder_swap.make_stage(out)
    try:
        say(f"exporting {model_dir} ({model.config.model_type}, {task}) to ONNX (a few minutes for 12 blocks) ...")
        start = time.perf_counter()
        export_graph(model, task, stage / ONNX_FILE, opset=opset)
        report["export_seconds"] = round(time.perf_counter() - start, 1)
        cases = validation_inputs(model.config, long_seconds)
        report.update(check_export(model, task, stage / ONNX_FILE, cases, stage, say))
        files = [ONNX_FILE]
        if quantize == "int8":
            quantize_int8(stage / ONNX_FILE, stage / ONNX_INT8_FILE)
            int8_errors = validate(model, task, stage / ONNX_INT8_FILE, cases)
            report["int8_max_relative_error"] = int8_errors
            for name, error in int8_errors.items():
                say(f"  int8 {name}: worst relative error vs PyTorch fp32 {error:.2e}")
            files.append(ONNX_INT8_FILE)
        model.config.save_pretrained(stage)
        feature_extractor.save_pretrained(stage)
        _write_export_info(stage, report, opset)
        files += ["config.json", "preprocessor_config.json", "onnx_export.json"]
        report["files"] = files
        folder_swap.publish(stage, out, owned=lambda name: name in EXPORTED_FILES or name in REMOTE_CODE_FILES)
    except ExportError as err:
        raise type(err)(
            f"{err} Nothing was written to {str(out)!r}. Please report this with the folder's config.json."
        ) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
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
    parser.add_argument(
        "--long_seconds",
        type=float,
        default=10.0,
        help=f"length of the long validation clip ({MIN_LONG_SECONDS:g} to {MAX_LONG_SECONDS:g} s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the exported files in output_dir")
    args = parser.parse_args(argv)
    if args.opset < MIN_OPSET:
        parser.error(f"--opset {args.opset} is invalid; expected an integer >= {MIN_OPSET}.")
    if not MIN_LONG_SECONDS <= args.long_seconds <= MAX_LONG_SECONDS:  # (also NaN)
        parser.error(
            f"--long_seconds {args.long_seconds} is invalid; expected a length between {MIN_LONG_SECONDS:g} and "
            f"{MAX_LONG_SECONDS:g} s."
        )
    try:
        export(
            args.model_dir, args.output_dir, args.task, args.opset, args.quantize, args.overwrite, args.long_seconds
        )
    except (ValueError, ImportError, OSError, ExportError) as err:
        parser.error(" ".join(str(err).split()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

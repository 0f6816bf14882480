# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Run folders written by `python -m hf_axlstm.export_onnx` with ONNX Runtime, the transformers way.

    from transformers import AutoFeatureExtractor, pipeline
    from hf_axlstm.ort import ORTAxLSTMForAudioClassification

    model = ORTAxLSTMForAudioClassification.from_pretrained("exported/")   # or file_name="model_int8.onnx"
    classifier = pipeline("audio-classification", model=model,
                          feature_extractor=AutoFeatureExtractor.from_pretrained("exported/"))
    print(classifier("clip.wav"))                                           # any rate and channel count

The classes take the feature extractor's tensors (`input_values`, `attention_mask`) and return the same output
classes as the PyTorch models (`logits`; `last_hidden_state` and `pooler_output`), as torch tensors, so
`pipeline("audio-classification")` and code written for the PyTorch models work unchanged. They are not
`PreTrainedModel`s: `optimum-onnx` (0.1.0), the library that would provide `ORTModelForAudioClassification`, requires
transformers < 4.58 and this package needs transformers 5, so the small runtime lives here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from transformers import AudioClassificationPipeline, AutoConfig
from transformers.modeling_outputs import SequenceClassifierOutput

from .modeling_axlstm import AxLSTMModelOutput

DEFAULT_FILE = "model.onnx"


def make_session(path: str | Path, threads: int | None = None, spinning: bool = True, arena: bool = True):
    """An ONNX Runtime CPU session with all graph optimisations. `threads`: intra-op threads (default: ORT's choice,
    one per physical core). `spinning=False` stops ORT's idle threads from busy-waiting after a call (they would take
    the cores from other work, e.g. a PyTorch model timed next to it); `arena=False` returns each call's memory to the
    system (for measuring a call's peak)."""
    import onnxruntime as ort

    if isinstance(threads, bool) or not (threads is None or (isinstance(threads, int) and threads >= 1)):
        raise ValueError(f"threads={threads!r} is invalid; expected a positive integer or None.")
    if not isinstance(path, (str, os.PathLike)) or not Path(path).is_file():
        what = "is a folder" if isinstance(path, (str, os.PathLike)) and Path(path).is_dir() else "does not exist"
        raise ValueError(f"ONNX model {str(path)!r} {what}; expected the path of a .onnx file.")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = arena
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - ORT's own classes (InvalidProtobuf, InvalidGraph, ...): one clear error
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(
            f"ONNX model {str(path)!r} cannot be loaded by ONNX Runtime ({first}); expected a graph written by "
            "`python -m hf_axlstm.export_onnx`."
        ) from None


class _ORTModelBase:
    """An exported graph with the calling convention of the PyTorch model it came from."""

    output_names: tuple[str, ...] = ()
    main_input_name = "input_values"

    def __init__(self, session, config, path: Path | None = None):
        outputs = tuple(o.name for o in session.get_outputs())
        if outputs != self.output_names:
            raise ValueError(
                f"the ONNX graph {path} returns {list(outputs)}; {type(self).__name__} expects {list(self.output_names)} "
                "(export it with the matching --task)."
            )
        self.session = session
        self.config = config
        self.path = path
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    @classmethod
    def from_pretrained(
        cls, folder: str | os.PathLike, file_name: str = DEFAULT_FILE, threads: int | None = None, revision=None
    ):
        """Load `folder/file_name` (written by `hf_axlstm.export_onnx`) and the folder's config.json. `folder` may be
        a Hub repo id: only the ONNX file and the JSON configs are downloaded (no code is fetched or run)."""
        import hf_axlstm  # noqa: F401 - registers the configs

        if not isinstance(folder, (str, os.PathLike)) or not str(folder).strip():
            raise ValueError(f"folder={folder!r} is invalid; expected a folder path or a Hub repo id.")
        if not isinstance(file_name, str) or Path(file_name).name != file_name or not file_name.endswith(".onnx"):
            raise ValueError(
                f"file_name={file_name!r} is invalid; expected the name of a .onnx file in the folder (e.g. "
                f"{DEFAULT_FILE!r} or 'model_int8.onnx'), without a path."
            )
        if not Path(folder).expanduser().is_dir() and not str(folder).startswith((".", "/", "~")):
            from huggingface_hub import snapshot_download

            try:
                folder = snapshot_download(str(folder), revision=revision, allow_patterns=[file_name, "*.json"])
            except Exception as err:  # noqa: BLE001 - offline, unknown repo, bad id: one clear message
                raise ValueError(
                    f"{str(folder)!r} is not a local folder and could not be fetched from the Hub ({err}); expected "
                    "a folder written by `python -m hf_axlstm.export_onnx` or the id of a Hub repo holding one."
                ) from err
        folder = Path(folder).expanduser()
        path = folder / file_name
        if not path.is_file():
            raise ValueError(
                f"{str(path)!r} does not exist; expected a folder written by `python -m hf_axlstm.export_onnx` "
                f"holding {file_name!r}."
            )
        try:
            config = AutoConfig.from_pretrained(folder)
        except (OSError, ValueError, KeyError, TypeError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(
                f"{str(folder)!r} has no readable config.json ({first}); expected a folder written by "
                "`python -m hf_axlstm.export_onnx`."
            ) from None
        if config.model_type not in ("axlstm", "ssast"):
            raise ValueError(
                f"{str(folder)!r} holds a {config.model_type!r} config; expected an exported 'axlstm' or 'ssast' model."
            )
        return cls(make_session(path, threads), config, path)

    # transformers' Pipeline moves the model to its device and reads these.
    def to(self, device=None, *args, **kwargs):
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"device={device!r} is not supported: this ONNX Runtime model runs on the CPU.")
        return self

    def eval(self):
        return self

    def can_generate(self) -> bool:
        return False

    def _run(self, input_values, attention_mask=None) -> dict[str, torch.Tensor]:
        values = input_values.detach().cpu().numpy() if isinstance(input_values, torch.Tensor) else input_values
        values = np.asarray(values)
        if values.ndim == 4 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 3 or values.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"input_values has shape {tuple(values.shape)}; expected (batch, frames, {self.config.num_mel_bins})."
            )
        if not np.issubdtype(values.dtype, np.floating):
            raise TypeError(f"input_values has dtype {values.dtype}; expected a floating-point log-mel spectrogram.")
        if values.shape[0] == 0 or values.shape[1] == 0:
            raise ValueError(
                f"input_values has shape {tuple(values.shape)}; expected at least one clip of at least one frame."
            )
        if attention_mask is None:
            mask = np.ones(values.shape[:2], dtype=np.int64)
        else:
            mask = (
                attention_mask.detach().cpu().numpy() if isinstance(attention_mask, torch.Tensor) else attention_mask
            )
            mask = np.asarray(mask)
            if mask.shape != values.shape[:2]:
                raise ValueError(
                    f"attention_mask has shape {tuple(mask.shape)}; expected (batch, frames) = {values.shape[:2]}."
                )
            if not np.isin(mask, (0, 1)).all() or not mask[:, 0].all():
                raise ValueError(
                    "attention_mask must hold 0/1 values with at least the first frame of each clip real."
                )
            if (np.diff(mask.astype(np.int64), axis=1) > 0).any():
                rows = np.flatnonzero((np.diff(mask.astype(np.int64), axis=1) > 0).any(axis=1)).tolist()
                raise ValueError(
                    f"attention_mask rows {rows[:5]} have real frames after padding; expected each clip's real frames "
                    "first and its padding after them (right padding, as the feature extractor writes it)."
                )
        if not np.isfinite(values).all():
            raise ValueError("input_values holds NaN or Inf; expected a finite log-mel spectrogram.")
        feeds = {
            "input_values": np.ascontiguousarray(values, dtype=np.float32),
            "attention_mask": mask.astype(np.int64),
        }
        return {name: torch.from_numpy(out) for name, out in zip(self.output_names, self.session.run(None, feeds))}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path})"


class ORTAxLSTMModel(_ORTModelBase):
    """The exported encoder (`--task feature-extraction`): `last_hidden_state` (batch, 1 + patches, hidden) and
    `pooler_output` (batch, hidden), as `AxLSTMModelOutput` (its `token_mask` is rebuilt from the attention mask)."""

    output_names = ("last_hidden_state", "pooler_output")

    def __call__(self, input_values, attention_mask=None, **unused) -> AxLSTMModelOutput:
        if unused:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(unused)}.")
        out = self._run(input_values, attention_mask)
        return AxLSTMModelOutput(last_hidden_state=out["last_hidden_state"], pooler_output=out["pooler_output"])


class ORTAxLSTMForAudioClassification(_ORTModelBase):
    """The exported classifier (`--task audio-classification`): `logits` (batch, num_labels) as a
    `SequenceClassifierOutput`; `pipeline("audio-classification", model=this, feature_extractor=...)` accepts it."""

    output_names = ("logits",)

    def __call__(self, input_values, attention_mask=None, **unused) -> SequenceClassifierOutput:
        if unused:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(unused)}.")
        return SequenceClassifierOutput(logits=self._run(input_values, attention_mask)["logits"])


class ORTAudioClassificationPipeline(AudioClassificationPipeline):
    """transformers' audio-classification pipeline, minus its check that the model is one of transformers' own
    classes (which logs an error for an ONNX Runtime model, though the pipeline works):
    `pipeline("audio-classification", model=ort_model, feature_extractor=..., pipeline_class=ORTAudioClassificationPipeline)`.
    """

    def check_model_type(self, supported_models):
        if not isinstance(self.model, _ORTModelBase):
            super().check_model_type(supported_models)


__all__ = ["ORTAudioClassificationPipeline", "ORTAxLSTMForAudioClassification", "ORTAxLSTMModel", "make_session"]

# ruff: noqa: E402  (the imports below need the `onnx` extra, checked by importorskip first)
"""ONNX export (`hf_axlstm.export_onnx`) and the ONNX Runtime models (`hf_axlstm.ort`): parity with PyTorch over
dynamic batch and length, padding, int8, the pipeline, and the exporter's refusals. Skipped without the `onnx` extra;
CI installs it. The exports use a small 2-block model (chunk 16, so short clips span several mLSTM chunks)."""

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from transformers import AutoFeatureExtractor, pipeline

from hf_axlstm import (
    AxLSTMConfig,
    AxLSTMFeatureExtractor,
    AxLSTMForAudioClassification,
    AxLSTMModel,
    export_onnx,
)
from hf_axlstm.configuration_ssast import SSASTConfig
from hf_axlstm.modeling_ssast import SSASTModel
from hf_axlstm.ort import (
    ORTAudioClassificationPipeline,
    ORTAxLSTMForAudioClassification,
    ORTAxLSTMModel,
    make_session,
)

pytestmark = pytest.mark.slow

LABELS = {0: "tone", 1: "noise", 2: "click"}


def small_config(cls=AxLSTMConfig, **overrides):
    kwargs = {"hidden_size": 64, "num_hidden_layers": 2, "chunk_size": 16}
    if cls is SSASTConfig:
        kwargs = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    kwargs.update(overrides)
    return cls(**kwargs)


@pytest.fixture(scope="module")
def encoder_export(tmp_path_factory):
    torch.manual_seed(0)
    model = AxLSTMModel(small_config()).eval()
    source = tmp_path_factory.mktemp("encoder")
    model.save_pretrained(source)
    AxLSTMFeatureExtractor().save_pretrained(source)
    out = tmp_path_factory.mktemp("encoder_onnx") / "exported"
    report = export_onnx.export(source, out, verbose=False)
    return model, out, report


@pytest.fixture(scope="module")
def classifier_export(tmp_path_factory):
    torch.manual_seed(1)
    model = AxLSTMForAudioClassification(small_config(id2label=dict(LABELS))).eval()
    with torch.no_grad():  # a decisive head, so the labels are a real comparison
        model.classifier.weight.normal_(0, 1.0)
    source = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(source)
    AxLSTMFeatureExtractor().save_pretrained(source)
    out = tmp_path_factory.mktemp("classifier_onnx") / "exported"
    report = export_onnx.main([str(source), str(out), "--quantize", "int8"])
    assert report == 0
    return model, source, out


def _run(session, values, mask=None):
    mask = np.ones(values.shape[:2], dtype=np.int64) if mask is None else mask
    return session.run(None, {"input_values": values.astype(np.float32), "attention_mask": mask})


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_export_writes_the_folder_with_named_dynamic_io(encoder_export):
    _, out, report = encoder_export
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "config.json", "preprocessor_config.json", "onnx_export.json"} <= names
    assert names - {"model.onnx", "config.json", "preprocessor_config.json", "onnx_export.json"} <= {
        "configuration_axlstm.py",  # the config's remote code, as save_pretrained writes it
        "feature_extraction_axlstm.py",  # the extractor's, with its relative imports
        "audio_rules_axlstm.py",
        "validation_axlstm.py",
    }
    assert report["task"] == "feature-extraction"
    info = json.loads((out / "onnx_export.json").read_text())
    assert info["task"] == "feature-extraction" and info["opset"] == export_onnx.DEFAULT_OPSET
    proto = onnx.load(out / "model.onnx")
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.input}
    assert dims == {"input_values": ["batch", "frames", 80], "attention_mask": ["batch", "frames"]}
    outputs = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.output}
    assert outputs == {"last_hidden_state": ["batch", "sequence", 64], "pooler_output": ["batch", 64]}
    # One graph for every length: no loop, and no operator that a length could unroll.
    assert not {n.op_type for n in proto.graph.node} & {"Loop", "Scan", "If"}
    assert report["max_relative_error"]["last_hidden_state"] < 1e-5


@pytest.mark.parametrize(
    "batch,frames",
    [(1, 1), (1, 10), (2, 60), (1, 200), (3, 203), (2, 1000), (1, 6000)],
    ids=["1-frame", "0.1s", "0.6s-batch2", "2s", "odd-frames-batch3", "10s-batch2", "60s"],
)
def test_encoder_matches_pytorch_at_every_length(encoder_export, batch, frames):
    model, out, _ = encoder_export
    session = make_session(out / "model.onnx", threads=1)
    values = np.random.default_rng(frames).standard_normal((batch, frames, 80)).astype(np.float32)
    hidden, pooled = _run(session, values)
    with torch.inference_mode():
        ref = model(torch.from_numpy(values))
    assert hidden.shape == tuple(ref.last_hidden_state.shape) == (batch, 1 + 5 * -(-frames // 4), 64)
    assert _rel(hidden, ref.last_hidden_state.numpy()) < 1e-5
    assert _rel(pooled, ref.pooler_output.numpy()) < 1e-5


def test_padded_clips_get_their_unpadded_outputs(encoder_export):
    _, out, _ = encoder_export
    session = make_session(out / "model.onnx", threads=1)
    rng = np.random.default_rng(0)
    lengths = [300, 121, 7]
    clips = [rng.standard_normal((n, 80)).astype(np.float32) for n in lengths]
    batch = np.zeros((3, 300, 80), np.float32)
    mask = np.zeros((3, 300), np.int64)
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
        mask[row, : len(clip)] = 1
    hidden, pooled = _run(session, batch, mask)
    for row, clip in enumerate(clips):
        alone_hidden, alone_pooled = _run(session, clip[None])
        tokens = alone_hidden.shape[1]
        assert _rel(hidden[row, :tokens], alone_hidden[0]) < 1e-5
        assert _rel(pooled[row], alone_pooled[0]) < 1e-5


def test_ort_encoder_class_returns_the_pytorch_outputs(encoder_export):
    model, out, _ = encoder_export
    ort_model = ORTAxLSTMModel.from_pretrained(out)
    extractor = AutoFeatureExtractor.from_pretrained(out)
    audio = [np.random.default_rng(3).standard_normal(n).astype(np.float32) * 0.1 for n in (32000, 9000)]
    inputs = extractor(audio, sampling_rate=16000, return_tensors="pt", padding=True)
    got = ort_model(**inputs)
    with torch.inference_mode():
        ref = model(**inputs)
    keep = ref.token_mask.unsqueeze(-1)
    assert isinstance(got.last_hidden_state, torch.Tensor)
    assert torch.allclose(got.last_hidden_state * keep, ref.last_hidden_state * keep, atol=1e-5)
    assert torch.allclose(got.pooler_output, ref.pooler_output, atol=1e-5)


def test_classifier_export_and_its_int8_copy(classifier_export):
    model, _, out = classifier_export
    assert (out / "model_int8.onnx").is_file()
    proto = onnx.load(out / "model_int8.onnx")
    ops = {n.op_type for n in proto.graph.node}
    assert "DynamicQuantizeLinear" in ops and ops & {"MatMulInteger", "DynamicQuantizeMatMul"}
    assert (out / "model_int8.onnx").stat().st_size < 0.6 * (out / "model.onnx").stat().st_size
    values = np.random.default_rng(5).standard_normal((16, 200, 80)).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(values)).logits.numpy()
    (fp32,) = _run(make_session(out / "model.onnx"), values)
    (int8,) = _run(make_session(out / "model_int8.onnx"), values)
    assert _rel(fp32, ref) < 1e-5
    assert 0 < _rel(int8, ref) < 0.2  # quantised: close, not equal
    assert (int8.argmax(-1) == ref.argmax(-1)).mean() >= 0.8


def test_pipeline_on_the_exported_classifier_gives_the_pytorch_labels(classifier_export):
    _, source, out = classifier_export
    extractor = AutoFeatureExtractor.from_pretrained(out)
    exported = pipeline(
        "audio-classification", model=ORTAxLSTMForAudioClassification.from_pretrained(out), feature_extractor=extractor
    )
    reference = pipeline("audio-classification", model=str(source))
    quiet = pipeline(
        "audio-classification",
        model=ORTAxLSTMForAudioClassification.from_pretrained(out),
        feature_extractor=extractor,
        pipeline_class=ORTAudioClassificationPipeline,
    )
    rng = np.random.default_rng(7)
    clips = [np.sin(2 * np.pi * 440 * np.arange(32000) / 16000).astype(np.float32), rng.standard_normal(12345) * 0.3]
    for clip in clips:
        got, want = exported(clip.astype(np.float32)), reference(clip.astype(np.float32))
        assert [r["label"] for r in got] == [r["label"] for r in want] == [r["label"] for r in quiet(clip)]
        for g, w in zip(got, want):
            assert g["score"] == pytest.approx(w["score"], abs=1e-5)


def test_ort_models_refuse_the_wrong_graph_and_bad_input(encoder_export, classifier_export, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as in CI: no network
    _, out, _ = encoder_export
    with pytest.raises(ValueError, match=r"returns \['last_hidden_state', 'pooler_output'\]; .* expects \['logits'\]"):
        ORTAxLSTMForAudioClassification.from_pretrained(out)
    with pytest.raises(ValueError, match="does not exist"):
        ORTAxLSTMModel.from_pretrained(out, file_name="model_int8.onnx")
    with pytest.raises(ValueError, match="'no-such-user/no-such-repo' is not a local folder and could not be fetched"):
        ORTAxLSTMModel.from_pretrained("no-such-user/no-such-repo")
    model = ORTAxLSTMModel.from_pretrained(out)
    with pytest.raises(ValueError, match=r"input_values has shape \(1, 200, 64\); expected \(batch, frames, 80\)"):
        model(torch.zeros(1, 200, 64))
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(torch.full((1, 20, 80), float("nan")))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 19\)"):
        model(torch.zeros(1, 20, 80), attention_mask=torch.ones(1, 19))
    with pytest.raises(ValueError, match="runs on the CPU"):
        model.to("cuda")


def test_exporter_refusals(encoder_export, classifier_export, tmp_path):
    _, _, out = encoder_export[0], None, encoder_export[1]
    _, source, _ = classifier_export
    before = (out / "model.onnx").stat().st_mtime_ns
    with pytest.raises(ValueError, match="already holds files .*pass --overwrite"):
        export_onnx.export(source, out, verbose=False)
    assert (out / "model.onnx").stat().st_mtime_ns == before  # nothing touched
    with pytest.raises(ValueError, match="has no config.json"):
        export_onnx.export(tmp_path, tmp_path / "x", verbose=False)
    with pytest.raises(ValueError, match="task='audio-classification' needs a classifier folder"):
        export_onnx.export(encoder_export[1], tmp_path / "y", task="audio-classification", verbose=False)
    with pytest.raises(ValueError, match="quantize='int4' is invalid"):
        export_onnx.export(source, tmp_path / "z", quantize="int4", verbose=False)
    with pytest.raises(ValueError, match="opset=12 is invalid"):
        export_onnx.export_graph(encoder_export[0], "feature-extraction", tmp_path / "m.onnx", opset=12)
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_cli_errors_are_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        export_onnx.main([str(tmp_path), str(tmp_path / "out"), "--opset", "11"])
    assert exit_info.value.code == 2
    assert "--opset 11 is invalid" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_onnx.main([str(tmp_path), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "has no config.json" in err


def test_ssast_encoder_exports_too(tmp_path):
    torch.manual_seed(0)
    model = SSASTModel(small_config(SSASTConfig)).eval()
    model.save_pretrained(tmp_path / "ssast")
    report = export_onnx.export(tmp_path / "ssast", tmp_path / "ssast_onnx", long_seconds=3, verbose=False)
    assert report["model_type"] == "ssast" and max(report["max_relative_error"].values()) < 1e-5
    session = make_session(tmp_path / "ssast_onnx" / "model.onnx")
    values = np.random.default_rng(0).standard_normal((2, 150, 80)).astype(np.float32)
    hidden, _ = _run(session, values)
    with torch.inference_mode():
        assert _rel(hidden, model(torch.from_numpy(values)).last_hidden_state.numpy()) < 1e-5


# ------------------------------------------------------------------ the export never blesses a wrong graph


def _gated_classifier(forget_gates, seed=2):
    """A classifier whose forget gate pre-activations sit at `forget_gates` (per head; every block), whatever the
    input: the forget-gate rows of the gate weights are 0 and their biases set."""
    torch.manual_seed(seed)
    model = AxLSTMForAudioClassification(small_config(id2label=dict(LABELS))).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0, 1.0)
        for layer in model.axlstm.layers:
            heads = layer.mixer.gate_proj.bias.shape[0] // 2
            layer.mixer.gate_proj.weight[heads:] = 0.0
            layer.mixer.gate_proj.bias[heads:] = torch.tensor(forget_gates, dtype=torch.float32)
    return model


def _save(model, folder):
    model.save_pretrained(folder)
    AxLSTMFeatureExtractor().save_pretrained(folder)
    return folder


def test_forget_gates_at_minus_and_plus_40_export_and_match_pytorch(tmp_path):
    model = _gated_classifier([-40.0, 40.0, -40.0, 40.0])
    out = tmp_path / "exported"
    report = export_onnx.export(_save(model, tmp_path / "model"), out, long_seconds=3, verbose=False)
    assert report["gate_range"]["forget_gate"] == [-40.0, 40.0]
    assert report["max_relative_error"]["logits"] < 1e-5
    assert report["extreme_gates_max_relative_error"]["logits"] < 1e-5
    session = make_session(out / "model.onnx", threads=1)
    rng = np.random.default_rng(11)
    for values in (rng.standard_normal((2, 200, 80)), rng.standard_normal((1, 1500, 80)), np.zeros((1, 37, 80))):
        (logits,) = _run(session, values)
        with torch.inference_mode():
            ref = model(torch.from_numpy(values.astype(np.float32))).logits.numpy()
        assert np.isfinite(logits).all()
        assert _rel(logits, ref) < 1e-5
    proto = onnx.load(out / "model.onnx")
    assert export_onnx.graph_problems(proto) == []
    assert "Sigmoid" not in {proto_node_producer(proto, n.input[0]) for n in proto.graph.node if n.op_type == "Log"}


def proto_node_producer(proto, name):
    return next((n.op_type for n in proto.graph.node if name in n.output), None)


def _log_of_sigmoid(x):
    """What the exporter made of F.logsigmoid (in the graph only): -inf in ONNX Runtime for x <= -16.6."""
    if not torch.compiler.is_exporting():
        return torch.nn.functional.logsigmoid(x)
    return torch.log(torch.sigmoid(x))


def test_a_log_of_sigmoid_graph_is_refused_by_the_graph_check(tmp_path, monkeypatch):
    from hf_axlstm import kernels_axlstm

    monkeypatch.setattr(kernels_axlstm, "_log_sigmoid", _log_of_sigmoid)
    source = _save(_gated_classifier([3.0, 4.0, 5.0, 6.0]), tmp_path / "model")  # finite even so: only the graph
    with pytest.raises(export_onnx.ExportValidationError, match=r"graph check: Log node .* \(from Sigmoid\)"):
        export_onnx.export(source, tmp_path / "exported", long_seconds=1, verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no folder, no staging folder


def test_a_nan_graph_is_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    from hf_axlstm import kernels_axlstm

    monkeypatch.setattr(kernels_axlstm, "_log_sigmoid", _log_of_sigmoid)
    monkeypatch.setattr(export_onnx, "graph_problems", lambda proto: [])  # only the comparison left to catch it
    source = _save(_gated_classifier([-40.0, 40.0, -20.0, 3.0]), tmp_path / "model")
    out = tmp_path / "exported"
    with pytest.raises(export_onnx.ExportValidationError, match=r"logits holds \d+ NaN / Inf values on the padded"):
        export_onnx.export(source, out, long_seconds=1, verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # The CLI: one error line, exit 2, and an existing folder is left as it was.
    out.mkdir()
    (out / "model.onnx").write_bytes(b"the user's old graph")
    with pytest.raises(SystemExit) as exit_info:
        export_onnx.main([str(source), str(out), "--long_seconds", "1", "--overwrite"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "NaN / Inf" in err and "Nothing was written" in err
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]
    assert (out / "model.onnx").read_bytes() == b"the user's old graph"


def test_a_graph_wrong_only_at_extreme_gates_is_refused(tmp_path, monkeypatch):
    """The inputs never reach the broken range (forget gates at 3..6), so only the extreme-gate check sees it."""
    from hf_axlstm import kernels_axlstm

    def wrong_above_20(x):  # in the graph only: finite, and right up to x = 20 only
        right = torch.clamp_max(x, 0.0) - torch.log1p(torch.exp(-torch.abs(x)))
        return torch.where(x > 20.0, -0.1 * x, right) if torch.compiler.is_exporting() else right

    monkeypatch.setattr(kernels_axlstm, "_log_sigmoid", wrong_above_20)
    source = _save(_gated_classifier([3.0, 4.0, 5.0, 6.0]), tmp_path / "model")
    with pytest.raises(export_onnx.ExportValidationError, match="with its gates at the extremes by a relative"):
        export_onnx.export(source, tmp_path / "exported", long_seconds=1, verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_relative_error_and_the_graph_check_never_pass_nan():
    from onnx import TensorProto, helper

    nan = np.array([np.nan, 1.0], np.float32)
    assert export_onnx.relative_error(nan, np.ones(2, np.float32)) == float("inf")
    assert export_onnx.relative_error(np.ones(2, np.float32), nan) == float("inf")
    assert export_onnx.relative_error(np.full(2, np.inf, np.float32), np.ones(2, np.float32)) == float("inf")
    assert export_onnx.relative_error(np.ones(2, np.float32), np.ones(2, np.float32)) == 0.0

    def graph(*nodes, initializers=()):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
        return helper.make_model(helper.make_graph(list(nodes), "g", [x], [y], list(initializers)))

    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    safe = graph(
        helper.make_node("Abs", ["x"], ["a"]),
        helper.make_node("Neg", ["a"], ["n"]),
        helper.make_node("Exp", ["n"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["p"]),
        helper.make_node("Log", ["p"], ["y"], name="log1p"),
        initializers=[one],
    )
    assert export_onnx.graph_problems(safe) == []
    unsafe = graph(helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Log", ["s"], ["y"], name="ls"))
    assert export_onnx.graph_problems(unsafe) == [
        "Log node 'ls' takes 's' (from Sigmoid), which can be 0 or negative: log would give -inf / NaN"
    ]
    raw = graph(helper.make_node("Log", ["x"], ["y"], name="raw"))
    assert "from an input" in export_onnx.graph_problems(raw)[0]


# ------------------------------------------------------------------ overwrite: the whole set, in one step


def test_overwrite_replaces_the_whole_set_and_keeps_the_users_files(classifier_export, tmp_path):
    import shutil

    _, source, old = classifier_export
    out = tmp_path / "exported"
    shutil.copytree(old, out)  # an int8 export
    (out / "README.md").write_text("my notes")
    assert (out / "model_int8.onnx").is_file()
    report = export_onnx.export(source, out, overwrite=True, long_seconds=1, verbose=False)
    names = {p.name for p in out.iterdir()}
    assert "model_int8.onnx" not in names  # not written this time: the old one is gone, not left beside the new
    assert {"model.onnx", "config.json", "README.md"} <= names and (out / "README.md").read_text() == "my notes"
    assert report["files"] == ["model.onnx", "config.json", "preprocessor_config.json", "onnx_export.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]  # no staging folder left
    with pytest.raises(ValueError, match="does not exist"):
        ORTAxLSTMForAudioClassification.from_pretrained(out, file_name="model_int8.onnx")


_EXPORT_KILLER = """
import os, sys
from hf_axlstm import export_onnx
real, count = os.rename, 0
def rename(src, dst):
    global count
    if any(os.path.basename(str(p)).startswith(".tmp-") for p in (src, dst)):
        count += 1
        if count == 3:  # stage -> ready, old -> backup, [kill] ready -> target
            os._exit(99)
    return real(src, dst)
os.rename = rename
sys.exit(export_onnx.main(sys.argv[1:]))
"""


def test_a_kill_between_the_swap_renames_is_recovered_by_the_next_run(classifier_export, tmp_path):
    import shutil
    import subprocess
    import sys

    model, source, old = classifier_export
    out = tmp_path / "exported"
    shutil.copytree(old, out)
    result = subprocess.run(
        [sys.executable, "-c", _EXPORT_KILLER, str(source), str(out), "--overwrite", "--long_seconds", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 99, result.stderr
    assert not out.exists()  # between the renames: no folder (never the new graph beside the old files)
    staged = sorted(p.name.rsplit("-", 1)[-1] for p in tmp_path.iterdir() if p.name.startswith(".tmp-exported-"))
    assert staged == ["old", "ready"]
    # The next run's first step puts the complete new set in place and removes the rest.
    with pytest.raises(ValueError, match="already holds files"):
        export_onnx.export(source, out, long_seconds=1, verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]
    assert not (out / "model_int8.onnx").exists()
    ort_model = ORTAxLSTMForAudioClassification.from_pretrained(out)
    values = np.random.default_rng(4).standard_normal((2, 150, 80)).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(values)).logits.numpy()
    assert _rel(ort_model(values).logits.numpy(), ref) < 1e-5

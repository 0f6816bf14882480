"""save_pretrained / from_pretrained, the Auto classes, Hub remote code and the audio-classification pipeline."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    pipeline,
)

from hf_axlstm import (
    AxLSTMConfig,
    AxLSTMFeatureExtractor,
    AxLSTMForAudioClassification,
    AxLSTMForPreTraining,
    AxLSTMModel,
)

LABELS = {0: "tone", 1: "noise", 2: "click"}


def tiny_config(**overrides):
    kwargs = {"hidden_size": 32, "num_hidden_layers": 2, "id2label": dict(LABELS)}
    kwargs.update(overrides)
    return AxLSTMConfig(**kwargs)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = AxLSTMForAudioClassification(tiny_config()).eval()
    with torch.no_grad():  # a decisive head so the predicted label is stable
        model.classifier.weight.normal_(0, 1.0)
    folder = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(folder)
    AxLSTMFeatureExtractor().save_pretrained(folder)
    return folder


def test_folder_has_code_full_auto_map_and_safetensors(classifier_dir):
    config = json.loads((classifier_dir / "config.json").read_text())
    assert config["model_type"] == "axlstm"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_axlstm.AxLSTMConfig",
        "AutoModel": "modeling_axlstm.AxLSTMModel",
        "AutoModelForPreTraining": "modeling_axlstm.AxLSTMForPreTraining",
        "AutoModelForAudioClassification": "modeling_axlstm.AxLSTMForAudioClassification",
        "AutoFeatureExtractor": "feature_extraction_axlstm.AxLSTMFeatureExtractor",
    }
    for name in ("configuration_axlstm.py", "modeling_axlstm.py", "kernels_axlstm.py", "feature_extraction_axlstm.py"):
        assert (classifier_dir / name).is_file(), name
    assert (classifier_dir / "model.safetensors").is_file()
    assert not list(classifier_dir.glob("*.bin"))
    extractor = json.loads((classifier_dir / "preprocessor_config.json").read_text())
    assert extractor["feature_extractor_type"] == "AxLSTMFeatureExtractor"
    assert extractor["auto_map"]["AutoFeatureExtractor"] == "feature_extraction_axlstm.AxLSTMFeatureExtractor"


@pytest.mark.parametrize("cls", [AxLSTMModel, AxLSTMForPreTraining, AxLSTMForAudioClassification])
def test_save_load_round_trip_is_exact(cls, tmp_path):
    torch.manual_seed(0)
    model = cls(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path).eval()
    x = torch.randn(2, 200, 80)
    kwargs = {"noise": torch.rand(2, 250)} if cls is AxLSTMForPreTraining else {}
    with torch.no_grad():
        a, b = model(x, **kwargs), loaded(x, **kwargs)
    key = "logits" if cls is not AxLSTMModel else "last_hidden_state"
    assert torch.equal(a[key], b[key])


def test_auto_classes_resolve_to_axlstm(classifier_dir):
    assert type(AutoConfig.from_pretrained(classifier_dir)) is AxLSTMConfig
    assert type(AutoModel.from_pretrained(classifier_dir)) is AxLSTMModel
    assert type(AutoModelForAudioClassification.from_pretrained(classifier_dir)) is AxLSTMForAudioClassification
    assert type(AutoModelForPreTraining.from_pretrained(classifier_dir)) is AxLSTMForPreTraining
    assert type(AutoFeatureExtractor.from_pretrained(classifier_dir)) is AxLSTMFeatureExtractor
    assert AutoConfig.from_pretrained(classifier_dir).id2label == LABELS


def test_encoder_weights_carry_over_between_heads(tmp_path):
    torch.manual_seed(0)
    pretrained = AxLSTMForPreTraining(tiny_config()).eval()
    pretrained.save_pretrained(tmp_path)
    classifier = AxLSTMForAudioClassification.from_pretrained(tmp_path).eval()
    x = torch.randn(1, 200, 80)
    with torch.no_grad():
        assert torch.equal(pretrained.axlstm(x).pooler_output, classifier.axlstm(x).pooler_output)


def test_loading_after_meta_init_gives_the_same_outputs(classifier_dir):
    # from_pretrained builds on the meta device; nothing the forward needs may be left uninitialised.
    a = AxLSTMForAudioClassification.from_pretrained(classifier_dir).eval()
    b = AxLSTMForAudioClassification.from_pretrained(classifier_dir).eval()
    x = torch.randn(1, 123, 80)
    with torch.no_grad():
        assert torch.equal(a(x).logits, b(x).logits)
        assert torch.isfinite(a(x).logits).all()


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["hf_axlstm"] = None  # hf_axlstm must not be importable: only the folder's code may be used
    import numpy as np
    import torch
    from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification, pipeline

    folder, reference = sys.argv[1], sys.argv[2]
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    encoder = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(encoder).__name__ == "AxLSTMModel"
    extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    assert type(extractor).__name__ == "AxLSTMFeatureExtractor"
    audio = np.load(reference + ".npy")
    inputs = extractor(audio, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    np.save(reference + "_remote.npy", logits.numpy())
    classify = pipeline("audio-classification", model=folder, trust_remote_code=True)
    print("TOP", classify(audio, top_k=1)[0]["label"])
    """
)


def test_remote_code_loads_without_hf_axlstm(classifier_dir, tmp_path):
    audio = np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1
    np.save(tmp_path / "ref.npy", audio)
    script = tmp_path / "remote.py"
    script.write_text(REMOTE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(classifier_dir), str(tmp_path / "ref")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    local = AxLSTMForAudioClassification.from_pretrained(classifier_dir).eval()
    extractor = AxLSTMFeatureExtractor.from_pretrained(classifier_dir)
    with torch.no_grad():
        expected = local(**extractor(audio, sampling_rate=16000, return_tensors="pt")).logits.numpy()
    remote = np.load(tmp_path / "ref_remote.npy")
    np.testing.assert_allclose(remote, expected, rtol=1e-5, atol=1e-6)
    top = LABELS[int(expected[0].argmax())]
    assert f"TOP {top}" in result.stdout


# --------------------------------------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def classify(classifier_dir):
    return pipeline("audio-classification", model=str(classifier_dir))


def _expected_scores(classifier_dir, audio):
    model = AxLSTMForAudioClassification.from_pretrained(classifier_dir).eval()
    inputs = AxLSTMFeatureExtractor()(audio, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        probs = model(**inputs).logits.softmax(-1)[0]
    return {LABELS[i]: probs[i].item() for i in range(len(LABELS))}


def _check(result, expected):
    assert [r["label"] for r in result] == sorted(expected, key=expected.get, reverse=True)
    for r in result:
        assert r["score"] == pytest.approx(expected[r["label"]], abs=1e-5)


def test_pipeline_on_a_numpy_array(classify, classifier_dir):
    audio = np.sin(2 * np.pi * 440 * np.arange(32000) / 16000).astype(np.float32)
    _check(classify(audio), _expected_scores(classifier_dir, audio))


def test_pipeline_on_a_raw_dict(classify, classifier_dir):
    audio = np.random.default_rng(1).standard_normal(20000).astype(np.float32) * 0.2
    _check(classify({"raw": audio, "sampling_rate": 16000}), _expected_scores(classifier_dir, audio))


def test_pipeline_on_a_wav_file(classify, classifier_dir, tmp_path):
    audio = (np.random.default_rng(2).standard_normal(16000) * 0.2).astype(np.float32)
    path = tmp_path / "clip.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    _check(classify(str(path)), _expected_scores(classifier_dir, audio))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64], ids=["bf16", "fp16", "fp64"])
def test_pipeline_in_every_dtype_gives_the_float32_labels(classifier_dir, dtype):
    classify_in = pipeline("audio-classification", model=str(classifier_dir), dtype=dtype)
    assert classify_in.model.dtype == dtype
    audio = np.sin(2 * np.pi * 440 * np.arange(32000) / 16000).astype(np.float32)
    expected = _expected_scores(classifier_dir, audio)
    result = classify_in(audio)
    assert [r["label"] for r in result] == sorted(expected, key=expected.get, reverse=True)
    for r in result:
        assert r["score"] == pytest.approx(expected[r["label"]], abs=2e-2 if dtype != torch.float64 else 1e-6)

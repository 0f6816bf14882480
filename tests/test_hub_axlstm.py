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
    for name in (
        "configuration_axlstm.py",
        "modeling_axlstm.py",
        "kernels_axlstm.py",
        "mixers_axlstm.py",
        "validation_axlstm.py",
        "feature_extraction_axlstm.py",
        "audio_rules_axlstm.py",
    ):
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


# ------------------------------------------------------- decoding without ffmpeg / torchaudio, and which class runs


@pytest.fixture
def no_ffmpeg_or_torchaudio(monkeypatch):
    """transformers' own decoding paths fail loudly here, so a pass proves hf_axlstm's decoding ran (also on a machine
    that has the ffmpeg binary or torchaudio)."""
    import transformers.pipelines.audio_classification as stock

    def refuse(*args, **kwargs):
        raise AssertionError("transformers' ffmpeg_read was called")

    monkeypatch.setattr(stock, "ffmpeg_read", refuse)
    monkeypatch.setattr(stock, "is_torchaudio_available", lambda: False)


def _scores_of_wave(classifier_dir, wave):
    return _expected_scores(classifier_dir, np.asarray(wave, dtype=np.float32))


def test_pipeline_for_axlstm_is_ours_without_any_argument(classify):
    from hf_axlstm import AxLSTMAudioClassificationPipeline

    assert type(classify) is AxLSTMAudioClassificationPipeline


def test_pipeline_decodes_paths_bytes_and_other_rates_without_ffmpeg(
    classify, classifier_dir, tmp_path, no_ffmpeg_or_torchaudio
):
    from hf_axlstm.audio import load_audio, resample

    rng = np.random.default_rng(3)
    stereo = (rng.standard_normal((44100, 2)) * 0.2).astype(np.float32)  # 1 s, soundfile's (samples, channels)
    path = tmp_path / "stereo_44k.flac"
    sf.write(path, stereo, 44100)
    expected = _scores_of_wave(classifier_dir, load_audio(path))  # soundfile -> mono -> polyphase to 16 kHz
    _check(classify(str(path)), expected)
    _check(classify(path.read_bytes()), expected)
    _check(classify({"path": str(path), "bytes": None}), expected)  # datasets' Audio(decode=False) value

    mono = (rng.standard_normal(44100) * 0.2).astype(np.float32)
    resampled = _scores_of_wave(classifier_dir, resample(mono, 44100, 16000))
    _check(classify({"raw": mono, "sampling_rate": 44100}), resampled)
    _check(classify({"array": mono, "sampling_rate": 44100}), resampled)
    _check(classify(mono, sampling_rate=44100), resampled)  # a bare array with its rate
    _check(classify(torch.from_numpy(mono), sampling_rate=44100), resampled)

    # a 2-D array is one multi-channel clip for the pipeline (one input, one clip): channels averaged
    at_16k = (rng.standard_normal((2, 16000)) * 0.2).astype(np.float32)
    _check(classify(at_16k), _scores_of_wave(classifier_dir, at_16k.mean(axis=0)))
    # integer PCM is scaled as the extractor scales it
    pcm = (mono[:16000] * 20000).astype(np.int16)
    _check(classify(pcm), _scores_of_wave(classifier_dir, pcm.astype(np.float32) / 32768))


def test_pipeline_errors_name_the_input(classify, tmp_path, no_ffmpeg_or_torchaudio):
    with pytest.raises(ValueError, match=r"audio file '.*missing.wav' does not exist"):
        classify(str(tmp_path / "missing.wav"))
    with pytest.raises(ValueError, match=r"cannot read audio file '<in-memory audio bytes>'"):
        classify(b"not audio at all")
    with pytest.raises(ValueError, match=r"needs a 'sampling_rate' beside its 'raw' / 'array' samples"):
        classify({"raw": np.zeros(16000, np.float32)})
    wav = tmp_path / "cut.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    wav.write_bytes(wav.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"audio file '.*cut.wav' is truncated: its WAV header declares 16000 frames"):
        classify(str(wav))


def test_pipeline_resamples_for_an_8khz_extractor(tmp_path, no_ffmpeg_or_torchaudio):
    from hf_axlstm.audio import resample

    torch.manual_seed(0)
    model = AxLSTMForAudioClassification(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    extractor = AxLSTMFeatureExtractor(sampling_rate=8000, f_max=4000.0)
    extractor.save_pretrained(tmp_path)
    classify_8k = pipeline("audio-classification", model=str(tmp_path))
    audio = (np.random.default_rng(4).standard_normal(16000) * 0.2).astype(np.float32)  # 1 s at 16 kHz
    inputs = extractor(resample(audio, 16000, 8000), sampling_rate=8000, return_tensors="pt")
    with torch.no_grad():
        probs = model(**inputs).logits.softmax(-1)[0]
    expected = {LABELS[i]: probs[i].item() for i in range(len(LABELS))}
    _check(classify_8k({"raw": audio, "sampling_rate": 16000}), expected)


def test_other_models_keep_transformers_pipeline():
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification, AudioClassificationPipeline

    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=64,
        num_mel_bins=32,
    )
    model = ASTForAudioClassification(config).eval()
    other = pipeline("audio-classification", model=model, feature_extractor=ASTFeatureExtractor(num_mel_bins=32))
    assert type(other) is AudioClassificationPipeline


def test_auto_processor_loads_the_extractor_without_a_prompt(classifier_dir, monkeypatch):
    from transformers import AutoProcessor

    def no_prompt(*args, **kwargs):
        raise AssertionError("a trust_remote_code prompt was attempted")

    monkeypatch.setattr("builtins.input", no_prompt)
    assert type(AutoProcessor.from_pretrained(classifier_dir)) is AxLSTMFeatureExtractor
    assert type(AutoFeatureExtractor.from_pretrained(classifier_dir)) is AxLSTMFeatureExtractor


class _Records(list):
    def __enter__(self):
        import logging

        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.append(record.getMessage())
        self.logger = logging.getLogger("transformers")
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)

    @property
    def reports(self):
        return [message for message in self if "LOAD REPORT" in message]


def test_loading_an_encoder_from_a_head_folder_prints_no_load_report(classifier_dir, tmp_path):
    torch.manual_seed(0)
    AxLSTMForPreTraining(tiny_config()).save_pretrained(tmp_path / "pretrained")
    with _Records() as records:
        AxLSTMModel.from_pretrained(classifier_dir)
        AxLSTMModel.from_pretrained(tmp_path / "pretrained")
        AutoModel.from_pretrained(tmp_path / "pretrained")
    assert records.reports == []
    # a classifier started from a pretraining folder still reports its new, untrained classifier (missing keys)
    with _Records() as records:
        AxLSTMForAudioClassification.from_pretrained(tmp_path / "pretrained")
    assert len(records.reports) == 1 and "classifier.weight" in records.reports[0]
    assert "head.dense" not in records.reports[0]


def test_a_really_unexpected_key_is_still_reported(classifier_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "extra"
    shutil.copytree(classifier_dir, folder)
    weights = load_file(folder / "model.safetensors")
    weights["head.extra.weight"] = torch.zeros(2)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with _Records() as records:
        AxLSTMModel.from_pretrained(folder)
    assert len(records.reports) == 1
    assert "head.extra.weight" in records.reports[0] and "classifier.weight" not in records.reports[0]


@pytest.mark.parametrize(
    ("id2label", "message"),
    [
        ({"0": "a", "5": "b"}, r"id2label has the keys \[0, 5\]; expected the class indices 0..1"),
        ({"a": "x", "b": "y"}, r"id2label has the key 'a'; expected class indices"),
    ],
)
def test_a_config_json_with_bad_id2label_is_refused_on_load(classifier_dir, tmp_path, id2label, message):
    import shutil

    folder = tmp_path / "labels"
    shutil.copytree(classifier_dir, folder)
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["id2label"] = id2label
    config.pop("label2id", None)
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        pipeline("audio-classification", model=str(folder))


SHARED_PIPELINE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["hf_axlstm"] = None  # only the folder's code may run
    import transformers.pipelines.audio_classification as stock

    def refuse(*args, **kwargs):
        raise AssertionError("transformers' ffmpeg_read was called")

    stock.ffmpeg_read = refuse
    import numpy as np
    from transformers import pipeline

    folder, wav = sys.argv[1], sys.argv[2]
    classify = pipeline("audio-classification", model=folder, trust_remote_code=True)
    assert type(classify).__module__.startswith("transformers_modules"), type(classify).__module__
    print("CLASS", type(classify).__name__)
    print("FILE", classify(wav, top_k=1)[0]["label"])
    """
)


def test_a_shared_pipeline_runs_as_remote_code_without_hf_axlstm_or_ffmpeg(classify, classifier_dir, tmp_path):
    from hf_axlstm.audio import load_audio

    shared = tmp_path / "shared"
    classify.save_pretrained(shared)  # what push_to_hub uploads
    config = json.loads((shared / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "audio-classification": {
            "impl": "pipeline_axlstm.AxLSTMAudioClassificationPipeline",
            "pt": ["AutoModelForAudioClassification"],
            "type": "audio",
        }
    }
    for name in ("pipeline_axlstm.py", "audio.py", "audio_rules_axlstm.py"):
        assert (shared / name).is_file(), name
    # with hf_axlstm imported, the folder needs no trust_remote_code: the registered pipeline serves it
    from hf_axlstm import AxLSTMAudioClassificationPipeline

    assert type(pipeline("audio-classification", model=str(shared))) is AxLSTMAudioClassificationPipeline

    wav = tmp_path / "clip.flac"
    sf.write(wav, (np.random.default_rng(5).standard_normal((22050, 2)) * 0.2).astype(np.float32), 22050)
    script = tmp_path / "shared.py"
    script.write_text(SHARED_PIPELINE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(shared), str(wav)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CLASS AxLSTMAudioClassificationPipeline" in result.stdout
    expected = _expected_scores(classifier_dir, load_audio(wav))
    assert f"FILE {max(expected, key=expected.get)}" in result.stdout

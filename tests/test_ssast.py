# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""SSAST, the paper's transformer baseline: presets, parity with the authors' code (tests/fixtures/ssast_parity),
the mask-token position option, Auto classes, Hub remote code, the pipeline and HEAR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForPreTraining, pipeline

from hf_axlstm import (
    AxLSTMFeatureExtractor,
    AxLSTMForPreTraining,
    SSASTConfig,
    SSASTForAudioClassification,
    SSASTForPreTraining,
    SSASTModel,
    hear,
)
from hf_axlstm.convert_official import convert_checkpoint
from hf_axlstm.convert_official import main as convert_main

from .conftest import FIXTURES, rel_err

SSAST_DIR = FIXTURES / "ssast_parity"


@pytest.fixture(scope="module")
def ssast_expected() -> dict[str, torch.Tensor]:
    return load_file(str(SSAST_DIR / "expected.safetensors"))


@pytest.fixture(scope="module")
def ssast_official() -> SSASTForPreTraining:
    return convert_checkpoint(SSAST_DIR / "official_checkpoint.pth")


def small(**overrides) -> SSASTConfig:
    return SSASTConfig(**{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, **overrides})


# ---------------------------------------------------------------------------------------------------- presets


@pytest.mark.parametrize(("preset", "millions"), [("tiny", 5.35), ("small", 21.32), ("base", 85.11)])
def test_presets_have_the_papers_encoder_parameters(preset, millions):
    with torch.device("meta"):
        model = SSASTModel(SSASTConfig.from_preset(preset))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions


def test_fixture_parameter_count_matches_the_authors():
    meta = json.loads((SSAST_DIR / "meta.json").read_text())
    model = SSASTModel(SSASTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=1))
    assert sum(p.numel() for p in model.parameters()) == meta["encoder_trainable_params"]


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="num_attention_heads=5 does not divide hidden_size=64"):
        SSASTConfig(hidden_size=64, num_attention_heads=5)
    with pytest.raises(ValueError, match="attention_dropout=1.5 is invalid"):
        small(attention_dropout=1.5)
    with pytest.raises(ValueError, match="mask_token_positions='yes' is invalid; expected True or False"):
        small(mask_token_positions="yes")
    with pytest.raises(ValueError, match="preset='huge' is not a known SSAST preset"):
        SSASTConfig.from_preset("huge")


# ----------------------------------------------------------------------------------------------------- parity


def test_converter_recognises_the_ssast_checkpoint(ssast_official):
    assert type(ssast_official) is SSASTForPreTraining
    config = ssast_official.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.mlp_ratio) == (
        64,
        2,
        1,
        4,
    )
    assert config.patch_size == [4, 16] and config.num_mel_bins == 80 and config.frames_per_window == 200


def test_pretraining_prediction_and_losses_match_the_authors(ssast_official, ssast_expected):
    e = ssast_expected
    with torch.no_grad():
        out = ssast_official(e["lms"], mask=e["mask"])
    assert rel_err(out.logits, e["pred"]) < 1e-5
    assert torch.equal(ssast_official.patchify(e["lms"]), e["target"])
    assert abs(out.loss.item() - e["loss_all_patches"].item()) < 1e-5
    ssast_official.config.loss_on = "masked"
    try:
        with torch.no_grad():
            masked = ssast_official(e["lms"], mask=e["mask"]).loss
    finally:
        ssast_official.config.loss_on = "all"
    assert abs(masked.item() - e["loss_masked_patches"].item()) < 1e-5


def test_forward_features_match_the_authors_in_the_official_layout(ssast_official, ssast_expected):
    model = hear.load_model(ssast_official, layout="official", device="cpu")
    with torch.no_grad():
        features = model._encode(ssast_expected["lms"][:, 0])
    assert features.shape == (2, 50, 320)
    assert rel_err(features, ssast_expected["forward_features"]) < 1e-5


@pytest.mark.parametrize("i", [0, 1, 2])
def test_hear_embeddings_match_the_authors(ssast_official, ssast_expected, i):
    model = hear.load_model(ssast_official, layout="official", device="cpu")
    with torch.no_grad():
        frames = model.embed_log_mel(ssast_expected[f"logmel{i}"][:, 0])
    assert frames.shape == ssast_expected[f"logmel{i}_timestamp_embeddings"].shape
    assert rel_err(frames, ssast_expected[f"logmel{i}_timestamp_embeddings"]) < 1e-5
    assert rel_err(frames.mean(dim=1), ssast_expected[f"logmel{i}_scene_embedding"]) < 1e-5


def test_hear_loads_the_ssast_pth_and_a_converted_folder(tmp_path, ssast_expected):
    assert convert_main([str(SSAST_DIR / "official_checkpoint.pth"), str(tmp_path / "ssast")]) == 0
    assert json.loads((tmp_path / "ssast" / "config.json").read_text())["model_type"] == "ssast"
    from_pth = hear.load_model(SSAST_DIR / "official_checkpoint.pth", device="cpu")
    from_folder = hear.load_model(tmp_path / "ssast", device="cpu")
    audio = torch.randn(2, 24000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        a = hear.get_scene_embeddings(audio, from_pth)
        b = hear.get_scene_embeddings(audio, from_folder)
    assert a.shape == (2, 320) and torch.allclose(a, b, atol=1e-6)


# ---------------------------------------------------------------------------------------------------- masking


def _masked_spread(model, expected) -> float:
    with torch.no_grad():
        logits = model(expected["lms"], mask=expected["mask"]).logits
    spreads = []
    for b in range(logits.shape[0]):
        masked = logits[b][expected["mask"][b].bool()]
        spreads.append((masked - masked[0]).abs().max().item())
    return max(spreads)


def test_authors_masking_gives_every_masked_patch_the_same_prediction(ssast_official, ssast_expected):
    """The authors' mask tokens carry no position: a transformer cannot tell masked patches apart."""
    assert _masked_spread(ssast_official, ssast_expected) == 0.0
    pred = ssast_expected["pred"][0][ssast_expected["mask"][0].bool()]
    assert (pred - pred[0]).abs().max().item() == 0.0  # the authors' own outputs show it too


def test_mask_token_positions_lets_ssast_tell_masked_patches_apart(ssast_official, ssast_expected):
    ssast_official.config.mask_token_positions = True
    try:
        spread = _masked_spread(ssast_official, ssast_expected)
        with torch.no_grad():
            visible = ssast_official(ssast_expected["lms"], mask=ssast_expected["mask"]).logits
    finally:
        ssast_official.config.mask_token_positions = False
    assert spread > 0.1
    with torch.no_grad():
        default = ssast_official(ssast_expected["lms"], mask=ssast_expected["mask"]).logits
    assert not torch.allclose(visible, default)


def test_mask_token_positions_is_an_ablation_for_axlstm_too(official_dir, expected):
    model = convert_checkpoint(official_dir / "official_checkpoint.pth")
    with torch.no_grad():
        default = model(expected["lms"], mask=expected["mask"]).logits
        model.config.mask_token_positions = True
        with_positions = model(expected["lms"], mask=expected["mask"]).logits
    assert rel_err(default, expected["pred"]) < 1e-5
    assert rel_err(with_positions, default) > 1e-3
    # an mLSTM tells masked positions apart even without positions: the default's predictions differ
    masked = default[0][expected["mask"][0].bool()]
    assert (masked - masked[0]).abs().max().item() > 1e-3
    assert isinstance(model, AxLSTMForPreTraining)


# ------------------------------------------------------------------------------------------ model behaviour


def test_padding_never_changes_a_clips_output():
    torch.manual_seed(0)
    model = SSASTModel(small()).eval()
    long, short = torch.randn(1, 200, 80), torch.randn(1, 123, 80)
    batch = torch.cat([long, torch.nn.functional.pad(short, (0, 0, 0, 77))])
    mask = torch.ones(2, 200, dtype=torch.long)
    mask[1, 123:] = 0
    with torch.no_grad():
        out = model(batch, attention_mask=mask)
        alone = model(short)
    real = alone.last_hidden_state.shape[1]
    assert torch.allclose(out.last_hidden_state[1, :real], alone.last_hidden_state[0], atol=1e-5)
    assert torch.allclose(out.pooler_output[1], alone.pooler_output[0], atol=1e-5)


def test_pretraining_and_classification_train():
    torch.manual_seed(0)
    pre = SSASTForPreTraining(small()).train()
    out = pre(torch.randn(2, 200, 80))
    out.loss.backward()
    assert out.logits.shape == (2, 250, 64) and torch.isfinite(out.loss)
    assert all(p.grad is not None for name, p in pre.named_parameters() if "cls_token" not in name)
    clf = SSASTForAudioClassification(small(num_labels=3))
    out = clf(torch.randn(2, 150, 80), labels=torch.tensor([0, 2]))
    out.loss.backward()
    assert out.logits.shape == (2, 3)
    with pytest.raises(ValueError, match=r"class indices \[3\] outside"):
        clf(torch.randn(2, 150, 80), labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="output_attentions=True is not supported: SSAST"):
        clf(torch.randn(2, 150, 80), output_attentions=True)


# ----------------------------------------------------------------------------------- Auto, Hub, pipeline


@pytest.fixture(scope="module")
def ssast_classifier_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = SSASTForAudioClassification(small(id2label={0: "tone", 1: "noise", 2: "click"})).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0, 1.0)
    folder = tmp_path_factory.mktemp("ssast_classifier")
    model.save_pretrained(folder)
    AxLSTMFeatureExtractor().save_pretrained(folder)
    return folder


def test_folder_has_remote_code_and_loads_through_auto(ssast_classifier_dir):
    config = json.loads((ssast_classifier_dir / "config.json").read_text())
    assert config["model_type"] == "ssast" and config["auto_map"]["AutoModel"] == "modeling_ssast.SSASTModel"
    names = set(os.listdir(ssast_classifier_dir))
    assert {"configuration_ssast.py", "modeling_ssast.py", "modeling_axlstm.py", "configuration_axlstm.py"} <= names
    assert {
        "kernels_axlstm.py",
        "mixers_axlstm.py",
        "validation_axlstm.py",
        "feature_extraction_axlstm.py",
        "audio_rules_axlstm.py",
    } <= names
    assert type(AutoConfig.from_pretrained(ssast_classifier_dir)) is SSASTConfig
    assert type(AutoModel.from_pretrained(ssast_classifier_dir)) is SSASTModel
    assert type(AutoModelForPreTraining.from_pretrained(ssast_classifier_dir)) is SSASTForPreTraining
    assert type(AutoModelForAudioClassification.from_pretrained(ssast_classifier_dir)) is SSASTForAudioClassification


def test_pipeline_gives_the_models_labels(ssast_classifier_dir):
    audio = np.sin(2 * np.pi * 440 * np.arange(32000) / 16000).astype(np.float32)
    model = SSASTForAudioClassification.from_pretrained(ssast_classifier_dir).eval()
    with torch.no_grad():
        probs = model(**AxLSTMFeatureExtractor()(audio, sampling_rate=16000, return_tensors="pt")).logits.softmax(-1)
    result = pipeline("audio-classification", model=str(ssast_classifier_dir))(audio)
    assert result[0]["label"] == model.config.id2label[int(probs[0].argmax())]
    assert result[0]["score"] == pytest.approx(probs[0].max().item(), abs=1e-5)


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["hf_axlstm"] = None  # only the folder's code may be used
    import numpy as np
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    folder = sys.argv[1]
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert type(model).__name__ == "SSASTForAudioClassification"
    extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    inputs = extractor(np.load(sys.argv[2]), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        np.save(sys.argv[3], model(**inputs).logits.numpy())
    """
)


def test_remote_code_loads_without_hf_axlstm(ssast_classifier_dir, tmp_path):
    audio = np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1
    np.save(tmp_path / "audio.npy", audio)
    (tmp_path / "remote.py").write_text(REMOTE_SCRIPT)
    result = subprocess.run(
        [sys.executable, "remote.py", str(ssast_classifier_dir), "audio.npy", "logits.npy"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    model = SSASTForAudioClassification.from_pretrained(ssast_classifier_dir).eval()
    with torch.no_grad():
        local = model(**AxLSTMFeatureExtractor()(audio, sampling_rate=16000, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), local, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- scripts


def test_finetune_starts_from_the_ssast_checkpoint(ssast_official):
    from hf_axlstm.data import LabelSpace

    from .badinputs import load_example

    finetune = load_example("finetune")
    model, extractor = finetune.build_model(
        finetune.ModelArguments(model_name_or_path=str(SSAST_DIR / "official_checkpoint.pth")),
        LabelSpace(["a", "b", "c"], False),
    )
    assert type(model) is SSASTForAudioClassification and model.config.num_labels == 3
    ours, theirs = model.ssast.state_dict(), ssast_official.ssast.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert isinstance(extractor, AxLSTMFeatureExtractor)


def test_evaluate_embeddings_builds_random_ssast_encoders():
    from .badinputs import load_example

    evaluate = load_example("evaluate_embeddings")
    evaluate.check_model_spec("random:ssast-tiny")
    embedder, fingerprint = evaluate.build_embedder("random:ssast-tiny", "time_major", "windows", "cpu")
    assert fingerprint["kind"] == "random" and '"model_type": "ssast"' in fingerprint["config"]
    with torch.no_grad():
        embeddings = embedder.embed(torch.randn(2, 16000) * 0.1)
    assert embeddings.shape == (2, 5 * 192)

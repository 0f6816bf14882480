import pytest

from hf_axlstm import AXLSTM_PRESETS, AxLSTMConfig, AxLSTMModel

# Trainable encoder parameters the paper reports (without the pretraining head), in millions.
PAPER_PARAMS = {"tiny": 2.87, "small": 11.04, "base": 43.32}


def _encoder_params(config: AxLSTMConfig) -> int:
    # Built on the meta device: counting needs shapes only, not memory or init time.
    import torch

    with torch.device("meta"):
        model = AxLSTMModel(config)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_preset_parameter_counts_match_the_paper(preset):
    config = AxLSTMConfig.from_preset(preset)
    count = _encoder_params(config)
    assert round(count / 1e6, 2) == PAPER_PARAMS[preset]


def test_tiny_parameter_count_is_exact():
    # Computed by hand from DESIGN section 1: 12 blocks of 237,896 + patch conv 12,480 + CLS, mask token, final norm.
    assert _encoder_params(AxLSTMConfig.from_preset("tiny")) == 12 * 237_896 + 12_480 + 192 + 192 + 384


def test_presets_share_everything_but_width():
    widths = {name: AxLSTMConfig.from_preset(name).hidden_size for name in AXLSTM_PRESETS}
    assert widths == {"tiny": 192, "small": 384, "base": 768}
    tiny = AxLSTMConfig.from_preset("tiny")
    assert (tiny.num_hidden_layers, tiny.num_heads, tiny.qkv_block_size, tiny.expansion_factor) == (12, 4, 4, 2)
    assert tiny.num_patches_per_window == 250 and tiny.patch_dim == 64 and tiny.head_dim == 96


def test_preset_overrides_apply():
    config = AxLSTMConfig.from_preset("small", num_hidden_layers=2, mask_ratio=0.75)
    assert (config.hidden_size, config.num_hidden_layers, config.mask_ratio) == (384, 2, 0.75)


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match=r"preset='huge' is not a known AxLSTM preset.*'base', 'small', 'tiny'"):
        AxLSTMConfig.from_preset("huge")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_size": 36, "qkv_block_size": 16}, r"qkv_block_size=16 does not divide .* = 72"),
        ({"hidden_size": 36, "num_heads": 5}, r"num_heads=5 does not divide .* = 72"),
        ({"num_mel_bins": 70}, r"num_mel_bins=70 is not divisible by .* patch_size\[1\]=16"),
        ({"mask_ratio": 1.0}, r"mask_ratio=1.0 is invalid; expected a number strictly between 0 and 1"),
        ({"mask_ratio": 0}, r"mask_ratio=0 is invalid"),
        ({"loss_on": "visible"}, r"loss_on='visible' is invalid; expected one of \['all', 'masked'\]"),
        ({"classifier_pooling": "max"}, r"classifier_pooling='max' is invalid"),
        ({"mlstm_backend": "cuda"}, r"mlstm_backend='cuda' is invalid"),
        ({"hidden_size": 0}, r"hidden_size=0 is invalid; expected a positive integer"),
        ({"patch_size": (4,)}, r"patch_size=\[4\] is invalid"),
        ({"classifier_dropout": 1.5}, r"classifier_dropout=1.5 is invalid"),
        ({"use_cls_token": False, "classifier_pooling": "cls"}, r"classifier_pooling='cls' needs use_cls_token=True"),
        # Wrong types are named before anything derived from them is computed (no `//` error from transformers).
        ({"hidden_size": "768"}, r"hidden_size='768' is invalid; expected a positive integer, got a str"),
        ({"num_heads": "4"}, r"num_heads='4' is invalid; expected a positive integer, got a str"),
        ({"num_hidden_layers": True}, r"num_hidden_layers=True is invalid; expected a positive integer, got a bool"),
        ({"chunk_size": 64.5}, r"chunk_size=64.5 is invalid; expected a positive integer, not a fractional"),
        ({"patch_size": [4.7, 16]}, r"patch_size=\[4.7, 16\] is invalid: patch_size\[0\]=4.7 .* not a fractional"),
        ({"patch_size": ["4", 16]}, r"patch_size\[0\]='4' is invalid; expected a positive integer, got a str"),
        ({"patch_size": "4x16"}, r"patch_size='4x16' is invalid; expected two positive integers"),
        ({"use_cls_token": "yes"}, r"use_cls_token='yes' is invalid; expected True or False, got a str"),
        ({"alternate_directions": 1}, r"alternate_directions=1 is invalid; expected True or False, got a int"),
        ({"norm_eps": float("nan")}, r"norm_eps=nan is invalid; expected a finite non-negative number"),
        ({"final_norm_eps": float("inf")}, r"final_norm_eps=inf is invalid"),
        ({"mlstm_eps": -1e-6}, r"mlstm_eps=-1e-06 is invalid; expected a finite non-negative number"),
        ({"initializer_range": float("nan")}, r"initializer_range=nan is invalid"),
        ({"input_gate_bias_std": "0.1"}, r"input_gate_bias_std='0.1' is invalid; .* got a str"),
        ({"mask_ratio": float("nan")}, r"mask_ratio=nan is invalid"),
        ({"drop_path_rate": float("nan")}, r"drop_path_rate=nan is invalid; expected a number in \[0, 1\)"),
        ({"classifier_dropout": "0.1"}, r"classifier_dropout='0.1' is invalid; .* got a str"),
        (
            {"forget_gate_bias_range": (6.0, 3.0)},
            r"forget_gate_bias_range=\[6.0, 3.0\] is invalid; expected low <= high",
        ),
        ({"forget_gate_bias_range": (3.0, float("inf"))}, r"forget_gate_bias_range\[1\]=inf is invalid"),
        ({"forget_gate_bias_range": ("a", 6)}, r"forget_gate_bias_range\[0\]='a' is invalid; .* got a str"),
        ({"forget_gate_bias_range": 3.0}, r"forget_gate_bias_range=3.0 is invalid; expected two finite numbers"),
        ({"loss_on": ["all"]}, r"loss_on=\['all'\] is invalid"),
    ],
)
def test_invalid_configurations_name_field_and_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AxLSTMConfig(**kwargs)


def test_round_trip_keeps_every_field_and_labels(tmp_path):
    config = AxLSTMConfig.from_preset(
        "tiny", patch_size=(2, 16), loss_on="masked", id2label={0: "dog", 1: "rain"}, forget_gate_bias_range=(2, 5)
    )
    assert config.label2id == {"dog": 0, "rain": 1}
    config.save_pretrained(tmp_path)
    loaded = AxLSTMConfig.from_pretrained(tmp_path)
    assert loaded.patch_size == [2, 16]
    assert loaded.forget_gate_bias_range == [2.0, 5.0]
    assert loaded.loss_on == "masked"
    assert loaded.id2label == {0: "dog", 1: "rain"} and loaded.label2id == {"dog": 0, "rain": 1}
    assert loaded.num_labels == 2
    assert loaded.to_diff_dict() == config.to_diff_dict()


def test_integral_values_are_stored_as_plain_ints_and_floats():
    # An integral float (hand-written JSON) or numpy scalars are accepted and stored as plain Python numbers.
    import numpy as np

    config = AxLSTMConfig(
        hidden_size=np.int64(32), patch_size=(4.0, 16), frames_per_window=100.0, mask_ratio=np.float32(0.25)
    )
    assert config.hidden_size == 32 and type(config.hidden_size) is int
    assert config.patch_size == [4, 16] and all(type(p) is int for p in config.patch_size)
    assert type(config.frames_per_window) is int and type(config.mask_ratio) is float
    assert config.to_json_string()  # plain JSON


def test_an_invalid_config_json_gives_the_same_error(tmp_path):
    import json

    from transformers import AutoConfig

    AxLSTMConfig(hidden_size=32, num_hidden_layers=2).save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    values = json.loads(path.read_text())
    path.write_text(json.dumps({**values, "num_heads": "4"}))
    for load in (AxLSTMConfig.from_pretrained, AutoConfig.from_pretrained):
        with pytest.raises(ValueError, match=r"num_heads='4' is invalid; expected a positive integer"):
            load(tmp_path)
    path.write_text(json.dumps(values))
    # Overrides given to from_pretrained are set after __init__: they are checked too.
    with pytest.raises(ValueError, match=r"num_heads=5 does not divide"):
        AxLSTMConfig.from_pretrained(tmp_path, num_heads=5)
    with pytest.raises(ValueError, match=r"use_cls_token='no' is invalid"):
        AxLSTMConfig.from_pretrained(tmp_path, use_cls_token="no")
    assert AxLSTMConfig.from_pretrained(tmp_path, num_heads=2).num_heads == 2


@pytest.mark.parametrize("family", ["axlstm", "ssast"])
def test_every_size_field_has_a_bound_and_one_past_it_is_refused(family):
    from hf_axlstm import SSASTConfig, configuration_axlstm, configuration_ssast

    if family == "axlstm":
        cls, fields, bounds = AxLSTMConfig, configuration_axlstm._INT_FIELDS, configuration_axlstm.AXLSTM_SIZE_BOUNDS
    else:
        cls, fields, bounds = SSASTConfig, configuration_ssast._INT_FIELDS, configuration_ssast.SSAST_SIZE_BOUNDS
    assert set(fields) <= set(bounds), set(fields) - set(bounds)
    for name in fields:
        with pytest.raises(
            ValueError, match=rf"^{name}={bounds[name] + 1} is too large; expected at most {bounds[name]}"
        ):
            cls(**{name: bounds[name] + 1})
    with pytest.raises(ValueError, match=r"patch_size\[0\]=1025 is too large"):
        cls(patch_size=[1025, 16])


def test_id2label_keys_are_class_indices(tmp_path):
    import json

    from transformers import AutoConfig

    config = AxLSTMConfig(hidden_size=32, num_hidden_layers=2, id2label={"1": "b", "0": "a"})
    assert config.id2label == {0: "a", 1: "b"} and config.num_labels == 2
    config.save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    values = json.loads(path.read_text())
    path.write_text(json.dumps({**values, "id2label": {"0": "a", "5": "b"}, "label2id": {"a": 0, "b": 5}}))
    with pytest.raises(
        ValueError, match=r"id2label has the keys \[0, 5\]; expected the class indices 0..1, each once"
    ):
        AutoConfig.from_pretrained(tmp_path)
    # an override given to from_pretrained is checked before a label map is built from it
    path.write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"num_labels=1000000000 is too large; expected at most 100000"):
        AxLSTMConfig.from_pretrained(tmp_path, num_labels=10**9)


def test_mixer_implementation_is_chosen_per_process_and_never_saved(tmp_path):
    """Like transformers' attn_implementation: set in the config or when loading, not written to config.json."""
    from hf_axlstm import AxLSTMModel

    config = AxLSTMConfig.from_preset("tiny", num_hidden_layers=1, mixer_implementation="plain")
    assert config.mixer_implementation == "plain"
    AxLSTMModel(config).save_pretrained(tmp_path)
    assert "mixer_implementation" not in (tmp_path / "config.json").read_text()
    assert AxLSTMConfig.from_pretrained(tmp_path).mixer_implementation == "auto"
    loaded = AxLSTMModel.from_pretrained(tmp_path, mixer_implementation="folded")
    assert loaded.config.mixer_implementation == "folded"
    assert all(layer.mixer.config.mixer_implementation == "folded" for layer in loaded.layers)
    loaded.set_mixer_implementation("plain")
    assert all(layer.mixer.config.mixer_implementation == "plain" for layer in loaded.layers)
    assert AxLSTMConfig.from_dict(loaded.config.to_dict()).mixer_implementation == "auto"

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
        ({"hidden_size": 30, "qkv_block_size": 8}, r"qkv_block_size=8 does not divide .* = 60"),
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

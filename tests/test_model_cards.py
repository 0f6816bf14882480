# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""model_cards/axlstm-{tiny,small,base}.md: Hub metadata parses, required sections exist, parameter counts are true."""

from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from hf_axlstm import AxLSTMConfig, AxLSTMForPreTraining, AxLSTMModel

CARDS = Path(__file__).resolve().parents[1] / "model_cards"
SECTIONS = [
    "## Architecture",
    "## Pretraining recipe",
    "## Converting the authors' weights",
    "## How to use",
    "## Embedding layouts",
    "## Reproducing the evaluation",
    "## Intended use and limitations",
]


@pytest.mark.parametrize("size", ["tiny", "small", "base"])
def test_model_card_metadata_sections_and_parameter_counts(size):
    card = ModelCard.load(CARDS / f"axlstm-{size}.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] in ("feature-extraction", "audio-classification")
    assert data["license"] == "apache-2.0"
    assert "audioset" in data["datasets"]
    assert {"audio", "axlstm", "xlstm"} <= set(data["tags"])
    for section in SECTIONS:
        assert section in card.text, section
    assert "python -m hf_axlstm.convert_official" in card.text and "huggingface-cli upload" in card.text
    assert 'layout="official"' in card.text and 'layout="time_major"' in card.text

    config = AxLSTMConfig.from_preset(size)
    with torch.device("meta"):
        encoder = sum(p.numel() for p in AxLSTMModel(config).parameters() if p.requires_grad)
        total = sum(p.numel() for p in AxLSTMForPreTraining(config).parameters())
    assert f"| {encoder:,} |" in card.text
    assert f"| {encoder - config.hidden_size:,} |" in card.text  # without the mask token
    assert f"| {total:,} |" in card.text
    assert f"{5 * config.hidden_size} per frame" in card.text


def test_tiny_encoder_parameter_count():
    with torch.device("meta"):
        model = AxLSTMModel(AxLSTMConfig.from_preset("tiny"))
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert count - model.config.hidden_size == 2_867_808  # the paper's 2.87 M; + 192 for the mask token

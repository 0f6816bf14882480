# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""One table of bad inputs and faults over every public entry (API and CLI), each with the error it must give.

The cases live in `tests/cases_*.py` (one module per area); the case types and runners in `tests/badinputs.py`.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from .badinputs import Api, Cli, Context, check_error_output, run_cli

_MODULES = sorted(p.stem for p in Path(__file__).parent.glob("cases_*.py"))
CASES = [case for name in _MODULES for case in importlib.import_module(f".{name}", __package__).CASES]


@pytest.fixture(scope="session")
def ctx(tmp_path_factory) -> Context:
    import torch

    from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMForAudioClassification, AxLSTMForPreTraining

    from .badinputs import load_example

    root = tmp_path_factory.mktemp("bad_inputs")
    torch.manual_seed(0)
    config = AxLSTMConfig(hidden_size=32, num_hidden_layers=2, id2label={0: "tone", 1: "noise", 2: "click"})
    classifier_dir, pretrain_dir = root / "classifier", root / "pretrained"
    AxLSTMForAudioClassification(config).save_pretrained(classifier_dir)
    AxLSTMFeatureExtractor().save_pretrained(classifier_dir)
    AxLSTMForPreTraining(AxLSTMConfig(hidden_size=32, num_hidden_layers=2)).save_pretrained(pretrain_dir)
    AxLSTMFeatureExtractor().save_pretrained(pretrain_dir)
    wav_dir = root / "wavs"
    load_example("synthetic_audio").make_corpus(
        wav_dir, clips_per_class=2, min_seconds=0.5, max_seconds=1.0, classes=("tone", "noise")
    )
    return Context(root=root, classifier_dir=classifier_dir, pretrain_dir=pretrain_dir, wav_dir=wav_dir)


def test_the_table_is_big_and_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert len(CASES) >= 80, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input(case, ctx, tmp_path, capsys):
    if isinstance(case, Api):
        with pytest.raises(case.exc) as info:
            case.call(ctx, tmp_path)
        assert re.search(case.match, str(info.value)), f"{case.match!r} not in {str(info.value)!r}"
    else:
        assert isinstance(case, Cli)
        argv = case.argv(ctx, tmp_path)
        capsys.readouterr()
        code = run_cli(case.script, argv)
        err = capsys.readouterr().err
        assert code == case.code, f"exit code {code}, expected {case.code}; stderr:\n{err}"
        check_error_output(err, case.match)

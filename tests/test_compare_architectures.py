# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""examples/compare_architectures.py: a tiny end-to-end equal-budget comparison, reuse of finished runs, errors."""

from __future__ import annotations

import json

import pytest

from .badinputs import load_example

compare = load_example("compare_architectures")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    synthetic = load_example("synthetic_audio")
    root = tmp_path_factory.mktemp("compare")
    synthetic.make_corpus(root / "pretrain", clips_per_class=2, min_seconds=0.6, max_seconds=1.2, seed=1)
    synthetic.make_corpus(
        root / "task", clips_per_class=6, min_seconds=0.6, max_seconds=1.2, seed=2, classes=("tone", "noise", "clicks")
    )
    (root / "task.json").write_text(json.dumps({"name": "three", "data": "task", "validation_fraction": 0.2}))
    return root


BUDGET = ["--hidden_size", "32", "--num_hidden_layers", "2", "--max_train_steps", "2", "--per_device_train_batch_size",
          "4", "--seeds", "0", "1", "--eval_args", "--max_epochs 3 --patience 2"]  # fmt: skip


@pytest.mark.slow
def test_equal_budget_table_and_reuse(data, tmp_path, capsys):
    argv = ["--train_dir", str(data / "pretrain"), "--task", str(data / "task.json"), "--output_dir", str(tmp_path),
            *BUDGET, "--variant", "axlstm=axlstm", "--variant", "ssast=ssast",
            "--variant", "ssast-fixed=ssast:mask_token_positions=true:loss_on=masked"]  # fmt: skip
    table = compare.run(argv).read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"axlstm", "ssast", "ssast-fixed", "axlstm (random init)", "ssast (random init)", "log-mel"}
    assert "three (accuracy)" in table and "vs ssast" in table and "+0.0%" in rows["ssast"]
    for name in ("axlstm", "ssast", "ssast-fixed"):
        config = json.loads((tmp_path / "pretrain" / name / "config.json").read_text())
        assert config["model_type"] == name.split("-")[0]
        facts = json.loads((tmp_path / "pretrain" / name / "compare_run.json").read_text())
        assert facts["steps"] == 2 and facts["final_val_loss"] is not None
    fixed = json.loads((tmp_path / "pretrain" / "ssast-fixed" / "config.json").read_text())
    assert fixed["mask_token_positions"] is True and fixed["loss_on"] == "masked"
    assert "Equal budget: 2 steps of batch 4" in table
    # parameters: SSAST at width 32 with 2 blocks has more than AxLSTM (the paper's "fewer parameters")
    params = {
        n: json.loads((tmp_path / "pretrain" / n / "compare_run.json").read_text())["params"]
        for n in rows
        if n in ("axlstm", "ssast")
    }
    assert params["axlstm"] < params["ssast"]
    capsys.readouterr()
    compare.run(argv)  # again: the finished runs are reused, only the evaluation runs
    assert capsys.readouterr().out.count("reusing the finished run") == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--variant", "x=lstm"], "model type 'lstm' is not one of axlstm, ssast"),
        (["--variant", "x=ssast:mask_ratio=high"], "mask_ratio must be a number"),
        (["--variant", "x=ssast:positions=true"], "'positions=true' is not key=value with a key in"),
        (["--variant", "x=ssast", "--variant", "x=axlstm"], "names must be unique"),
        (["--variant", "a=axlstm"], "--reference 'ssast' is not one of the variants"),
        (["--max_train_steps", "0"], "--max_train_steps=0 is invalid"),
    ],
)
def test_bad_flags_are_one_error_line(data, tmp_path, capsys, extra, message):
    argv = ["--train_dir", str(data / "pretrain"), "--task", str(data / "task.json"), "--output_dir", str(tmp_path)]
    assert compare.main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1 and "Traceback" not in err


def test_a_source_and_a_task_are_required(tmp_path, capsys):
    assert compare.main(["--output_dir", str(tmp_path), "--task", "t.json"]) == 2
    assert "give exactly one of --train_dir" in capsys.readouterr().err

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""examples/evaluate_embeddings.py on two tiny generated tasks (single- and multi-label) and three models."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMModel

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"examples_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"examples_{name}"] = module
    spec.loader.exec_module(module)
    return module


evaluate_embeddings = load_script("evaluate_embeddings")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_tasks")
    rng = np.random.default_rng(0)
    # Task "pitch": an audiofolder with split folders, three classes, clips of different lengths.
    for i in range(24):
        cls, split = i % 3, ("train" if i < 15 else ("validation" if i < 18 else "test"))
        folder = root / "pitch" / split / f"c{cls}"
        folder.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(SR * (0.4 + 0.1 * (i % 4)))) / SR
        wave = 0.5 * np.sin(2 * np.pi * [300, 1000, 3000][cls] * t) + 0.05 * rng.standard_normal(t.shape)
        sf.write(folder / f"{i}.wav", wave.astype(np.float32), SR)
    (root / "pitch.json").write_text(json.dumps({"name": "pitch", "data": "pitch"}))
    # Task "tags": one CSV, multi-label with "|"-separated strings, splits carved by seed.
    (root / "tags").mkdir()
    rows = []
    for i in range(20):
        t = np.arange(SR // 2) / SR
        wave, tags = 0.02 * rng.standard_normal(t.shape), []
        if i % 2:
            wave += 0.4 * np.sin(2 * np.pi * 500 * t)
            tags.append("tone")
        if i % 3 == 0:
            wave[2000:5000] += 0.5 * rng.standard_normal(3000)
            tags.append("burst")
        sf.write(root / "tags" / f"{i}.wav", wave.astype(np.float32), SR)
        rows.append({"path": f"tags/{i}.wav", "tags": "|".join(tags) or "none"})
    with open(root / "tags.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["path", "tags"])
        writer.writeheader()
        writer.writerows(rows)
    spec = {"data": "tags.csv", "audio_column": "path", "label_column": "tags", "label_delimiter": "|"}
    (root / "tags.json").write_text(json.dumps({**spec, "validation_fraction": 0.2, "test_fraction": 0.2}))
    torch.manual_seed(0)
    AxLSTMModel(AxLSTMConfig(hidden_size=32, num_hidden_layers=2)).save_pretrained(root / "tiny")
    AxLSTMFeatureExtractor().save_pretrained(root / "tiny")
    return root


def test_two_tasks_three_models_table_csv_chart_and_cache(tasks, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    argv = [
        "--task",
        str(tasks / "pitch.json"),
        "--task",
        str(tasks / "tags.json"),
        "--model",
        f"pretrained={tasks / 'tiny'}",
        "--model",
        f"random=random:{tasks / 'tiny'}",
        "--model",
        "logmel=logmel",
        "--seeds",
        "0",
        "1",
        "--max_epochs",
        "4",
        "--patience",
        "2",
        "--output_dir",
        str(out),
        "--device",
        "cpu",
    ]
    assert evaluate_embeddings.main(argv) == 0
    table = (out / "results.md").read_text()
    assert "| model | pitch (accuracy) | tags (mAP) | normalised |" in table
    for name in ("pretrained", "random", "logmel"):
        assert f"| {name} |" in table
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 + 3
    scores = {(r["model"], r["task"]): r for r in rows}
    assert scores[("logmel", "tags")]["metric"] == "mAP"
    assert all(0 <= float(r["mean"]) <= 1 for r in rows if r["task"] != "aggregate")
    assert max(float(scores[(m, "aggregate")]["normalized"]) for m in ("pretrained", "random", "logmel")) <= 100
    assert (out / "results.png").stat().st_size > 1000
    cached = sorted((out / "embeddings").rglob("*.npz"))
    assert len(cached) == 6
    pitch = np.load(next(p for p in cached if p.parent.name == "pretrained" and p.name.startswith("pitch")))
    assert pitch["train"].shape == (15, 5 * 32) and pitch["test"].shape == (6, 5 * 32)

    # A second run into the same folder is refused (the results would be replaced), and names the flag.
    before = (out / "results.md").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        evaluate_embeddings.main(argv)
    assert exit_info.value.code == 2
    assert "already holds the results of an earlier run" in capsys.readouterr().err
    assert (out / "results.md").read_bytes() == before
    # With --overwrite_output_dir it reads every embedding from the cache: extraction must not run.
    argv = [*argv, "--overwrite_output_dir"]
    monkeypatch.setattr(evaluate_embeddings, "extract", lambda *a, **k: pytest.fail("embeddings re-extracted"))
    assert evaluate_embeddings.main(argv) == 0
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]  # the staged results were all moved in place
    # A different layout is a different cache entry.
    monkeypatch.undo()
    assert evaluate_embeddings.main([*argv[:6], "--layout", "official", *argv[10:]]) == 0
    assert len(sorted((out / "embeddings").rglob("*.npz"))) == 8


def test_mlp_matches_the_paper_head():
    mlp = evaluate_embeddings.DownstreamMLP(20, 4)
    kinds = [type(m).__name__ for m in mlp]
    assert kinds == ["Linear", "BatchNorm1d", "Dropout", "ReLU", "Linear"]
    assert mlp[0].out_features == 1024 and mlp[2].p == 0.1


def test_mean_ci95_uses_student_t():
    mean, half = evaluate_embeddings.mean_ci95([0.5, 0.7])
    assert mean == pytest.approx(0.6)
    assert half == pytest.approx(12.706204736 * np.std([0.5, 0.7], ddof=1) / np.sqrt(2))


def test_bad_specs_give_one_clear_error(tasks, tmp_path, capsys):
    (tmp_path / "bad.json").write_text(json.dumps({"data": "x", "labels": "y"}))
    base = ["--output_dir", str(tmp_path / "o"), "--model", "logmel=logmel"]
    assert evaluate_embeddings.main(["--task", str(tmp_path / "bad.json"), *base]) == 2
    assert "unknown keys ['labels']" in capsys.readouterr().err
    assert evaluate_embeddings.main(["--task", str(tasks / "tags.json"), "--model", "nonsense", *base[:2]]) == 2
    assert "NAME=SPEC" in capsys.readouterr().err
    (tmp_path / "nolabel.json").write_text(json.dumps({"data": str(tasks / "tags.csv"), "audio_column": "path"}))
    assert evaluate_embeddings.main(["--task", str(tmp_path / "nolabel.json"), *base]) == 2
    assert "no column 'label'" in capsys.readouterr().err


def test_clips_that_give_non_finite_embeddings_are_named():
    values = [{"array": np.zeros(4000, np.float32), "sampling_rate": SR, "path": "quiet.wav"}]
    values.append({"array": np.full(4000, 1e30, np.float32), "sampling_rate": SR, "path": "loud.wav"})
    with pytest.raises(evaluate_embeddings.AudioDecodeError, match=r"audio 'loud.wav' gives NaN or Inf embeddings"):
        evaluate_embeddings.extract(evaluate_embeddings.LogMelBaseline(), values, None, batch_size=4)
    values[1] = {"array": np.zeros(0, np.float32), "sampling_rate": SR, "path": "empty.wav"}
    with pytest.raises(evaluate_embeddings.AudioDecodeError, match=r"audio 'empty.wav' has no samples"):
        evaluate_embeddings.extract(evaluate_embeddings.LogMelBaseline(), values, None, batch_size=4)

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""examples/finetune.py: every mode on generated audio, the saved folder in a pipeline, multi-label data, seeded
splits, and one clear error for each kind of bad input; plus the local metric scripts."""

import csv
import importlib.util
import json
import math
import subprocess
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
    sys.modules[f"examples_{name}"] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


finetune = load_script("finetune")


def tone(freq: float, seconds: float, rng, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """CSV splits (relative paths, one clip at 22.05 kHz), an audiofolder with only class folders, a tiny model."""
    root = tmp_path_factory.mktemp("finetune")
    rng = np.random.default_rng(0)
    (root / "wav").mkdir()
    rows = {"train": [], "validation": [], "test": []}
    for i in range(16):
        cls = i % 2
        split = "train" if i < 10 else ("validation" if i < 13 else "test")
        sr = 22050 if i == 0 else SR
        sf.write(root / "wav" / f"{i}.wav", tone([440, 2000][cls], 0.6, rng, sr), sr)
        tags = ["low", "high"][cls] + (",noisy" if i % 3 == 0 else "")
        rows[split].append({"file": f"wav/{i}.wav", "label": ["low", "high"][cls], "tags": tags})
    for split, split_rows in rows.items():
        write_csv(root / f"{split}.csv", split_rows)
    folder = root / "folder"
    for i in range(10):
        cls = ["dog", "cat"][i % 2]
        (folder / cls).mkdir(parents=True, exist_ok=True)
        sf.write(folder / cls / f"{i}.wav", tone([300, 3000][i % 2], 0.5, rng), SR)
    torch.manual_seed(0)
    model = AxLSTMModel(AxLSTMConfig(hidden_size=32, num_hidden_layers=2))
    model.save_pretrained(root / "tiny")
    AxLSTMFeatureExtractor().save_pretrained(root / "tiny")
    return root


def base_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path",
        str(data / "tiny"),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "4",
        "--use_cpu",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        *extra,
    ]


def run_ok(args: list[str]) -> None:
    assert finetune.main(args) == 0


@pytest.mark.parametrize("mode", ["full", "linear_probe", "lld"])
def test_each_mode_trains_and_saves_a_pipeline_folder(data, tmp_path, mode):
    from transformers import pipeline

    out = tmp_path / mode
    extra = ["--time_masks", "2", "--freq_masks", "1", "--mixup_alpha", "0.4"] if mode == "full" else []
    run_ok(base_args(data, out, "--dataset_name", str(data), "--audio_column", "file", "--mode", mode, *extra))

    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "high", "1": "low"}
    assert set(config["auto_map"]) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForPreTraining",
        "AutoModelForAudioClassification",
        "AutoFeatureExtractor",
    }
    assert (out / "preprocessor_config.json").exists()
    for split in ("eval", "test"):
        metrics = json.loads((out / f"{split}_results.json").read_text())
        assert {f"{split}_accuracy", f"{split}_macro_f1", f"{split}_mAP"} <= set(metrics)

    classifier = pipeline("audio-classification", model=str(out), device="cpu")
    scores = classifier(tone(440, 0.7, np.random.default_rng(1)))
    assert {s["label"] for s in scores} == {"low", "high"}
    assert abs(sum(s["score"] for s in scores) - 1) < 1e-4

    if mode == "linear_probe":  # the encoder is frozen: its weights are exactly the pretrained ones
        before = AxLSTMModel.from_pretrained(data / "tiny").state_dict()
        after = classifier.model.axlstm.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_linear_probe_of_ssast_freezes_its_encoder_and_trains_the_head(data, tmp_path):
    """`--mode linear_probe` freezes the base model of either architecture (it named AxLSTM's attribute and failed with
    an AttributeError on SSAST)."""
    from safetensors.torch import load_file

    from hf_axlstm import SSASTConfig, SSASTModel

    torch.manual_seed(0)
    source = tmp_path / "ssast"
    SSASTModel(SSASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)).save_pretrained(source)
    AxLSTMFeatureExtractor().save_pretrained(source)
    out = tmp_path / "probe"
    args = base_args(data, out, "--dataset_name", str(data), "--audio_column", "file", "--mode", "linear_probe")
    args[1] = str(source)
    run_ok(args)
    before, after = load_file(source / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(value, after[f"ssast.{key}"]) for key, value in before.items())
    assert json.loads((out / "train_results.json").read_text())["train_loss"] > 0


def test_layer_decay_groups_scale_learning_rate_by_depth():
    from hf_axlstm import AxLSTMForAudioClassification

    model = AxLSTMForAudioClassification(AxLSTMConfig(hidden_size=32, num_hidden_layers=3, id2label={0: "a", 1: "b"}))
    groups = finetune.layer_decay_groups(model, 1.0, 0.05, 0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert lr_of[id(model.classifier.weight)] == 1.0
    assert lr_of[id(model.axlstm.layers[2].mixer.proj_up.weight)] == 0.5
    assert lr_of[id(model.axlstm.layers[0].mixer.proj_up.weight)] == 0.125
    assert lr_of[id(model.axlstm.embeddings.patch_embeddings.projection.weight)] == 0.0625
    assert wd_of[id(model.classifier.bias)] == 0.0 and wd_of[id(model.classifier.weight)] == 0.05
    assert wd_of[id(model.axlstm.embeddings.cls_token)] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_multi_label_from_delimited_strings(data, tmp_path):
    out = tmp_path / "multi"
    args = ["--train_file", str(data / "train.csv"), "--validation_file", str(data / "validation.csv")]
    run_ok(base_args(data, out, *args, "--audio_column", "file", "--label_column", "tags", "--label_delimiter", ","))
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert sorted(config["id2label"].values()) == ["high", "low", "noisy"]
    metrics = json.loads((out / "eval_results.json").read_text())
    assert "eval_mAP" in metrics and "eval_macro_f1" in metrics


def test_audiofolder_with_only_train_gets_seeded_splits(data, tmp_path):
    splits, space = finetune.prepare_splits(finetune.DataArguments(dataset_name=str(data / "folder")), seed=3)
    again, _ = finetune.prepare_splits(finetune.DataArguments(dataset_name=str(data / "folder")), seed=3)
    assert space.labels == ["cat", "dog"]
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [8, 1, 1]
    assert splits["test"]["labels"] == again["test"]["labels"]
    run_ok(base_args(data, tmp_path / "af", "--dataset_name", str(data / "folder"), "--mode", "linear_probe"))


# ------------------------------------------------------------------------------------------------------ bad input


def bad(data: Path, tmp_path: Path, capsys, *args: str) -> str:
    code = finetune.main(base_args(data, tmp_path / "bad", *args))
    assert code != 0
    return capsys.readouterr().err


def test_missing_column_is_named(data, tmp_path, capsys):
    err = bad(data, tmp_path, capsys, "--dataset_name", str(data), "--audio_column", "path")
    assert "no column 'path'" in err and "['file', 'label', 'tags']" in err


def test_label_absent_from_train_is_named(data, tmp_path, capsys):
    rows = [
        {"file": str(data / "wav" / "0.wav"), "label": "low"},
        {"file": str(data / "wav" / "1.wav"), "label": "high"},
    ]
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "validation.csv", [{"file": str(data / "wav" / "2.wav"), "label": "middle"}])
    err = bad(data, tmp_path, capsys, "--dataset_name", str(tmp_path), "--audio_column", "file")
    assert "label 'middle' in split 'validation'" in err and "does not occur in the train split" in err


def test_empty_split_is_named(data, tmp_path, capsys):
    write_csv(tmp_path / "train.csv", [{"file": str(data / "wav" / "0.wav"), "label": "low"}])
    (tmp_path / "validation.csv").write_text("file,label\n")
    err = bad(data, tmp_path, capsys, "--dataset_name", str(tmp_path), "--audio_column", "file")
    assert "split 'validation' is empty" in err


def test_unreadable_audio_file_is_named(data, tmp_path, capsys):
    (tmp_path / "broken.wav").write_bytes(b"not a wav file at all")
    rows = [{"file": "broken.wav", "label": "low"}, {"file": str(data / "wav" / "1.wav"), "label": "high"}]
    write_csv(tmp_path / "train.csv", rows * 2)
    write_csv(tmp_path / "validation.csv", rows[1:])
    err = bad(data, tmp_path, capsys, "--dataset_name", str(tmp_path), "--audio_column", "file")
    assert "broken.wav" in err and "cannot read audio file" in err


def test_missing_dataset_is_named(data, tmp_path, capsys):
    err = bad(data, tmp_path, capsys, "--dataset_name", str(tmp_path / "nowhere"))
    assert "nowhere" in err and "does not exist" in err


def test_cli_error_has_no_traceback(data, tmp_path):
    args = base_args(
        data, tmp_path / "cli", "--dataset_name", str(data), "--audio_column", "file", "--label_column", "genre"
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "finetune.py"), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "no column 'genre'" in result.stderr


def test_output_dir_of_a_finished_run_is_refused_without_overwrite(data, tmp_path, capsys):
    out = tmp_path / "run"
    args = base_args(data, out, "--dataset_name", str(data), "--audio_column", "file", "--mode", "linear_probe")
    run_ok(args)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        finetune.main(args)
    assert exit_.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"--output_dir {str(out)!r} is not empty" in errors[0], errors
    assert "--overwrite_output_dir" in errors[0] and "--resume_from_checkpoint" in errors[0]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_overwrite_output_dir_deletes_the_old_checkpoints(data, tmp_path):
    out = tmp_path / "run"
    args = base_args(data, out, "--dataset_name", str(data), "--audio_column", "file", "--mode", "linear_probe")
    run_ok(args)
    (out / "checkpoint-99").mkdir()  # an earlier run's checkpoint: must not be resumed from later
    (out / "checkpoint-99" / "trainer_state.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    (out / "eval_results.json").write_text('{"stale": 1}')
    run_ok([*args, "--overwrite_output_dir"])
    assert not (out / "checkpoint-99").exists() and (out / "notes.txt").read_text() == "mine"
    assert "stale" not in json.loads((out / "eval_results.json").read_text())
    assert (out / "model.safetensors").is_file()


# --------------------------------------------------------------------------------------------------------- metrics


def test_local_metric_scripts():
    import evaluate

    metrics = REPO / "examples" / "metrics"
    accuracy = evaluate.load(str(metrics / "accuracy.py"))
    assert accuracy.compute(predictions=[0, 1, 1, 2], references=[0, 1, 0, 2]) == {"accuracy": 0.75}
    f1 = evaluate.load(str(metrics / "macro_f1.py"))
    # class 0: P=1, R=.5 -> 2/3; class 1: P=.5, R=1 -> 2/3; class 2: 1
    assert f1.compute(predictions=[0, 1, 1, 2], references=[0, 1, 0, 2])["macro_f1"] == pytest.approx(7 / 9)
    f1_multi = evaluate.load(str(metrics / "macro_f1.py"), "multilabel")
    assert f1_multi.compute(predictions=[[1, 0], [1, 1]], references=[[1, 0], [0, 1]])["macro_f1"] == pytest.approx(
        (2 / 3 + 1) / 2
    )
    mean_ap = evaluate.load(str(metrics / "mean_average_precision.py"))
    scores = [[0.9, 0.1], [0.8, 0.7], [0.1, 0.2]]
    # class 0 positives ranked 1st and 3rd: (1 + 2/3) / 2; class 1 positive ranked 1st: 1
    result = mean_ap.compute(predictions=scores, references=[[1, 0], [0, 1], [1, 0]])
    assert result["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)


def test_finetune_from_the_authors_checkpoint_then_hear(data, official_dir, tmp_path):
    from hf_axlstm import AxLSTMForAudioClassification, hear
    from hf_axlstm.convert_official import convert_checkpoint

    out = tmp_path / "official"
    checkpoint = official_dir / "official_checkpoint.pth"
    args = base_args(data, out, "--dataset_name", str(data), "--audio_column", "file", "--mode", "linear_probe")
    args[1] = str(checkpoint)  # --model_name_or_path
    run_ok(args)
    model = AxLSTMForAudioClassification.from_pretrained(out)
    reference = convert_checkpoint(checkpoint).axlstm.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in model.axlstm.state_dict().items())
    # The fine-tuned folder also serves the HEAR API (AutoModel takes the encoder out of it).
    embedder = hear.load_model(str(out), device="cpu")
    assert hear.get_scene_embeddings(torch.zeros(1, 8000), embedder).shape == (1, 5 * 64)


@pytest.mark.parametrize(
    "name,model_type,params",
    [("tiny", "axlstm", 2.87), ("ssast-tiny", "ssast", 5.35)],
    ids=["axlstm-tiny", "ssast-tiny"],
)
def test_config_name_builds_either_architecture_from_scratch(name, model_type, params):
    space = finetune.LabelSpace(["a", "b", "c"], multi_label=False)
    model, extractor = finetune.build_model(finetune.ModelArguments(config_name=name), space)
    assert model.config.model_type == model_type
    assert type(model).__name__ == f"{'SSAST' if model_type == 'ssast' else 'AxLSTM'}ForAudioClassification"
    encoder = sum(p.numel() for p in model.base_model.parameters() if p.requires_grad) / 1e6
    assert encoder == pytest.approx(params, abs=0.005)
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"}
    logits = model(torch.randn(2, 200, 80)).logits
    assert logits.shape == (2, 3)
    assert isinstance(extractor, AxLSTMFeatureExtractor)


def test_config_name_reads_a_config_json_of_either_type(tmp_path):
    from hf_axlstm import SSASTConfig

    space = finetune.LabelSpace(["a", "b"], multi_label=False)
    SSASTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4).save_pretrained(tmp_path / "s")
    model, _ = finetune.build_model(finetune.ModelArguments(config_name=str(tmp_path / "s" / "config.json")), space)
    assert model.config.model_type == "ssast" and model.config.hidden_size == 64
    (tmp_path / "bert.json").write_text('{"model_type": "bert"}')
    with pytest.raises(finetune.ModelInputError, match=r"model_type 'bert'; expected one of \['axlstm', 'ssast'\]"):
        finetune.scratch_config(str(tmp_path / "bert.json"))
    with pytest.raises(finetune.ModelInputError, match=r"'ssast-huge' is neither a config.json file nor a preset"):
        finetune.scratch_config("ssast-huge")


# ---------------------------------------------------------------------------------------------- what a run does


def docstring_command(data: Path, out: Path, *extra: str) -> list[str]:
    """The module docstring's command (tiny model, tiny data, one epoch): --eval_strategy epoch, no --do_train."""
    return [
        "--model_name_or_path", str(data / "tiny"), "--dataset_name", str(data), "--audio_column", "file",
        "--output_dir", str(out), "--mode", "full", "--num_train_epochs", "1", "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-3", "--eval_strategy", "epoch", "--save_strategy", "epoch", "--load_best_model_at_end",
        "--metric_for_best_model", "accuracy", "--time_masks", "2", "--freq_masks", "2", "--mixup_alpha", "0.5",
        "--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--cpu_kernels", "eager", *extra,
    ]  # fmt: skip


def test_the_docstring_command_trains_and_saves_the_model(data, tmp_path):
    """`--eval_strategy epoch` sets the Trainer's do_eval; it must not turn training off (it did: chance metrics,
    no model, exit 0)."""
    from safetensors.torch import load_file

    out = tmp_path / "run"
    assert "--do_train" not in docstring_command(data, out)
    run_ok(docstring_command(data, out))
    train = json.loads((out / "train_results.json").read_text())
    assert train["epoch"] == 1 and math.isfinite(train["train_loss"])
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3  # 10 training clips, batch 4
    saved = load_file(str(out / "model.safetensors"))
    start = load_file(str(data / "tiny" / "model.safetensors"))
    changed = [k for k, v in start.items() if not torch.equal(saved[f"axlstm.{k}"], v)]
    assert len(changed) > len(start) // 2, changed  # the encoder trained
    assert {"eval_accuracy", "test_accuracy"} <= set(json.loads((out / "all_results.json").read_text()))


def test_do_eval_alone_is_an_evaluation_only_run(data, tmp_path):
    out = tmp_path / "eval"
    run_ok(base_args(data, out, "--dataset_name", str(data), "--audio_column", "file", "--do_eval"))
    assert (out / "eval_results.json").is_file()
    assert not (out / "train_results.json").exists() and not (out / "model.safetensors").exists()
    assert not (out / "test_results.json").exists()  # --do_predict was not asked for
    assert (
        finetune.wants_training(finetune.TrainingArguments(output_dir=str(out), do_eval=True), ["--do_eval"]) is False
    )
    for argv in (["--eval_strategy", "epoch"], ["--do_eval", "--do_train"], []):
        args = finetune.TrainingArguments(output_dir=str(out), do_eval=True, do_train="--do_train" in argv)
        assert finetune.wants_training(args, argv) is True


def test_int32_label_ids_train_like_int64(data):
    """Class ids arriving as int32 (Arrow / numpy) are cast for torch's losses, with and without mixup."""
    from hf_axlstm import AxLSTMForAudioClassification

    torch.manual_seed(0)
    model = AxLSTMForAudioClassification(AxLSTMConfig(hidden_size=32, num_hidden_layers=2, num_labels=3)).train()
    inputs = {"input_values": torch.randn(4, 200, 80), "attention_mask": torch.ones(4, 200, dtype=torch.long)}
    for mixup in (0.0, 0.4):
        trainer = object.__new__(finetune.AxLSTMTrainer)
        trainer.augment, trainer.multi_label = finetune.AugmentArguments(mixup_alpha=mixup), False
        losses = []
        for dtype in (torch.int32, torch.int64):
            np.random.seed(0)
            torch.manual_seed(0)
            labels = torch.tensor([0, 2, 1, 2], dtype=dtype)
            losses.append(trainer.compute_loss(model, {**inputs, "labels": labels}))
        torch.testing.assert_close(losses[0], losses[1])


# ---------------------------------------------------------------------------------------------- resume and faults


def test_resume_latest_skips_a_half_written_checkpoint(data, tmp_path, capsys):
    out = tmp_path / "run"
    args = base_args(data, out, "--dataset_name", str(data), "--audio_column", "file", "--mode", "linear_probe",
                     "--cpu_kernels", "eager")  # fmt: skip
    args[args.index("--save_strategy") + 1] = "steps"
    run_ok([*args, "--save_steps", "1"])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    optimizer = out / "checkpoint-2" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])  # killed (or a full disk) while torch.save wrote it
    capsys.readouterr()
    args[args.index("--max_steps") + 1] = "3"
    run_ok([*args, "--save_steps", "1", "--resume_from_checkpoint", "latest"])
    err = capsys.readouterr().err
    assert f"checkpoint {out / 'checkpoint-2'} is not usable: its file 'optimizer.pt' is truncated or damaged" in err
    assert "error:" not in err
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 3


def test_a_full_disk_while_the_trainer_saves_is_one_error_line(data, tmp_path, capsys, monkeypatch):
    """torch.save failing as it does on a full disk, simulated in-process (a RuntimeError from its zip writer)."""

    def full_disk(obj, f, *args, **kwargs):
        raise RuntimeError(f"[enforce fail at inline_container.cc:664] . unexpected pos 0 vs 64 ({f}): file write "
                           "failed")  # fmt: skip

    monkeypatch.setattr(torch, "save", full_disk)
    args = base_args(data, tmp_path / "run", "--dataset_name", str(data), "--audio_column", "file", "--mode",
                     "linear_probe", "--cpu_kernels", "eager")  # fmt: skip
    args[args.index("--save_strategy") + 1] = "steps"
    capsys.readouterr()
    assert finetune.main([*args, "--save_steps", "1"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "finetune.py: error: cannot write the run's files:" in errors[0], errors
    assert "file write failed" in errors[0]


def test_a_folder_in_use_is_refused_and_free_after_kill(data, tmp_path, capsys):
    import signal

    out = tmp_path / "busy"
    code = ("import sys, time\nfrom hf_axlstm.pretraining import OutputDirLock\n"
            "OutputDirLock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(600)\n")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    args = base_args(data, out, "--dataset_name", str(data), "--audio_column", "file", "--label_column", "nope")
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            finetune.main([*args, "--overwrite_output_dir"])
        assert exit_.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert (
            len(errors) == 1
            and f"--output_dir {str(out)!r} is in use by another run (process {holder.pid}" in (errors[0])
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    capsys.readouterr()
    assert finetune.main(args) == 2  # past the lock now: the data's own error
    assert "no column 'nope'" in capsys.readouterr().err


def test_metric_for_best_model_of_the_other_kind_of_data_is_named_before_training(data, tmp_path, capsys):
    args = ["--train_file", str(data / "train.csv"), "--validation_file", str(data / "validation.csv")]
    err = bad(data, tmp_path, capsys, *args, "--audio_column", "file", "--label_column", "tags", "--label_delimiter",
              ",", "--metric_for_best_model", "accuracy")  # fmt: skip
    assert "--metric_for_best_model 'accuracy' is not a metric of this run; multi-label data gives " in err
    assert not (tmp_path / "bad" / "model.safetensors").exists()


def test_do_predict_alone_needs_a_test_split(data, tmp_path, capsys):
    args = ["--train_file", str(data / "train.csv"), "--validation_file", str(data / "validation.csv")]
    err = bad(data, tmp_path, capsys, *args, "--audio_column", "file", "--do_predict")
    assert "finetune.py: error: --do_predict: the dataset has no test split to predict on." in err

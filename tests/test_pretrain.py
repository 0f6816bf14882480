# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Tests of examples/pretrain.py, examples/prepare_features.py and hf_axlstm.pretraining (tiny models, generated
audio). The CLI is run through subprocess where its exit code and stderr matter; otherwise `main()` in-process."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
TINY = ["--hidden_size", "32", "--num_hidden_layers", "2", "--no_progress_bar", "--seed", "0"]


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pretrain = _load_example("pretrain")
prepare_features = _load_example("prepare_features")
synthetic_audio = _load_example("synthetic_audio")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env["TQDM_DISABLE"] = "1"
    return env


def _run_cli(script: str, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, env=_env(), timeout=timeout
    )


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _log(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """15 clips (5 classes x 3) of 0.6-2.6 s: WAV 16 kHz, stereo FLAC 22.05 kHz and OGG 44.1 kHz."""
    root = tmp_path_factory.mktemp("corpus")
    synthetic_audio.make_corpus(root, clips_per_class=3, min_seconds=0.6, max_seconds=2.6, mixed_formats=True)
    return root


# ------------------------------------------------------------------------------------------------ library pieces


def test_crop_or_pad_pads_short_clips_with_zeros_and_never_tiles():
    from hf_axlstm.pretraining import crop_or_pad

    rng = np.random.default_rng(0)
    short = torch.randn(50, 80)
    values, mask = crop_or_pad(short, 200, rng)
    assert values.shape == (200, 80) and mask.tolist() == [1] * 50 + [0] * 150
    assert torch.equal(values[:50], short) and torch.count_nonzero(values[50:]) == 0
    long = torch.arange(300.0)[:, None].expand(300, 80)
    values, mask = crop_or_pad(long, 200, rng)
    assert bool(mask.all()) and torch.equal(values[:, 0], torch.arange(values[0, 0], values[0, 0] + 200))


def test_parameter_groups_decay_only_matrices():
    from hf_axlstm import AxLSTMConfig, AxLSTMForPreTraining
    from hf_axlstm.pretraining import parameter_groups

    model = AxLSTMForPreTraining(AxLSTMConfig.from_preset("tiny", hidden_size=32, num_hidden_layers=2))
    decay, no_decay = parameter_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_warmup_cosine_schedule_rises_linearly_then_decays_to_zero():
    from hf_axlstm.pretraining import warmup_cosine_lambda

    f = warmup_cosine_lambda(warmup_steps=4, total_steps=14)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == 1.0 and f(9) == pytest.approx(0.5) and f(14) == pytest.approx(0.0, abs=1e-12)
    assert all(f(s) >= f(s + 1) for s in range(4, 14))


def test_epoch_order_shards_are_disjoint_and_cover_the_single_process_order():
    from hf_axlstm.pretraining import epoch_order

    single = epoch_order(11, 3, 0, 0, 1)
    ranks = [epoch_order(11, 3, 0, r, 2) for r in range(2)]
    assert not set(ranks[0]) & set(ranks[1]) and len(ranks[0]) == len(ranks[1]) == 5
    assert [i for pair in zip(*ranks) for i in pair] == single[:10]
    assert epoch_order(11, 4, 0, 0, 1) != single


def test_format_duration_and_the_throughput_meter_leave_pauses_out(monkeypatch):
    from hf_axlstm import pretraining
    from hf_axlstm.pretraining import ThroughputMeter, format_duration

    assert format_duration(0) == "0:00:00" and format_duration(3725.4) == "1:02:05"
    assert format_duration(3 * 86400 + 4 * 3600 + 5 * 60 + 6) == "3d 04:05:06" and format_duration(math.nan) == "?"
    clock = iter([100.0, 110.0, 114.0, 115.0, 135.0])  # start, flush, pause begins, pause ends, flush
    monkeypatch.setattr(pretraining.time, "perf_counter", lambda: next(clock))
    meter = ThroughputMeter(num_processes=2)
    for _ in range(5):
        meter.step(8)
    assert meter.flush(steps_left=10) == (5 * 8 * 2 / 10.0, 10 * 10.0 / 5)  # 8 clips/s, 2 s a step
    meter.step(8)
    with meter.paused():  # 1 s of validation, not training
        pass
    assert meter.flush(steps_left=0) == (8 * 2 / 24.0, 0.0)  # 135 - 110 - 1 = 24 s for one step
    assert meter.summary() == "trained 6 steps in 0:00:34 (2.8 clips/s; validation and checkpoints not counted)"


def test_adamw_kwargs_picks_the_fused_kernel_where_torch_has_it():
    from hf_axlstm.pretraining import adamw_kwargs

    assert adamw_kwargs("adamw_torch_fused", torch.device("cpu")) == {"fused": True}
    assert adamw_kwargs("adamw_torch_fused", "cuda") == {"fused": True}
    assert adamw_kwargs("adamw_torch_fused", "mps") == {} and adamw_kwargs("adamw_torch", "cpu") == {}
    with pytest.raises(ValueError, match=r"optim='adamw' is not known; expected one of \['adamw_torch_fused'"):
        adamw_kwargs("adamw", "cpu")


def test_tune_cpu_allocator_serves_large_tensors_from_the_heap():
    # In a fresh process: glibc's mallinfo2 reports the bytes held in mmap'ed blocks (hblkhd). A 64 MiB tensor is one
    # such block by default; after tune_cpu_allocator it comes from the heap, so freeing and reallocating it reuses
    # pages instead of faulting in new ones.
    script = """
import ctypes, sys, torch
from hf_axlstm.cpu_allocator import cpu_allocator_tuned, tune_cpu_allocator
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
def mapped_mib():  # how much of a live 64 MiB tensor sits in mmap'ed blocks
    empty = libc.mallinfo2().hblkhd
    x = torch.empty(16 * 2**20)
    x.fill_(1.0)
    return (libc.mallinfo2().hblkhd - empty) / 2**20
before = mapped_mib()
assert not cpu_allocator_tuned()
assert tune_cpu_allocator() and tune_cpu_allocator() and cpu_allocator_tuned()
print(before, mapped_mib())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    if "mallinfo2" in done.stderr:
        pytest.skip("this C library has no mallinfo2 (glibc >= 2.33)")
    assert done.returncode == 0, done.stderr
    before, after = map(float, done.stdout.split())
    assert before >= 64 and after == 0, (before, after)


def test_interrupted_checkpoint_write_is_never_listed(tmp_path):
    from hf_axlstm.pretraining import finalize_checkpoint, list_checkpoints, temporary_checkpoint_dir

    ckpts = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        tmp = temporary_checkpoint_dir(ckpts, step)
        tmp.mkdir(parents=True)
        (tmp / "trainer_state.json").write_text("{}")
        finalize_checkpoint(tmp, step, total_limit=2)
    temporary_checkpoint_dir(ckpts, 8).mkdir()  # a crash while writing step 8
    assert [p.name for p in list_checkpoints(ckpts)] == ["checkpoint-4", "checkpoint-6"]
    assert all((p / "CHECKPOINT_COMPLETE").is_file() for p in list_checkpoints(ckpts))


def test_loss_decreases_on_a_fixed_batch(corpus):
    from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMForPreTraining
    from hf_axlstm.pretraining import AudioFileSource, PretrainingCrops, collate_crops, parameter_groups

    torch.manual_seed(0)
    config = AxLSTMConfig.from_preset("tiny", hidden_size=32, num_hidden_layers=2)
    model = AxLSTMForPreTraining(config)
    source = AudioFileSource(corpus, AxLSTMFeatureExtractor())
    batch = collate_crops([PretrainingCrops(source, range(4), 200, 250, seed=0, fixed=True)[i] for i in range(4)])
    batch.pop("clip_ids")
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.05), lr=3e-3, betas=(0.9, 0.95))
    losses = []
    for _ in range(25):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


# ------------------------------------------------------------------------------------------------ three data sources


def test_pretrain_from_audio_folder_writes_loadable_model_checkpoints_and_plots(corpus, tmp_path):
    from transformers import AutoFeatureExtractor, AutoModel

    out = tmp_path / "run"
    result = _run_cli(
        "pretrain.py", "--train_dir", str(corpus), "--output_dir", str(out), *TINY,
        "--max_train_steps", "4", "--per_device_train_batch_size", "3", "--checkpointing_steps", "2",
        "--checkpoints_total_limit", "1", "--validation_fraction", "0.2", "--with_tracking",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "training_curve.png",
                 "reconstructions.png", "feature_extraction_axlstm.py", "modeling_axlstm.py"):  # fmt: skip
        assert (out / name).is_file(), name
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-4"]
    assert (out / "checkpoints" / "checkpoint-4" / "pretrained" / "reconstructions.png").is_file()
    config = json.loads((out / "config.json").read_text())
    assert set(config["auto_map"]) >= {"AutoConfig", "AutoModel", "AutoModelForPreTraining", "AutoFeatureExtractor"}
    extractor = json.loads((out / "preprocessor_config.json").read_text())
    assert extractor["auto_map"]["AutoFeatureExtractor"] == "feature_extraction_axlstm.AxLSTMFeatureExtractor"
    model = AutoModel.from_pretrained(out)
    assert type(model).__name__ == "AxLSTMModel" and model.config.hidden_size == 32
    assert type(AutoFeatureExtractor.from_pretrained(out)).__name__ == "AxLSTMFeatureExtractor"
    history = json.loads((out / "trainer_state.json").read_text())["history"]
    assert any("val_loss" in h for h in history) and len(_log(out)) == 4
    # every step is logged with its throughput and the time left; the console shows them at each read-back
    assert [r["step"] for r in _log(out)] == [1, 2, 3, 4]
    assert all(r["clips_per_s"] > 0 and r["eta_s"] >= 0 for r in _log(out)) and _log(out)[-1]["eta_s"] == 0
    assert re.search(r"step 4/4 \| loss \d+\.\d+ \| lr \S+ \| \d+\.\d clips/s \| ETA 0:00:00", result.stdout)
    assert re.search(r"trained 4 steps in \d+:\d\d:\d\d \(\d+\.\d clips/s", result.stdout), result.stdout
    assert list(out.rglob("events.out.tfevents*")), "tensorboard events expected with --with_tracking"


def test_pretrain_ssast_with_the_same_flags_and_mask_token_positions(corpus, tmp_path, capsys):
    from transformers import AutoModelForPreTraining

    out = tmp_path / "ssast"
    args = ["--train_dir", str(corpus), "--output_dir", str(out), *TINY, "--model_type", "ssast",
            "--num_attention_heads", "2", "--max_train_steps", "3", "--per_device_train_batch_size", "3",
            "--checkpointing_steps", "2", "--mask_token_positions"]  # fmt: skip
    pretrain.main([*args, "--stop_after_steps", "2"])
    pretrain.main([*args, "--resume_from_checkpoint", "latest"])
    assert "resumed from" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "ssast" and config["mask_token_positions"] is True
    assert config["num_attention_heads"] == 2 and config["auto_map"]["AutoModel"] == "modeling_ssast.SSASTModel"
    model = AutoModelForPreTraining.from_pretrained(out)
    assert type(model).__name__ == "SSASTForPreTraining" and model.config.hidden_size == 32
    assert (out / "reconstructions.png").is_file() and [r["step"] for r in _log(out)] == [1, 2, 3]
    # the checkpoint records the architecture: resuming it as AxLSTM is refused with the flag named
    axlstm_args = ["--train_dir", str(corpus), "--output_dir", str(out), *TINY, "--max_train_steps", "3",
                   "--per_device_train_batch_size", "3", "--checkpointing_steps", "2", "--mask_token_positions"]  # fmt: skip
    with pytest.raises(pretrain.PretrainingError, match="--model_type axlstm differs from the checkpoint's ssast"):
        pretrain.main([*axlstm_args, "--resume_from_checkpoint", "latest"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model_type", "ssast", "--num_heads", "2"], "--num_heads applies to --model_type axlstm, not ssast"),
        (["--num_attention_heads", "2"], "--num_attention_heads applies to --model_type ssast, not axlstm"),
        (["--model_type", "ssast"], "num_attention_heads=3 does not divide hidden_size=32"),
    ],
)
def test_architecture_flags_are_checked(corpus, tmp_path, extra, message):
    with pytest.raises(pretrain.PretrainingError, match=message):
        pretrain.main(["--train_dir", str(corpus), "--output_dir", str(tmp_path / "x"), *TINY, *extra])


def test_pretrain_from_datasets_dataset_map_style_and_streaming(corpus, tmp_path):
    import datasets

    files = sorted(str(p) for p in corpus.rglob("*") if p.suffix in (".wav", ".flac", ".ogg"))
    ds = datasets.Dataset.from_dict({"sound": files}).cast_column("sound", datasets.Audio())
    ds.save_to_disk(str(tmp_path / "ds"))
    for extra in ([], ["--streaming"]):
        out = tmp_path / f"run{len(extra)}"
        pretrain.main(
            ["--dataset_name", str(tmp_path / "ds"), "--audio_column", "sound", "--output_dir", str(out), *TINY,
             "--max_train_steps", "2", "--per_device_train_batch_size", "2", "--max_validation_clips", "2", *extra]
        )  # fmt: skip
        assert (out / "model.safetensors").is_file() and len(_log(out)) == 2


def test_pretrain_from_precomputed_features_matches_audio_folder(corpus, tmp_path):
    args = ["--output_dir", "x", *TINY, "--max_train_steps", "2", "--per_device_train_batch_size", "4",
            "--validation_fraction", "0", "--learning_rate", "1e-3"]  # fmt: skip
    prepare_features.main(["--train_dir", str(corpus), "--output_dir", str(tmp_path / "f"), "--clips_per_shard", "6"])
    assert len(list((tmp_path / "f").glob("*.parquet"))) == 3
    args[1] = str(tmp_path / "from_features")
    pretrain.main(["--features_dir", str(tmp_path / "f"), *args])
    args[1] = str(tmp_path / "from_audio")
    pretrain.main(["--train_dir", str(corpus), *args])
    a, b = _weights(tmp_path / "from_features"), _weights(tmp_path / "from_audio")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_pretrain_runs_the_fused_cpu_kernels_by_default_and_trains_the_same_model_as_eager(
    corpus, tmp_path, monkeypatch
):
    """`--cpu_kernels`: the default builds hf_axlstm's fused CPU kernels before the first step and trains the model
    through the "fused_cpu" mixer implementation, `eager` through the folded eager forms; the two train the same
    weights (tiny's 2 s crops train chunkwise, so the fused cell runs too)."""
    if shutil.which("ninja") is None or shutil.which("c++") is None:
        pytest.skip("the fused CPU kernels need a C++ compiler and ninja")
    from .test_cpu_kernels import record_fused_steps

    calls = record_fused_steps(monkeypatch)
    args = ["--train_dir", str(corpus), *TINY, "--max_train_steps", "2", "--per_device_train_batch_size", "4",
            "--validation_fraction", "0", "--learning_rate", "1e-3"]  # fmt: skip
    pretrain.main([*args, "--output_dir", str(tmp_path / "eager"), "--cpu_kernels", "eager"])
    assert calls == []
    pretrain.main([*args, "--output_dir", str(tmp_path / "fused")])
    assert set(calls) == {"conv_silu", "heads", "cell", "tail"}, calls
    assert "mixer_implementation" not in (tmp_path / "fused" / "config.json").read_text()  # a choice of the run
    eager, fused = _weights(tmp_path / "eager"), _weights(tmp_path / "fused")
    assert eager.keys() == fused.keys()
    for key in eager:
        torch.testing.assert_close(fused[key], eager[key], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------ resume


RESUME_ARGS = ["--max_train_steps", "6", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2",
               "--checkpointing_steps", "2", "--checkpoints_total_limit", "5", "--validation_fraction", "0.2",
               "--learning_rate", "2e-3", "--log_clip_ids"]  # fmt: skip


@pytest.fixture(scope="module")
def interrupted(corpus, tmp_path_factory):
    """An uninterrupted 6-step run (two epochs: 12 training clips, 3 updates per epoch with accumulation 2) and the
    same run stopped after step 5 (checkpoints at 2 and 4)."""
    root = tmp_path_factory.mktemp("resume")
    pretrain.main(["--train_dir", str(corpus), "--output_dir", str(root / "full"), *TINY, *RESUME_ARGS])
    pretrain.main(["--train_dir", str(corpus), "--output_dir", str(root / "cut"), *TINY, *RESUME_ARGS,
                   "--stop_after_steps", "5"])  # fmt: skip
    return root


def _resume(corpus, folder: Path):
    pretrain.main(["--train_dir", str(corpus), "--output_dir", str(folder), *TINY, *RESUME_ARGS,
                   "--resume_from_checkpoint", "latest"])  # fmt: skip


def test_resume_latest_reproduces_the_uninterrupted_run_exactly(corpus, interrupted, tmp_path, capsys):
    full, cut = interrupted / "full", tmp_path / "cut"
    shutil.copytree(interrupted / "cut", cut)
    assert not (cut / "model.safetensors").exists()
    assert [p.name for p in (cut / "checkpoints").iterdir() if not p.name.startswith(".")] == [
        "checkpoint-2", "checkpoint-4",
    ]  # fmt: skip
    assert [r["step"] for r in _log(cut)] == [1, 2, 3, 4, 5]  # step 5 ran past checkpoint-4
    _resume(corpus, cut)
    out = capsys.readouterr().out
    assert "resumed from" in out and "dropped 1 line(s) after step 4" in out
    a, b = _weights(full), _weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # each step once (step 5 of the interrupted run was cut from the log), with the uninterrupted run's values
    assert [r["step"] for r in _log(cut)] == [r["step"] for r in _log(full)] == [1, 2, 3, 4, 5, 6]
    for got, want in zip(_log(cut), _log(full)):
        assert {k: got[k] for k in ("step", "loss", "lr", "grad_norm", "epoch")} == {
            k: want[k] for k in ("step", "loss", "lr", "grad_norm", "epoch")
        }
    full_ids = (full / "clip_ids" / "rank0.txt").read_text().splitlines()
    cut_ids = (cut / "clip_ids" / "rank0.txt").read_text().splitlines()

    def step(line):
        return int(line.split("\t")[0])

    # the interrupted run consumed steps 1-5, the resumed one steps 5-6 again from checkpoint-4
    assert cut_ids == [x for x in full_ids if step(x) <= 5] + [x for x in full_ids if step(x) >= 5]


def _overwrite(path: Path, byte: int) -> None:
    """Write 4 KiB of `byte` into the middle of a file (in place; a smaller file is covered and extended), making
    sure its bytes change."""
    data = bytearray(path.read_bytes())
    start = max(0, len(data) // 2 - 2048)
    before = bytes(data)
    data[start : start + 4096] = bytes([byte]) * 4096
    assert bytes(data) != before
    path.write_bytes(bytes(data))


# the kinds of file of a checkpoint: accelerate's state (weights, optimizer, RNG), the trainer state (with the scheduler), the
# marker itself and the save_pretrained copy
CHECKPOINT_FILES = ["model.safetensors", "optimizer.bin", "random_states_0.pkl",
                    "trainer_state.json", "pretrained/model.safetensors", "pretrained/config.json"]  # fmt: skip


def _damage(latest: Path, damage: str) -> str | None:
    """Damage checkpoint `latest`; returns the name of the file the warning must name (None: no file)."""
    if damage == "truncate_weights":
        data = (latest / "model.safetensors").read_bytes()
        (latest / "model.safetensors").write_bytes(data[: len(data) // 3])
        return "model.safetensors"
    if damage == "remove_marker":
        (latest / "CHECKPOINT_COMPLETE").unlink()
        return None
    byte, name = damage.split(":")
    _overwrite(latest / name, {"zeros": 0x00, "ff": 0xFF}[byte])
    return name


def _check_fell_back(corpus, interrupted, cut, captured, name):
    assert "warning: checkpoint" in captured.err and "checkpoint-4" in captured.err, captured.err
    if name is not None:
        assert f"its file {name!r}" in captured.err, captured.err
    assert "error:" not in captured.err
    assert "checkpoint-2 at step 2" in captured.out
    a, b = _weights(interrupted / "full"), _weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in _log(cut)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "damage",
    ["truncate_weights", "remove_marker", "zeros:model.safetensors", "ff:model.safetensors", "ff:optimizer.bin"],
)
def test_corrupted_latest_checkpoint_falls_back_to_the_previous_one(corpus, interrupted, tmp_path, capsys, damage):
    cut = tmp_path / "cut"
    shutil.copytree(interrupted / "cut", cut)
    name = _damage(cut / "checkpoints" / "checkpoint-4", damage)
    _resume(corpus, cut)
    _check_fell_back(corpus, interrupted, cut, capsys.readouterr(), name)


@pytest.mark.slow
@pytest.mark.parametrize("byte", ["zeros", "ff"])
@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_every_kind_of_damaged_file_falls_back_to_the_previous_checkpoint(
    corpus, interrupted, tmp_path, capsys, name, byte
):
    cut = tmp_path / "cut"
    shutil.copytree(interrupted / "cut", cut)
    _damage(cut / "checkpoints" / "checkpoint-4", f"{byte}:{name}")
    _resume(corpus, cut)
    _check_fell_back(corpus, interrupted, cut, capsys.readouterr(), name)


@pytest.mark.parametrize("byte", ["zeros", "ff"])
@pytest.mark.parametrize("name", [*CHECKPOINT_FILES, "CHECKPOINT_COMPLETE"])
def test_verify_checkpoint_names_each_kind_of_damaged_file(interrupted, tmp_path, name, byte):
    from hf_axlstm.pretraining import verify_checkpoint

    checkpoint = tmp_path / "checkpoint-4"
    shutil.copytree(interrupted / "cut" / "checkpoints" / "checkpoint-4", checkpoint)
    assert verify_checkpoint(checkpoint) == (None, None)
    _overwrite(checkpoint / name, {"zeros": 0x00, "ff": 0xFF}[byte])
    damage, note = verify_checkpoint(checkpoint)
    assert note is None
    if name == "CHECKPOINT_COMPLETE":
        assert damage.startswith("its CHECKPOINT_COMPLETE is damaged (")
    else:
        assert damage == f"its file {name!r} does not match the hash recorded when it was written (damaged)"


def test_completion_marker_records_the_sha256_of_every_file(interrupted):
    import hashlib

    checkpoint = interrupted / "cut" / "checkpoints" / "checkpoint-4"
    marker = json.loads((checkpoint / "CHECKPOINT_COMPLETE").read_text())
    files = {p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file()}
    assert marker["step"] == 4 and set(marker["sha256"]) == files - {"CHECKPOINT_COMPLETE"}
    assert set(CHECKPOINT_FILES) <= set(marker["sha256"])
    for name, digest in marker["sha256"].items():
        assert hashlib.sha256((checkpoint / name).read_bytes()).hexdigest() == digest
    assert not list(checkpoint.glob(".*"))  # the marker's temporary file was renamed into place


def test_checkpoint_of_an_older_version_without_hashes_or_schedule_resumes_with_warnings(
    corpus, interrupted, tmp_path, capsys
):
    cut = tmp_path / "cut"
    shutil.copytree(interrupted / "cut", cut)
    for step in (2, 4):
        checkpoint = cut / "checkpoints" / f"checkpoint-{step}"
        (checkpoint / "CHECKPOINT_COMPLETE").write_text(f"{step}\n")  # the marker of older versions
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        del state["schedule"]
        torch.save(state.pop("scheduler"), checkpoint / "custom_checkpoint_0.pkl")  # where accelerate kept it
        (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    _resume(corpus, cut)
    captured = capsys.readouterr()
    assert "checkpoint-4' records no file hashes (an older version wrote it): not verified" in captured.err
    assert "checkpoint-4' records no schedule settings" in captured.err
    assert "error:" not in captured.err and "checkpoint-4 at step 4" in captured.out
    a, b = _weights(interrupted / "full"), _weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in _log(cut)] == [1, 2, 3, 4, 5, 6]


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (eval, (f"__import__('pathlib').Path({self.marker!r}).write_text('pwned') and None",))


def test_no_pickled_code_from_a_checkpoint_folder_runs_on_resume(corpus, interrupted, tmp_path, capsys):
    """A checkpoint folder of the older layout (scheduler pickled by accelerate) with a payload in that pickle: the
    scheduler state is read with weights_only=True, so the resume falls back instead of running it."""
    cut = tmp_path / "cut"
    shutil.copytree(interrupted / "cut", cut)
    marker = tmp_path / "pwned"
    latest = cut / "checkpoints" / "checkpoint-4"
    (latest / "CHECKPOINT_COMPLETE").write_text("4\n")  # an older version's marker: no hashes to catch it
    state = json.loads((latest / "trainer_state.json").read_text())
    del state["scheduler"]
    (latest / "trainer_state.json").write_text(json.dumps(state))
    torch.save({"last_epoch": _Payload(marker)}, latest / "custom_checkpoint_0.pkl")
    _resume(corpus, cut)
    captured = capsys.readouterr()
    assert not marker.exists()
    assert "custom_checkpoint_0.pkl' is not a plain scheduler state" in captured.err
    assert "checkpoint-2 at step 2" in captured.out
    a, b = _weights(interrupted / "full"), _weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _with(args: list[str], flag: str, value: str) -> list[str]:
    args = list(args)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    return args


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--max_train_steps", "8", "--max_train_steps 8 differs from the checkpoint's 6"),
        ("--learning_rate", "0.001", "--learning_rate 0.001 differs from the checkpoint's 0.002"),
        ("--warmup_ratio", "0.5", "--warmup_steps 3 (from --warmup_ratio 0.5) differs from the checkpoint's 1"),
        ("--per_device_train_batch_size", "3", "--per_device_train_batch_size 3 differs from the checkpoint's 2"),
        ("--gradient_accumulation_steps", "1", "--gradient_accumulation_steps 1 differs from the checkpoint's 2"),
        ("--seed", "1", "--seed 1 differs from the checkpoint's 0"),
    ],
)
def test_resume_with_a_different_schedule_is_refused_naming_the_flag(
    corpus, interrupted, tmp_path, capsys, flag, value, expected
):
    cut = tmp_path / "cut"
    shutil.copytree(interrupted / "cut", cut)
    before = {p.relative_to(cut): p.read_bytes() for p in cut.rglob("*") if p.is_file()}
    args = ["--train_dir", str(corpus), "--output_dir", str(cut), *TINY, *RESUME_ARGS]
    args = _with(args, flag, value) + ["--resume_from_checkpoint", "latest"]
    capsys.readouterr()
    assert pretrain.cli(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0] and "checkpoint-4" in errors[0], errors
    after = {p.relative_to(cut): p.read_bytes() for p in cut.rglob("*") if p.is_file()}
    assert after == before  # nothing touched: the log is not cut, no checkpoint written


def test_truncate_log_keeps_the_steps_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    from hf_axlstm.pretraining import truncate_log

    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": s / 10}) + "\n" for s in range(1, 6)) + '{"step": 6, "lo')
    assert truncate_log(log, 3) == 3
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]
    assert truncate_log(log, 3) == 0 and truncate_log(tmp_path / "missing.jsonl", 3) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_log.jsonl"]


# ------------------------------------------------------------------------------------------------ output dir


def test_prepare_features_overwrite_leaves_no_stale_shards(corpus, tmp_path):
    out = tmp_path / "f"
    prepare_features.main(["--train_dir", str(corpus), "--output_dir", str(out), "--clips_per_shard", "2"])
    assert len(list(out.glob("*.parquet"))) == 8
    assert prepare_features.cli(["--train_dir", str(corpus), "--output_dir", str(out)]) == 2  # not empty
    prepare_features.main(["--train_dir", str(corpus), "--output_dir", str(out), "--overwrite_output_dir"])
    assert [p.name for p in out.glob("*.parquet")] == ["train-00000-of-00001.parquet"]
    assert json.loads((out / "axlstm_features.json").read_text())["num_clips"] == 15


def test_a_finished_run_is_not_overwritten_without_the_flag(corpus, interrupted, tmp_path):
    out = tmp_path / "full"
    shutil.copytree(interrupted / "full", out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = _run_cli("pretrain.py", "--train_dir", str(corpus), "--output_dir", str(out), *TINY, *RESUME_ARGS)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--output_dir" in errors[0] and "--overwrite_output_dir" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_overwrite_output_dir_deletes_the_old_run_so_latest_never_finds_it(corpus, interrupted, tmp_path, capsys):
    out = tmp_path / "full"
    shutil.copytree(interrupted / "full", out)
    (out / "notes.txt").write_text("mine")
    args = ["--train_dir", str(corpus), "--output_dir", str(out), *TINY, "--max_train_steps", "1",
            "--per_device_train_batch_size", "2", "--validation_fraction", "0"]  # fmt: skip
    pretrain.main([*args, "--overwrite_output_dir"])
    assert "--overwrite_output_dir: deleted checkpoints/, clip_ids/, train_log.jsonl" in capsys.readouterr().err
    # the old run's checkpoints are gone; the new run wrote its own at its last step
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-1"] and not (out / "clip_ids").exists()
    assert [r["step"] for r in _log(out)] == [1] and (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 1
    pretrain.main([*args, "--resume_from_checkpoint", "latest"])  # never the old run's checkpoint-6
    assert "checkpoint-1 at step 1" in capsys.readouterr().out
    assert [r["step"] for r in _log(out)] == [1]


def test_empty_output_dir_is_fine(corpus, tmp_path):
    (tmp_path / "empty").mkdir()
    pretrain.main(["--train_dir", str(corpus), "--output_dir", str(tmp_path / "empty"), *TINY, "--max_train_steps",
                   "1", "--per_device_train_batch_size", "2", "--validation_fraction", "0"])  # fmt: skip
    assert [r["step"] for r in _log(tmp_path / "empty")] == [1]


def test_nan_loss_stops_naming_the_step_and_last_good_checkpoint(corpus, tmp_path):
    result = _run_cli(
        "pretrain.py", "--train_dir", str(corpus), "--output_dir", str(tmp_path / "nan"), *TINY,
        "--max_train_steps", "8", "--per_device_train_batch_size", "4", "--learning_rate", "1e30",
        "--warmup_steps", "0", "--checkpointing_steps", "1", "--validation_fraction", "0",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    line = [x for x in result.stderr.splitlines() if "error:" in x]
    assert len(line) == 1 and "at step" in line[0] and "checkpoint-" in line[0], result.stderr
    assert "Traceback" not in result.stderr


def test_nan_loss_read_back_every_few_steps_names_the_first_bad_step_and_logs_the_ones_before(corpus, tmp_path):
    out = tmp_path / "nan"
    result = _run_cli(
        "pretrain.py", "--train_dir", str(corpus), "--output_dir", str(out), *TINY,
        "--max_train_steps", "12", "--per_device_train_batch_size", "4", "--learning_rate", "1e30",
        "--warmup_steps", "0", "--validation_fraction", "0", "--logging_steps", "6",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    bad_step = int(re.search(r"at step (\d+)", result.stderr).group(1))
    assert "last good checkpoint: none" in result.stderr
    logged = [record["step"] for record in _log(out)]
    assert logged == list(range(1, bad_step)), (logged, bad_step)  # every finite step before it, once
    assert all(math.isfinite(record["loss"]) for record in _log(out))


# ------------------------------------------------------------------------------------------------ bad arguments


def _bad_features(tmp_path: Path, corpus: Path) -> Path:
    folder = tmp_path / "feats"
    prepare_features.main(["--train_dir", str(corpus / "test"), "--output_dir", str(folder)])
    meta = json.loads((folder / "axlstm_features.json").read_text())
    meta["sampling_rate"] = 8000
    (folder / "axlstm_features.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_dir", "does not exist"),
        ("no_audio", "holds no audio files"),
        ("unknown_column", "is not a column"),
        ("wrong_sampling_rate", "sampling rate (Hz) 8000"),
    ],
)
def test_bad_arguments_give_one_clear_error_line(corpus, tmp_path, case, expected):
    if case == "missing_dir":
        data = ["--train_dir", str(tmp_path / "nowhere")]
    elif case == "no_audio":
        (tmp_path / "empty" / "sub").mkdir(parents=True)
        (tmp_path / "empty" / "sub" / "notes.txt").write_text("no audio here")
        data = ["--train_dir", str(tmp_path / "empty")]
    elif case == "unknown_column":
        import datasets

        datasets.Dataset.from_dict({"audio": ["a.wav"]}).save_to_disk(str(tmp_path / "ds"))
        data = ["--dataset_name", str(tmp_path / "ds"), "--audio_column", "speech"]
    else:
        data = ["--features_dir", str(_bad_features(tmp_path, corpus))]
    result = _run_cli("pretrain.py", *data, "--output_dir", str(tmp_path / "out"), *TINY, "--max_train_steps", "1")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------------ two processes


@pytest.mark.slow
def test_two_processes_read_disjoint_data_and_match_one_process_with_the_same_global_batch(tmp_path):
    # Clips of >= 2 s: every crop is full, so each rank's mean over its patches averages to the global mean. (With
    # padded clips the per-rank means weight the patches differently, as in any DDP per-token loss.)
    corpus = tmp_path / "corpus"
    synthetic_audio.make_corpus(corpus, clips_per_class=2, min_seconds=2.05, max_seconds=2.5, mixed_formats=True)
    common = ["--train_dir", str(corpus), *TINY, "--max_train_steps", "1", "--warmup_steps", "0",
              "--learning_rate", "1e-3", "--validation_fraction", "0", "--log_clip_ids"]  # fmt: skip
    launcher = shutil.which("accelerate")
    assert launcher is not None
    env = _env()
    env["ACCELERATE_USE_CPU"] = "1"
    result = subprocess.run(
        [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--main_process_port", "0", str(EXAMPLES / "pretrain.py"), *common,
         "--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processes 2" in result.stdout
    pretrain.main([*common, "--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "4"])

    def ids(path):
        return {line.split("\t")[1] for line in path.read_text().splitlines()}

    rank0, rank1 = ids(tmp_path / "two" / "clip_ids" / "rank0.txt"), ids(tmp_path / "two" / "clip_ids" / "rank1.txt")
    assert len(rank0) == len(rank1) == 2 and not rank0 & rank1
    assert rank0 | rank1 == ids(tmp_path / "one" / "clip_ids" / "rank0.txt")
    two, one = _log(tmp_path / "two")[0], _log(tmp_path / "one")[0]
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-5)
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-4)
    a, b = _weights(tmp_path / "two"), _weights(tmp_path / "one")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ demo and benchmark


@pytest.mark.slow
def test_demo_runs_end_to_end_offline_and_prints_the_tables(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--output_dir", str(tmp_path / "demo"), "--clips_per_class", "4",
         "--max_train_steps", "2", "--hidden_size", "16", "--num_hidden_layers", "2"],
        capture_output=True, text=True, env={**_env(), "HF_HUB_OFFLINE": "1"}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| pretrained |" in result.stdout and "| random init |" in result.stdout
    assert "pipeline('audio-classification')" in result.stdout
    config = json.loads((tmp_path / "demo" / "classifier" / "config.json").read_text())
    assert len(config["id2label"]) == 5


@pytest.mark.slow
def test_benchmark_prints_one_markdown_table():
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "pretrain_throughput.py"), "--presets", "tiny", "--steps", "1",
         "--warmup", "0", "--batch_size", "2", "--num_hidden_layers", "1"],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| tiny |")]
    modes = [row.split("|")[3].strip() for row in rows]
    assert modes == ["model only", "with data", "script"], result.stdout
    assert "excluded" in rows[0] and "WAV files" in rows[1] and "feature shards" in rows[2]
    rates = [float(row.split("|")[6]) for row in rows]
    hours = float(rows[2].split("|")[10].replace(",", ""))
    assert all(rate > 0 for rate in rates) and math.isclose(hours, 2.05e6 / rates[2] / 3600, rel_tol=0.05, abs_tol=1)
    assert re.search(r"One AudioSet epoch \(2\.05M clips\) of axlstm-tiny at the script rate", result.stdout)


def test_resume_latest_without_any_checkpoint_starts_from_scratch(corpus, tmp_path, capsys):
    out = tmp_path / "fresh"
    pretrain.main(["--train_dir", str(corpus), "--output_dir", str(out), *TINY, "--max_train_steps", "1",
                   "--per_device_train_batch_size", "2", "--validation_fraction", "0",
                   "--resume_from_checkpoint", "latest"])  # fmt: skip
    assert "starting from scratch" in capsys.readouterr().out
    assert [r["step"] for r in _log(out)] == [1]


def test_reconstruction_figure_has_title_labels_and_colour_bar():
    """The reconstruction plot says what it shows: a title with the step, time / mel axes, one colour bar."""
    import matplotlib.pyplot as plt

    from hf_axlstm.pretraining import reconstruction_figure

    rng = np.random.default_rng(0)
    original = rng.standard_normal((3, 200, 80)).astype(np.float32)
    masked = original.copy()
    masked[:, 40:80] = np.nan
    fig = reconstruction_figure({"original": original, "masked": masked, "reconstructed": 0.5 * original}, step=120)
    try:
        assert fig._suptitle.get_text().endswith("step 120")
        grid = [ax for ax in fig.axes if ax.get_images()]
        assert len(grid) == 9  # 3 rows x 3 clips
        assert grid[0].get_ylabel() == "original\nmel bin" and grid[-1].get_xlabel() == "time (s)"
        assert grid[0].get_images()[0].get_extent() == [0.0, 2.0, 0.0, 80.0]  # 200 frames of 10 ms, 80 bins
        bars = [ax for ax in fig.axes if not ax.get_images()]
        assert len(bars) == 1 and bars[0].get_ylabel() == "normalised log-mel"
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------------ continue a run


EXTEND_ARGS = ["--per_device_train_batch_size", "3", "--validation_fraction", "0", "--learning_rate", "2e-3",
               "--warmup_steps", "1"]  # fmt: skip


def test_extend_schedule_continues_a_finished_run_over_the_new_total(corpus, tmp_path, capsys):
    """The default run: a 2-step run checkpoints its last step (no --checkpointing_steps given) and continues to 3
    steps with --extend_schedule, the learning rate following the schedule of the new total from step 2 on."""
    from hf_axlstm.pretraining import warmup_cosine_lambda

    out = tmp_path / "run"
    args = ["--train_dir", str(corpus), "--output_dir", str(out), *TINY, *EXTEND_ARGS]
    pretrain.main([*args, "--max_train_steps", "2", "--cpu_kernels", "eager"])
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-2"]
    pretrain.main([*args, "--max_train_steps", "3", "--resume_from_checkpoint", "latest", "--extend_schedule",
                   "--cpu_kernels", "eager"])  # fmt: skip
    assert "--extend_schedule: 2 -> 3 steps" in capsys.readouterr().out
    lrs = [r["lr"] for r in _log(out)]
    assert lrs == pytest.approx([2e-3 * warmup_cosine_lambda(1, 2)(0), 2e-3 * warmup_cosine_lambda(1, 2)(1),
                                 2e-3 * warmup_cosine_lambda(1, 3)(2)], rel=1e-6)  # fmt: skip
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3"]
    assert json.loads((out / "trainer_state.json").read_text())["schedule"]["extended_from"] == [2]


@pytest.mark.slow
def test_a_finished_run_checkpoints_its_last_step_and_extends_only_with_the_flag(corpus, tmp_path, capsys):
    """No --checkpointing_steps: the run still writes a checkpoint at its last step. A larger --max_train_steps is
    refused naming --extend_schedule and both values; with the flag the run continues and the learning rate follows
    the warm-up + cosine over the new total from the checkpoint's step on."""
    from hf_axlstm.pretraining import warmup_cosine_lambda

    out = tmp_path / "run"
    args = ["--train_dir", str(corpus), "--output_dir", str(out), *TINY, *EXTEND_ARGS]
    pretrain.main([*args, "--max_train_steps", "3"])
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-3"]
    first = _log(out)
    capsys.readouterr()
    assert pretrain.cli([*args, "--max_train_steps", "5", "--resume_from_checkpoint", "latest"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--max_train_steps 5 differs from the checkpoint's 3" in errors[0], errors
    assert "add --extend_schedule" in errors[0]
    assert _log(out) == first  # nothing touched

    pretrain.main([*args, "--max_train_steps", "5", "--resume_from_checkpoint", "latest", "--extend_schedule"])
    printed = capsys.readouterr().out
    assert "--extend_schedule: 3 -> 5 steps; warm-up 1 steps, then cosine to 0 at step 5" in printed
    log = _log(out)
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5] and log[:3] == first
    for record in log:  # update t (1-based) runs at lr x factor(t - 1): the old schedule, then the new one
        total = 3 if record["step"] <= 3 else 5
        assert record["lr"] == pytest.approx(2e-3 * warmup_cosine_lambda(1, total)(record["step"] - 1), rel=1e-6)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-5"]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 5 and state["schedule"]["extended_from"] == [3]
    assert state["schedule"]["max_train_steps"] == 5
    final = _weights(out)
    # the extended run resumes again without the flag (its record says it was extended): nothing left to train
    pretrain.main([*args, "--max_train_steps", "5", "--resume_from_checkpoint", "latest"])
    assert "checkpoint-5 at step 5" in capsys.readouterr().out
    assert all(torch.equal(final[k], v) for k, v in _weights(out).items()) and len(_log(out)) == 5
    # fewer steps than the checkpoint's is refused even with the flag
    capsys.readouterr()
    assert (
        pretrain.cli([*args, "--max_train_steps", "4", "--resume_from_checkpoint", "latest", "--extend_schedule"]) == 2
    )
    assert (
        "--extend_schedule only raises the number of steps, and --max_train_steps 4 is below the checkpoint's 5"
        in (capsys.readouterr().err)
    )


def test_extend_schedule_keeps_a_ratio_warmup_and_the_next_resume_matches(corpus, tmp_path, capsys):
    from hf_axlstm.pretraining import check_schedule

    recorded = {"max_train_steps": 10, "warmup_steps": 1, "seed": 0}
    current = {"max_train_steps": 20, "warmup_steps": 2, "warmup_steps:from": "from --warmup_ratio 0.1", "seed": 0}
    assert check_schedule(current, recorded, "ckpt", extend=True) is None
    with pytest.raises(pretrain.PretrainingError, match="--max_train_steps 20 differs.*add --extend_schedule"):
        check_schedule(current, recorded, "ckpt")
    with pytest.raises(pretrain.PretrainingError, match="--seed 1 differs from the checkpoint's 0"):
        check_schedule({**current, "seed": 1}, recorded, "ckpt", extend=True)
    explicit = {"max_train_steps": 20, "warmup_steps": 3, "seed": 0}  # an explicit --warmup_steps must match
    with pytest.raises(pretrain.PretrainingError, match="--warmup_steps 3 differs from the checkpoint's 1"):
        check_schedule(explicit, recorded, "ckpt", extend=True)
    later = {**recorded, "max_train_steps": 20, "extended_from": [10]}
    assert check_schedule(current, later, "ckpt") is None  # a later resume of the extended run
    with pytest.raises(pretrain.PretrainingError, match="records no schedule settings"):
        check_schedule(current, None, "ckpt", extend=True)


def test_resume_latest_never_overwrites_a_users_model_in_output_dir(corpus, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"the user's weights")
    (out / "config.json").write_text('{"model_type": "axlstm"}')
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    args = ["--train_dir", str(corpus), "--output_dir", str(out), *TINY, "--max_train_steps", "1",
            "--resume_from_checkpoint", "latest"]  # fmt: skip
    capsys.readouterr()
    assert pretrain.cli(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "holds no checkpoint" in errors[0] and "--overwrite_output_dir" in errors[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a run that died before its first checkpoint (only its log) restarts from scratch, as a restarted job should
    dead = tmp_path / "dead"
    dead.mkdir()
    (dead / "train_log.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    args[args.index("--output_dir") + 1] = str(dead)
    pretrain.main([*args, "--per_device_train_batch_size", "2", "--validation_fraction", "0"])
    assert "starting from scratch" in capsys.readouterr().out and [r["step"] for r in _log(dead)] == [1]


# ------------------------------------------------------------------------------------------------ from a model


def test_model_name_or_path_continues_from_a_pretraining_folder_or_an_encoder(corpus, tmp_path, capsys):
    from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMForPreTraining, AxLSTMModel

    torch.manual_seed(3)
    config = AxLSTMConfig(hidden_size=32, num_hidden_layers=2, mask_ratio=0.75)
    source = AxLSTMForPreTraining(config)
    source.save_pretrained(tmp_path / "pretrained")
    AxLSTMFeatureExtractor().save_pretrained(tmp_path / "pretrained")
    AxLSTMModel(config).save_pretrained(tmp_path / "encoder")  # no head, no preprocessor_config.json
    args = ["--train_dir", str(corpus), "--max_train_steps", "1", "--per_device_train_batch_size", "2",
            "--validation_fraction", "0", "--learning_rate", "1e-12", "--no_progress_bar"]  # fmt: skip
    pretrain.main([*args, "--model_name_or_path", str(tmp_path / "pretrained"), "--output_dir", str(tmp_path / "a")])
    printed = capsys.readouterr().out
    assert "without the pretraining head" not in printed and "steps 1 (warm-up 0)" in printed
    saved, before = _weights(tmp_path / "a"), source.state_dict()
    assert saved.keys() == before.keys()
    for key in saved:  # one update at lr 1e-12: the model it started from, head included
        torch.testing.assert_close(saved[key], before[key], rtol=0, atol=1e-8)
    state = json.loads((tmp_path / "a" / "trainer_state.json").read_text())
    assert state["global_step"] == 1 and state["schedule"]["model_name_or_path"] == str(tmp_path / "pretrained")
    assert json.loads((tmp_path / "a" / "config.json").read_text())["mask_ratio"] == 0.75  # the model's recipe

    pretrain.main([*args, "--model_name_or_path", str(tmp_path / "encoder"), "--output_dir", str(tmp_path / "b")])
    printed = capsys.readouterr().out
    assert "an encoder without the pretraining head: the head (4 tensors, head.*) starts from a fresh" in printed
    saved = _weights(tmp_path / "b")
    for key, value in AxLSTMModel.from_pretrained(tmp_path / "encoder").state_dict().items():
        torch.testing.assert_close(saved[f"axlstm.{key}"], value, rtol=0, atol=1e-8)
    assert not torch.equal(saved["head.decoder.weight"], before["head.decoder.weight"])  # fresh, not the source's


# ------------------------------------------------------------------------------------------------ one run per folder


def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding `folder`'s run lock (as a script of ours does while it runs) until killed."""
    code = ("import sys, time\nfrom hf_axlstm.pretraining import OutputDirLock\n"
            "OutputDirLock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(600)\n")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, env=_env())
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _wait_for_lock(folder: Path, pid: int, timeout: float = 180) -> None:
    import time

    lock = folder / ".hf_axlstm.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.is_file() and lock.read_text().strip() == str(pid):
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} never took {lock}")


def _one_error(capsys) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors
    return errors[0]


def test_a_second_run_on_a_folder_in_use_is_refused_until_the_first_is_killed(corpus, tmp_path, capsys):
    """Two real processes: a pretraining run holds --output_dir; a second pretrain.py on it exits 2 naming the
    folder and the holder's pid, without touching the folder. After `kill -9` of the first (no clean-up runs), a new
    run on the folder proceeds."""
    import signal

    out = tmp_path / "busy"
    args = ["--train_dir", str(corpus), "--output_dir", str(out), *TINY, "--per_device_train_batch_size", "2",
            "--validation_fraction", "0", "--cpu_kernels", "eager"]  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "pretrain.py"), *args, "--max_train_steps", "100000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip
    try:
        _wait_for_lock(out, first.pid)
        capsys.readouterr()
        assert pretrain.cli([*args, "--max_train_steps", "1", "--resume_from_checkpoint", "latest"]) == 2
        error = _one_error(capsys)
        assert f"--output_dir {str(out)!r} is in use by another run (process {first.pid} holds" in error, error
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    pretrain.main([*args, "--max_train_steps", "1", "--resume_from_checkpoint", "latest"])
    assert [r["step"] for r in _log(out)] == [1]
    assert not (out / ".hf_axlstm.lock").exists()  # a clean exit deletes its lock file


def test_prepare_features_refuses_a_folder_in_use_and_proceeds_after_kill(corpus, tmp_path, capsys):
    import signal

    out = tmp_path / "feats"
    holder = _hold_lock(out)
    args = ["--train_dir", str(corpus / "test"), "--output_dir", str(out)]
    try:
        capsys.readouterr()
        assert prepare_features.cli(args) == 2
        assert f"--output_dir {str(out)!r} is in use by another run (process {holder.pid}" in _one_error(capsys)
        assert [p.name for p in out.iterdir()] == [".hf_axlstm.lock"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert prepare_features.cli(args) == 0  # the killed holder's lock file stays, unlocked: not "non-empty"
    assert (out / "axlstm_features.json").is_file()


def test_output_dir_lock_is_exclusive_and_released_with_its_process(tmp_path):
    from hf_axlstm.pretraining import OutputDirLock, PretrainingError

    with OutputDirLock(tmp_path / "new" / "run") as lock:
        assert lock.held and (tmp_path / "new" / "run" / ".hf_axlstm.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(PretrainingError, match=r"--output_dir '.*run' is in use by another run \(process \d+"):
            OutputDirLock(tmp_path / "new" / "run").acquire()  # another open file: refused, also in one process
    assert not (tmp_path / "new" / "run").exists()  # created by the lock, nothing written: removed again
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with OutputDirLock(tmp_path / "kept"):
        pass
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------------------------------------ faults while writing


def test_a_full_disk_during_a_checkpoint_is_one_error_line_and_leaves_no_half_checkpoint(corpus, tmp_path, capsys,
                                                                                          monkeypatch):  # fmt: skip
    """ENOSPC simulated in-process at the checkpoint's last write (the completion marker): one `error:` line, exit
    2, naming the checkpoint and the last complete one; the half-written folder is deleted."""
    import errno

    real = pretrain.finalize_checkpoint

    def full_disk_at_step_2(tmp_dir, step, total_limit=None):
        if step == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_dir / "CHECKPOINT_COMPLETE"))
        return real(tmp_dir, step, total_limit)

    monkeypatch.setattr(pretrain, "finalize_checkpoint", full_disk_at_step_2)
    out = tmp_path / "run"
    capsys.readouterr()
    code = pretrain.cli(["--train_dir", str(corpus), "--output_dir", str(out), *TINY, "--max_train_steps", "3",
                         "--checkpointing_steps", "1", "--per_device_train_batch_size", "2", "--validation_fraction",
                         "0", "--cpu_kernels", "eager"])  # fmt: skip
    assert code == 2
    error = _one_error(capsys)
    assert f"cannot write checkpoint 2 in {str(out / 'checkpoints')!r}: No space left on device (ENOSPC)" in error
    assert "Last complete checkpoint: " in error and "checkpoint-1" in error
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-1"]
    assert not (out / ".hf_axlstm.lock").exists()


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    if sys.platform != "linux" or shutil.which("mount") is None:
        return False
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return result.returncode == 0


@pytest.mark.slow
def test_a_really_full_disk_stops_pretraining_with_one_error_line_and_intact_checkpoints(corpus, tmp_path):
    """A 1 MiB tmpfs (needs the right to mount: root on Linux; skipped otherwise) fills up while checkpoints are
    written: pretrain.py exits 2 with one `error:` line, and every checkpoint left verifies."""
    from hf_axlstm.pretraining import list_checkpoints, verify_checkpoint

    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root on Linux)")
    try:
        result = _run_cli(
            "pretrain.py", "--train_dir", str(corpus), "--output_dir", str(disk / "run"), *TINY,
            "--max_train_steps", "40", "--checkpointing_steps", "1", "--checkpoints_total_limit", "100",
            "--per_device_train_batch_size", "2", "--validation_fraction", "0", "--cpu_kernels", "eager",
        )  # fmt: skip
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert "cannot write" in errors[0] and "No space left on device" in errors[0], errors
        checkpoints = list_checkpoints(disk / "run" / "checkpoints")
        assert checkpoints and all(verify_checkpoint(c) == (None, None) for c in checkpoints)
        assert not list((disk / "run" / "checkpoints").glob(".tmp-*"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _immutable(folder: Path) -> bool:
    """Make `folder` immutable (`chattr +i`: nothing can be created in it, by root either); False where impossible."""
    folder.mkdir(exist_ok=True)
    if shutil.which("chattr") is None:
        return False
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        return False
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return True
    (folder / "probe").unlink()
    subprocess.run(["chattr", "-i", str(folder)], check=False)
    return False


def test_a_read_only_output_dir_is_one_error_line_in_every_script(corpus, tmp_path, capsys):
    """A folder nothing can be written to (chattr +i, which stops root too; skipped where chattr cannot): each
    script exits 2 with one `error:` line naming the folder."""
    from .badinputs import load_example

    finetune = load_example("finetune")
    folder = tmp_path / "readonly"
    if not _immutable(folder):
        pytest.skip("cannot make a read-only folder here (chattr +i)")
    try:
        runs = {
            "pretrain.py": lambda: pretrain.cli(
                ["--train_dir", str(corpus), "--output_dir", str(folder), *TINY, "--max_train_steps", "1"]
            ),  # fmt: skip
            "prepare_features.py": lambda: prepare_features.cli(
                ["--train_dir", str(corpus), "--output_dir", str(folder)]
            ),
            "finetune.py": lambda: finetune.main(
                [
                    "--config_name",
                    "tiny",
                    "--dataset_name",
                    str(corpus),
                    "--output_dir",
                    str(folder),
                    "--use_cpu",
                    "--max_steps",
                    "1",
                ]
            ),  # fmt: skip
        }
        for script, run in runs.items():
            capsys.readouterr()
            try:
                code = run()
            except SystemExit as exit_:
                code = exit_.code
            assert code == 2, script
            error = _one_error(capsys)
            # (finetune.py's argparse names itself after sys.argv[0]: the script's name when run as one)
            assert error.startswith(f"{script}: error: " if script != "finetune.py" else "") and str(folder) in error
            assert "Operation not permitted" in error or "Permission denied" in error, error
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


@pytest.mark.slow
def test_a_cli_error_under_accelerate_launch_is_the_scripts_one_line(corpus, tmp_path):
    """The checks run before the fused kernels are built, so the script's stderr is its one `error:` line (it began
    with the build's warning, which accelerate's launcher then quoted as `RuntimeError: building ...`). The launcher
    itself raises after any non-zero exit; `accelerate launch -q` leaves the script's line alone."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"a user's model")
    launcher = shutil.which("accelerate")
    assert launcher is not None
    command = [launcher, "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", str(EXAMPLES / "pretrain.py"), "--train_dir", str(corpus), "--output_dir",
               str(out), *TINY, "--max_train_steps", "1"]  # fmt: skip
    loud = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert loud.returncode != 0
    assert loud.stderr.splitlines()[0].startswith("pretrain.py: error: --output_dir"), loud.stderr[:2000]
    assert "building" not in loud.stderr and "RuntimeError: pretrain.py: error: --output_dir" in loud.stderr
    quiet = subprocess.run([launcher, "launch", "-q", *command[2:]], capture_output=True, text=True, env=_env(),
                           timeout=300)  # fmt: skip
    assert quiet.returncode != 0 and "Traceback" not in quiet.stderr, quiet.stderr[-2000:]
    assert [line for line in quiet.stderr.splitlines() if "error:" in line] == [loud.stderr.splitlines()[0]]


@pytest.mark.slow
def test_a_two_process_run_on_a_folder_in_use_stops_every_rank_with_one_line(corpus, tmp_path):
    """DDP: rank 0 takes the lock and tells the other rank (a broadcast), so both stop, with one `error:` line (from
    rank 0), instead of rank 1 waiting at a barrier for ever."""
    import signal

    out = tmp_path / "busy"
    holder = _hold_lock(out)
    env = _env()
    env["ACCELERATE_USE_CPU"] = "1"
    try:
        result = subprocess.run(
            [shutil.which("accelerate"), "launch", "-q", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
             "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
             str(EXAMPLES / "pretrain.py"), "--train_dir", str(corpus), "--output_dir", str(out), *TINY,
             "--max_train_steps", "1", "--cpu_kernels", "eager"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "pretrain.py: error:" in line]
    assert (
        len(errors) == 1 and f"--output_dir {str(out)!r} is in use by another run (process {holder.pid}" in (errors[0])
    ), result.stderr[-3000:]


class _Killed(BaseException):
    """Stands for SIGKILL in the middle of a write (no clean-up code runs for a BaseException we never catch)."""


def test_a_kill_while_the_final_model_is_moved_into_place_is_seen_and_repaired_by_resume(
    corpus, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "run"
    args = ["--train_dir", str(corpus), "--output_dir", str(out), *TINY, "--max_train_steps", "2",
            "--per_device_train_batch_size", "2", "--validation_fraction", "0", "--cpu_kernels", "eager"]  # fmt: skip
    pretrain.main(args)
    first = _weights(out)
    real, moved = os.replace, []

    def kill_after_two_files(src, dst):
        if Path(src).parent.name == ".tmp-final-model":
            if len(moved) == 2:
                raise _Killed
            moved.append(Path(dst).name)
        return real(src, dst)

    monkeypatch.setattr(os, "replace", kill_after_two_files)
    with pytest.raises(_Killed):
        pretrain.main([*args, "--resume_from_checkpoint", "latest"])  # a finished run: only the final save runs
    monkeypatch.setattr(os, "replace", real)
    assert len(moved) == 2 and not (out / "trainer_state.json").exists()  # the folder says: not complete
    assert (out / ".tmp-final-model").is_dir()
    pretrain.main([*args, "--resume_from_checkpoint", "latest"])
    assert "checkpoint-2 at step 2" in capsys.readouterr().out
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    assert not (out / ".tmp-final-model").exists()
    again = _weights(out)
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_fp16_from_accelerate_launch_on_a_cpu_is_refused_naming_where_it_came_from(corpus, tmp_path, monkeypatch,
                                                                                    capsys):  # fmt: skip
    """`accelerate launch --mixed_precision fp16` sets ACCELERATE_MIXED_PRECISION; on a CPU accelerate would train
    float32 while the log said fp16."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    capsys.readouterr()
    code = pretrain.cli(["--train_dir", str(corpus), "--output_dir", str(tmp_path / "out"), *TINY,
                         "--max_train_steps", "1"])  # fmt: skip
    assert code == 2
    error = _one_error(capsys)
    expected = "mixed precision fp16 (from `accelerate launch --mixed_precision` or `accelerate config`) cannot run"
    assert expected in error and "on a CPU" in error, error
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_train_split_picks_the_split_of_a_saved_dataset_dict(corpus, tmp_path):
    import datasets

    files = sorted(str(p) for p in corpus.rglob("*") if p.suffix in (".wav", ".flac", ".ogg"))
    splits = {"train": datasets.Dataset.from_dict({"audio": files[:9]}),
              "other": datasets.Dataset.from_dict({"audio": files[9:13]})}  # fmt: skip
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "dd"))
    for split, clips in (("other", 4), (None, 9)):
        out = tmp_path / f"run-{split}"
        pretrain.main(["--dataset_name", str(tmp_path / "dd"), "--output_dir", str(out), *TINY, "--max_train_steps",
                       "1", "--per_device_train_batch_size", "2", "--validation_fraction", "0", "--cpu_kernels",
                       "eager", *(["--train_split", split] if split else [])])  # fmt: skip
        assert json.loads((out / "trainer_state.json").read_text())["schedule"]["num_training_clips"] == clips


def test_model_name_or_path_takes_the_authors_checkpoint(corpus, tmp_path):
    from hf_axlstm.convert_official import convert_checkpoint

    pth = REPO / "tests" / "fixtures" / "official_parity" / "official_checkpoint.pth"
    out = tmp_path / "from_pth"
    pretrain.main(["--train_dir", str(corpus), "--model_name_or_path", str(pth), "--output_dir", str(out),
                   "--max_train_steps", "1", "--per_device_train_batch_size", "2", "--validation_fraction", "0",
                   "--learning_rate", "1e-12", "--no_progress_bar", "--cpu_kernels", "eager"])  # fmt: skip
    saved = _weights(out)
    for key, value in convert_checkpoint(pth).state_dict().items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=1e-8)


def test_a_local_audio_folder_as_dataset_name_loads_without_torchcodec(corpus, tmp_path):
    """`--dataset_name FOLDER` of audio files (the audiofolder layout) is read by the package's own loader: datasets'
    audiofolder builder decodes with torchcodec, and without it failed with a traceback from inside datasets."""
    from hf_axlstm.pretraining import PretrainingError, load_dataset_split

    train = load_dataset_split(str(corpus), None, None)
    test = load_dataset_split(str(corpus), None, "test")
    assert len(train) + len(test) == 15 and len(test) > 0
    assert Path(train[0]["audio"]).is_file()  # undecoded: a path, decoded later with soundfile
    with pytest.raises(PretrainingError, match=r"--train_split 'dev' is not a split of --dataset_name .*\['test', "):
        load_dataset_split(str(corpus), None, "dev")
    streamed = load_dataset_split(str(corpus), None, None, streaming=True)
    assert sum(1 for _ in streamed) == len(train)
    out = tmp_path / "run"
    pretrain.main(["--dataset_name", str(corpus), "--output_dir", str(out), "--max_train_steps", "1",
                   "--per_device_train_batch_size", "2", "--cpu_kernels", "eager", *TINY])  # fmt: skip
    assert (out / "model.safetensors").is_file()

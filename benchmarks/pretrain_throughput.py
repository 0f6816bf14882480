#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Pretraining throughput: the model-only step next to examples/pretrain.py's real step, for AxLSTM and
(`--architectures axlstm ssast`) SSAST, the paper's transformer baseline; with the projected time of one AudioSet
epoch (2.05M clips) on the machine it ran on.

    python benchmarks/pretrain_throughput.py                         # tiny and base, batch 32, the three modes
    python benchmarks/pretrain_throughput.py --presets tiny --steps 2 --batch_size 4 --num_hidden_layers 2  # < 2 min
    python benchmarks/pretrain_throughput.py --modes "model only" --cpu_allocator tuned default   # malloc A/B
    python benchmarks/pretrain_throughput.py --device cuda --batch_size 256 --bf16 --num_workers 8 --torch_compile

Modes (each row its own fresh subprocess, so that its peak memory is its own):
- `model only`: a ready batch on the device, then the script's step exactly: forward (the masked-reconstruction
  loss), backward (with `--gradient_accumulation_steps` micro-batches), gradient clipping, AdamW (`--optim`, the
  script's parameter groups and betas), zero_grad. Data loading excluded.
- `with data`: the same step fed by a DataLoader over WAV files (decode, log-mel, normalisation, crop, collate;
  `--num_workers` processes).
- `script`: examples/pretrain.py itself on log-mel shards written by examples/prepare_features.py (`--features_dir`;
  made from a synthesised corpus by default), with `--num_workers`; its clips/s is read from its train_log.jsonl over
  the steps after the warm-up (validation, checkpoints and start-up are not in it).

`--cpu_allocator tuned default` measures with and without glibc heap reuse (hf_axlstm.cpu_allocator; the script's
`--cpu_allocator`). `--rounds N` runs every row N times, round-robin, each round in the reverse order of the last
(so every row runs early and late as often), and reports medians (peak memory: the largest): on a machine whose
speed drifts, one pass of rows measured one after another gave tiny's script 0.82x and 1.11x of model-only depending
on which ran first. Peak memory: CUDA `max_memory_allocated` on a GPU, the process's peak resident set size on the
CPU. Prints one markdown table and the AudioSet-epoch line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hf_axlstm.pretraining import OPTIMIZERS

REPO = Path(__file__).resolve().parents[1]
AUDIOSET_CLIPS = 2_050_000  # the paper's pretraining set, one 2 s crop per clip and epoch
MODES = ("model only", "with data", "script")
MODEL_INPUTS = ("input_values", "attention_mask", "noise")


def synthesised_corpus(folder: Path, clips_per_class: int) -> str:
    """Write examples/synthetic_audio.py's labelled WAV corpus (2-10 s clips) into `folder`; returns its path."""
    sys.path.insert(0, str(REPO / "examples"))
    from synthetic_audio import make_corpus

    make_corpus(folder, clips_per_class=clips_per_class, min_seconds=2.0, max_seconds=10.0)
    return str(folder)


def feature_shards(wav_dir: str, out_dir: Path) -> str:
    """Run examples/prepare_features.py on `wav_dir` into `out_dir` (the script's --features_dir); returns its path."""
    command = [sys.executable, str(REPO / "examples" / "prepare_features.py"), "--train_dir", str(wav_dir)]
    subprocess.run(command + ["--output_dir", str(out_dir)], check=True, capture_output=True)
    return str(out_dir)


def measure(args) -> dict:
    import torch
    from architectures import ARCHITECTURES, encoder_params, frames_for
    from torch.utils.data import DataLoader

    from hf_axlstm import AxLSTMFeatureExtractor
    from hf_axlstm.cpu_allocator import tune_cpu_allocator
    from hf_axlstm.cpu_kernels import enable_fused_cpu_kernels
    from hf_axlstm.pretraining import (
        AudioFileSource,
        PretrainingCrops,
        adamw_kwargs,
        collate_crops,
        num_patches,
        parameter_groups,
    )

    device = torch.device(args.device)
    if args.allocator == "tuned" and device.type == "cpu":
        tune_cpu_allocator()
    torch.manual_seed(0)
    overrides = {"num_hidden_layers": args.num_hidden_layers} if args.num_hidden_layers else {}
    config_cls, _, model_cls = ARCHITECTURES[args.architecture]
    config = config_cls.from_preset(args.preset, frames_per_window=frames_for(args.seconds), **overrides)
    model = model_cls(config).to(device).train()
    # As examples/pretrain.py: the mixer implementation "fused_cpu", built before the first step (SSAST has no mixers).
    fused_wanted = args.cpu_kernels == "fused" and device.type == "cpu" and hasattr(model, "set_mixer_implementation")
    if fused_wanted and not enable_fused_cpu_kernels(model):
        raise SystemExit("the fused CPU kernels could not be built (see the warning above); --cpu_kernels eager")
    optimizer = torch.optim.AdamW(
        parameter_groups(model, 0.05), lr=1e-4, betas=(0.9, 0.95), **adamw_kwargs(args.optim, device)
    )
    forward = torch.compile(model) if args.torch_compile else model
    frames, patches = config.frames_per_window, num_patches(config.frames_per_window, config)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    if args.mode == "with data":
        source = AudioFileSource(args.data_dir, AxLSTMFeatureExtractor())
        data = PretrainingCrops(source, range(len(source)), frames, patches, seed=0)
        loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, collate_fn=collate_crops,
                            num_workers=args.num_workers, drop_last=True, pin_memory=device.type == "cuda")  # fmt: skip

        def batches():
            while True:
                yield from loader

        stream = batches()
    else:
        fixed = {
            "input_values": torch.randn(args.batch_size, frames, config.num_mel_bins, device=device),
            "attention_mask": torch.ones(args.batch_size, frames, dtype=torch.long, device=device),
            "noise": torch.rand(args.batch_size, patches, device=device),
        }
        stream = iter(lambda: fixed, None)

    def step():
        for _ in range(args.gradient_accumulation_steps):
            batch = next(stream)
            with autocast:
                loss = forward(**{k: batch[k].to(device, non_blocking=True) for k in MODEL_INPUTS}).loss
            (loss / args.gradient_accumulation_steps).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))  # the script's clip (no --max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    clips = args.steps * args.batch_size * args.gradient_accumulation_steps
    return {
        "params_m": encoder_params(model) / 1e6,
        "clips_per_s": clips / seconds,
        "ms_per_step": 1000 * seconds / args.steps,
        "peak_mib": _peak_mib(device),
        "threads": torch.get_num_threads(),
    }


def _peak_mib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB


def script_rate(log_path: Path, warmup: int, clips_per_step: int) -> tuple[float, float]:
    """(clips/s, ms per step) over the logged steps after the first `warmup`: each record carries the clips/s of its
    read-back interval, so a step's time is clips_per_step / rate."""
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    timed = [r for r in records if "clips_per_s" in r and r["step"] > warmup]
    seconds = sum(clips_per_step / r["clips_per_s"] for r in timed)
    return len(timed) * clips_per_step / seconds, 1000 * seconds / len(timed)


def run_script(args, features_dir: str, workdir: Path, round_index: int = 0) -> dict:
    """examples/pretrain.py for warmup + steps optimizer steps (`--stop_after_steps`: no final save), into a fresh
    output folder per round; its read-back interval is the warm-up, so the timed steps are whole intervals."""
    from architectures import frames_for

    out = workdir / f"script-{args.architecture}-{args.preset}-{args.allocator}-round{round_index + 1}"
    logging = max(args.warmup, 1)
    steps = math.ceil(args.steps / logging) * logging
    cmd = [sys.executable, str(REPO / "examples" / "pretrain.py"), "--features_dir", features_dir,
           "--output_dir", str(out), "--model_type", args.architecture, "--preset", args.preset,
           "--max_train_steps", str(logging + steps), "--stop_after_steps", str(logging + steps),
           "--per_device_train_batch_size", str(args.batch_size),
           "--gradient_accumulation_steps", str(args.gradient_accumulation_steps),
           "--validation_fraction", "0", "--logging_steps", str(logging), "--num_workers", str(args.num_workers),
           "--crop_frames", str(frames_for(args.seconds)), "--frames_per_window", str(frames_for(args.seconds)),
           "--optim", args.optim,
           "--cpu_allocator", args.allocator, "--cpu_kernels", args.cpu_kernels, "--no_progress_bar"]  # fmt: skip
    if args.num_hidden_layers:
        cmd += ["--num_hidden_layers", str(args.num_hidden_layers)]
    if args.bf16:
        cmd += ["--mixed_precision", "bf16"]
    if args.torch_compile:
        cmd.append("--torch_compile")
    env = dict(os.environ)
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    stderr_path = workdir / f"{out.name}.stderr"
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage (its peak RSS)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(stderr_path.read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"examples/pretrain.py failed ({' '.join(cmd)})")
    clips_per_step = args.batch_size * args.gradient_accumulation_steps
    rate, ms = script_rate(out / "train_log.jsonl", logging, clips_per_step)
    peak = usage.ru_maxrss / 1024 if args.device == "cpu" else math.nan  # KiB -> MiB (the GPU's is not visible)
    return {"params_m": math.nan, "clips_per_s": rate, "ms_per_step": ms, "peak_mib": peak, "threads": None}


def median_result(runs: list[dict]) -> dict:
    """One row from its rounds: the median clips/s and ms/step (of each round's own), the largest peak memory."""
    peaks = [r["peak_mib"] for r in runs if not math.isnan(r["peak_mib"])]
    return {
        **runs[0],
        "clips_per_s": statistics.median(r["clips_per_s"] for r in runs),
        "ms_per_step": statistics.median(r["ms_per_step"] for r in runs),
        "peak_mib": max(peaks) if peaks else math.nan,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Pretraining throughput (AxLSTM, SSAST): model only vs the script.")
    parser.add_argument("--presets", nargs="+", default=["tiny", "base"], choices=["tiny", "small", "base"])
    parser.add_argument("--architectures", nargs="+", default=["axlstm"], choices=["axlstm", "ssast"],
                        help="models to time (examples/pretrain.py's --model_type)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=2.0, help="crop length in seconds (100 frames per second)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--batch_size", type=int, default=32, help="per-device batch (the script's default: 32)")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="Timed optimizer steps.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed steps first.")
    parser.add_argument("--rounds", type=int, default=1, help="Runs of every row, round-robin (medians).")
    parser.add_argument("--num_hidden_layers", type=int, default=None, help="Fewer blocks for a quick run.")
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers (`with data`, `script`).")
    parser.add_argument(
        "--optim", default="adamw_torch_fused", choices=OPTIMIZERS, help="examples/pretrain.py's --optim"
    )
    parser.add_argument("--cpu_allocator", nargs="+", default=["tuned"], choices=["tuned", "default"],
                        help="glibc heap reuse (hf_axlstm.cpu_allocator) on the CPU; several: one row each")  # fmt: skip
    parser.add_argument("--cpu_kernels", default="fused", choices=["fused", "eager"],
                        help="float32 training on the CPU through the fused C++ kernels (the mixer implementation "
                        "'fused_cpu', hf_axlstm.cpu_kernels; the script's default) or the eager forms, in every row")  # fmt: skip
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast.")
    parser.add_argument("--torch_compile", action="store_true", help="torch.compile the model.")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--data_dir", default=None, help="WAV folder for `with data` (default: synthesised).")
    parser.add_argument("--features_dir", default=None, help="prepare_features.py shards for `script`.")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup < 0 or args.steps < 1:
        parser.error(f"--steps={args.steps} / --warmup={args.warmup}: expected >= 1 timed and >= 0 warm-up steps.")
    if args.rounds < 1:
        parser.error(f"--rounds={args.rounds}: expected >= 1.")

    if args._worker:  # one measurement in this process
        args.architecture, args.preset, args.mode, args.allocator = args._worker.split(":")
        print(json.dumps(measure(args)))
        return

    allocators = args.cpu_allocator if args.device == "cpu" else ["default"]
    with tempfile.TemporaryDirectory() as tmp:
        needs_audio = ("with data" in args.modes and args.data_dir is None) or (
            "script" in args.modes and args.features_dir is None
        )
        if needs_audio:
            clips = max(4, args.batch_size * args.gradient_accumulation_steps)
            args.data_dir = args.data_dir or synthesised_corpus(Path(tmp) / "wav", clips)
        if "script" in args.modes and args.features_dir is None:
            args.features_dir = feature_shards(args.data_dir, Path(tmp) / "features")
        architectures = [a for a in ("axlstm", "ssast") if a in args.architectures]
        cases = [(p, a, m, c) for p in args.presets for a in architectures for m in args.modes for c in allocators]
        results = {case: [] for case in cases}
        for round_index in range(args.rounds):
            for case in cases if round_index % 2 == 0 else cases[::-1]:
                preset, arch, mode, allocator = case
                if mode == "script":
                    args.architecture, args.preset, args.allocator = arch, preset, allocator
                    results[case].append(run_script(args, args.features_dir, Path(tmp), round_index))
                else:
                    results[case].append(_worker_run(args, f"{arch}:{preset}:{mode}:{allocator}"))
                result = results[case][-1]
                print(f"  round {round_index + 1}: {arch:6s} {preset:5s} {mode:10s} {allocator:7s} "
                      f"{result['clips_per_s']:.2f} clips/s", file=sys.stderr)  # fmt: skip
        rows = [(*case, median_result(results[case])) for case in cases]

    import torch
    from architectures import cpu_name

    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else cpu_name()
    threads = next((r[4]["threads"] for r in rows if r[4]["threads"]), None)
    where = device if args.device.startswith("cuda") else f"{device}, {threads} threads"
    layers = f", {args.num_hidden_layers} blocks" if args.num_hidden_layers else ""
    precision = "bf16 autocast" if args.bf16 else "fp32"
    if args.device == "cpu" and not args.bf16:
        precision += f", {args.cpu_kernels} CPU kernels"
    compiled = ", torch.compile" if args.torch_compile else ""
    accum = f" x {args.gradient_accumulation_steps} accumulated" if args.gradient_accumulation_steps > 1 else ""
    rounds = f"; median of {args.rounds} round-robin rounds" if args.rounds > 1 else ""
    print(f"\nPretraining step (forward + backward + clip + {args.optim}), {args.seconds:g} s crops, batch "
          f"{args.batch_size}{accum}, {precision}{compiled}, {where}{layers}; {args.steps} timed steps after "
          f"{args.warmup} warm-up{rounds}\n")  # fmt: skip
    print("| size | architecture | mode | data | allocator | clips/s | ms/step | x model only | peak MiB | "
          "AudioSet epoch (h) |")  # fmt: skip
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|")
    reference = {(p, a, c): r["clips_per_s"] for p, a, m, c, r in rows if m == "model only"}
    for preset, arch, mode, allocator, r in rows:
        data = {"model only": "excluded", "with data": f"WAV files, {args.num_workers} workers",
                "script": f"feature shards, {args.num_workers} workers"}[mode]  # fmt: skip
        ratio = (
            r["clips_per_s"] / reference[(preset, arch, allocator)] if (preset, arch, allocator) in reference else None
        )
        hours = AUDIOSET_CLIPS / r["clips_per_s"] / 3600
        peak = "-" if math.isnan(r["peak_mib"]) else f"{r['peak_mib']:.0f}"
        print(f"| {preset} | {arch} | {mode} | {data} | {allocator} | {r['clips_per_s']:.2f} | {r['ms_per_step']:.0f} | "
              f"{'-' if ratio is None else f'{ratio:.2f}'} | {peak} | {hours:,.0f} |")  # fmt: skip
    best = {}  # the row the AudioSet line uses: the script's (else with data, else model only), first allocator
    priority = {"script": 0, "with data": 1, "model only": 2}
    for preset, arch, mode, allocator, r in rows:
        rank = (priority[mode], allocators.index(allocator))
        if (preset, arch) not in best or rank < best[(preset, arch)][0]:
            best[(preset, arch)] = (rank, mode, r["clips_per_s"])
    print()
    for (preset, arch), (_, mode, rate) in best.items():
        hours = AUDIOSET_CLIPS / rate / 3600
        print(f"One AudioSet epoch ({AUDIOSET_CLIPS / 1e6:.2f}M clips) of {arch}-{preset} at the {mode} rate "
              f"({rate:.2f} clips/s) on this machine: {hours:,.0f} h ({hours / 24:,.1f} days); the paper's 100 epochs: "
              f"{100 * hours / 24:,.0f} days.")  # fmt: skip
    if not args.device.startswith("cuda"):
        print("\nCPU peak memory is the process's peak resident set size (Python, torch and data included).")


def _worker_run(args, spec: str) -> dict:
    cmd = [sys.executable, __file__, "--_worker", spec, "--batch_size", str(args.batch_size),
           "--gradient_accumulation_steps", str(args.gradient_accumulation_steps), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--device", args.device, "--num_workers", str(args.num_workers),
           "--seconds", str(args.seconds), "--optim", args.optim, "--cpu_kernels", args.cpu_kernels]  # fmt: skip
    if args.num_hidden_layers:
        cmd += ["--num_hidden_layers", str(args.num_hidden_layers)]
    if args.bf16:
        cmd.append("--bf16")
    if args.torch_compile:
        cmd.append("--torch_compile")
    if args.data_dir:
        cmd += ["--data_dir", args.data_dir]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"measurement {spec} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


if __name__ == "__main__":
    main()

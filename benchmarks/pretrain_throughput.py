#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Throughput and peak memory of one pretraining step (forward, backward, AdamW) on 2 s crops (`--seconds`), for
AxLSTM and (`--architectures axlstm ssast`) SSAST, the paper's transformer baseline (examples/pretrain.py's
`--model_type`).

    python benchmarks/pretrain_throughput.py                                  # tiny, small, base; ~10 min on 2 CPU cores
    python benchmarks/pretrain_throughput.py --presets tiny small --steps 2 --batch_size 4 --num_hidden_layers 4  # < 2 min
    python benchmarks/pretrain_throughput.py --architectures axlstm ssast --modes "model only" --seconds 10

Two modes per size: `model only` feeds a ready batch (data loading excluded); `with data` reads WAV files through
the pretraining data path (decode, log-mel, normalisation, crop, collate; `--num_workers` loader processes).
Each configuration runs in a fresh subprocess so its peak memory is its own: CUDA `max_memory_allocated` on a GPU,
the process's peak resident set size on the CPU. `--architectures` defaults to `axlstm` alone (the README's table);
`--seconds` sets the crop length (100 frames per second; 10 s = 1000 frames = 1250 patches). Prints one markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(args) -> dict:
    import torch
    from architectures import ARCHITECTURES, encoder_params, frames_for
    from torch.utils.data import DataLoader

    from hf_axlstm import AxLSTMFeatureExtractor
    from hf_axlstm.pretraining import AudioFileSource, PretrainingCrops, collate_crops, num_patches, parameter_groups

    device = torch.device(args.device)
    torch.manual_seed(0)
    overrides = {"num_hidden_layers": args.num_hidden_layers} if args.num_hidden_layers else {}
    config_cls, _, model_cls = ARCHITECTURES[args.architecture]
    config = config_cls.from_preset(args.preset, frames_per_window=frames_for(args.seconds), **overrides)
    model = model_cls(config).to(device).train()
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.05), lr=1e-4, betas=(0.9, 0.95))
    frames, patches = config.frames_per_window, num_patches(config.frames_per_window, config)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    if args.mode == "with data":
        source = AudioFileSource(args.data_dir, AxLSTMFeatureExtractor())
        data = PretrainingCrops(source, range(len(source)), frames, patches, seed=0)
        loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, collate_fn=collate_crops,
                            num_workers=args.num_workers, drop_last=True)  # fmt: skip

        def batches():
            while True:
                yield from loader

        stream = batches()
    else:
        fixed = {
            "input_values": torch.randn(args.batch_size, frames, config.num_mel_bins),
            "attention_mask": torch.ones(args.batch_size, frames, dtype=torch.long),
            "noise": torch.rand(args.batch_size, patches),
        }
        stream = iter(lambda: fixed, None)

    def step():
        batch = next(stream)
        with autocast:
            loss = model(
                input_values=batch["input_values"].to(device),
                attention_mask=batch["attention_mask"].to(device),
                noise=batch["noise"].to(device),
            ).loss
        loss.backward()
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
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    return {
        "params_m": encoder_params(model) / 1e6,
        "clips_per_s": args.steps * args.batch_size / seconds,
        "ms_per_step": 1000 * seconds / args.steps,
        "peak_mib": peak,
        "threads": torch.get_num_threads(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Pretraining-step throughput and peak memory (AxLSTM, SSAST).")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "base"], choices=["tiny", "small", "base"])
    parser.add_argument(
        "--architectures",
        nargs="+",
        default=["axlstm"],
        choices=["axlstm", "ssast"],
        help="models to time (examples/pretrain.py's --model_type; default: axlstm, as the README's table)",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="crop length in seconds (100 frames per second)")
    parser.add_argument("--modes", nargs="+", default=["model only", "with data"], choices=["model only", "with data"])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="Timed steps.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed steps first.")
    parser.add_argument("--num_hidden_layers", type=int, default=None, help="Fewer blocks for a quick run.")
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers in `with data` mode.")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast.")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--data_dir", default=None, help="WAV folder for `with data` (default: synthesised).")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._worker:  # one measurement in this process
        args.architecture, args.preset, args.mode = args._worker.split(":")
        print(json.dumps(measure(args)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        if "with data" in args.modes and args.data_dir is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
            from synthetic_audio import make_corpus

            make_corpus(tmp, clips_per_class=max(4, args.batch_size), min_seconds=2.0, max_seconds=10.0)
            args.data_dir = tmp
        rows = []
        architectures = [a for a in ("axlstm", "ssast") if a in args.architectures]
        for preset, arch, mode in ((p, a, m) for p in args.presets for a in architectures for m in args.modes):
            cmd = [sys.executable, __file__, "--_worker", f"{arch}:{preset}:{mode}",
                   "--batch_size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--device", args.device, "--num_workers", str(args.num_workers),
                   "--seconds", str(args.seconds)]  # fmt: skip
            if args.num_hidden_layers:
                cmd += ["--num_hidden_layers", str(args.num_hidden_layers)]
            if args.bf16:
                cmd.append("--bf16")
            if args.data_dir:
                cmd += ["--data_dir", args.data_dir]
            done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"measurement {arch} {preset} / {mode} failed")
            rows.append((preset, arch, mode, json.loads(done.stdout.strip().splitlines()[-1])))
            print(f"  {arch:6s} {preset:5s} {mode:10s} {rows[-1][3]['clips_per_s']:.2f} clips/s", file=sys.stderr)

    device = args.device
    if device.startswith("cuda"):
        import torch

        device = torch.cuda.get_device_name(0)
    else:
        device = f"CPU, {rows[0][3]['threads']} threads"
    layers = f", {args.num_hidden_layers} blocks" if args.num_hidden_layers else ""
    precision = "bf16 autocast" if args.bf16 else "fp32"
    print(f"\nPretraining step (fwd + bwd + AdamW), {args.seconds:g} s crops, batch {args.batch_size}, {precision}, "
          f"{device}{layers}, {args.steps} timed steps after {args.warmup} warm-up\n")  # fmt: skip
    print("| size | architecture | encoder params | data loading | clips/s | ms/step | peak memory (MiB) |")
    print("|---|---|---:|---|---:|---:|---:|")
    for preset, arch, mode, r in rows:
        loading = "excluded" if mode == "model only" else f"included ({args.num_workers} workers)"
        print(f"| {preset} | {arch} | {r['params_m']:.2f}M | {loading} | {r['clips_per_s']:.2f} | "
              f"{r['ms_per_step']:.0f} | {r['peak_mib']:.0f} |")  # fmt: skip
    if not device.startswith("CPU"):
        return
    print("\nCPU peak memory is the process's peak resident set size (Python, torch and data included).")


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


if __name__ == "__main__":
    main()

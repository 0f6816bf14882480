"""Where a pretraining step's time goes: forward (with the loss), backward, and the optimizer (gradient clipping +
AdamW + zero_grad), timed apart on the script's model (`AxLSTMForPreTraining`, the pretraining loss, AdamW with the
script's parameter groups and betas, fused AdamW as `--optim adamw_torch_fused`, the script's tuned allocator unless
`--cpu_allocator default`), on a ready batch of 2 s crops; and the optimizer phase with each of torch's
AdamW implementations (`foreach=False` is what torch picks for CPU tensors by default, `foreach=True`, `fused=True`).

    python benchmarks/train_profile.py                          # tiny and base, batch 32, 3 timed steps
    python benchmarks/train_profile.py --sizes tiny --batch_size 8 --steps 2

Each phase is timed with a wall clock between explicit boundaries (CUDA: synchronised); medians over the steps. The
AdamW variants are timed on the gradients of one real backward, interleaved, so they see the same machine load.
Prints two markdown tables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architectures import cpu_name  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "small", "base"])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--cpu_allocator",
        default="tuned",
        choices=["tuned", "default"],
        help="glibc heap reuse as in examples/pretrain.py (hf_axlstm.cpu_allocator), or malloc's defaults",
    )
    args = parser.parse_args(argv)
    if args.cpu_allocator == "tuned" and args.device == "cpu":
        from hf_axlstm.cpu_allocator import tune_cpu_allocator

        tune_cpu_allocator()
    torch.set_num_threads(args.threads)

    from hf_axlstm import AxLSTMConfig, AxLSTMForPreTraining
    from hf_axlstm.pretraining import adamw_kwargs, parameter_groups

    device = torch.device(args.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    phase_rows, adam_rows = [], []
    for size in args.sizes:
        torch.manual_seed(0)
        model = AxLSTMForPreTraining(AxLSTMConfig.from_preset(size)).to(device).train()
        frames = model.config.frames_per_window
        patches = frames // model.config.patch_size[0] * model.config.num_freq_patches
        batch = {
            "input_values": torch.randn(args.batch_size, frames, 80, device=device),
            "attention_mask": torch.ones(args.batch_size, frames, dtype=torch.long, device=device),
            "noise": torch.rand(args.batch_size, patches, device=device),
        }
        script_adamw = adamw_kwargs("adamw_torch_fused", device)  # the script's default --optim
        optimizer = torch.optim.AdamW(parameter_groups(model, 0.05), lr=1e-4, betas=(0.9, 0.95), **script_adamw)
        times = {"forward": [], "backward": [], "optimizer": []}
        for step in range(args.steps + 1):  # the first step is a warm-up
            sync()
            start = time.perf_counter()
            loss = model(**batch).loss
            sync()
            after_forward = time.perf_counter()
            loss.backward()
            sync()
            after_backward = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            sync()
            end = time.perf_counter()
            if step:
                times["forward"].append(after_forward - start)
                times["backward"].append(after_backward - after_forward)
                times["optimizer"].append(end - after_backward)
        medians = {phase: statistics.median(t) for phase, t in times.items()}
        total = sum(medians.values())
        for phase, seconds in medians.items():
            phase_rows.append((size, phase, seconds * 1e3, 100 * seconds / total))
        phase_rows.append((size, "step", total * 1e3, 100.0))
        print(f"[profile] {size}: step {total:.2f} s = {args.batch_size / total:.1f} clips/s", flush=True)

        # AdamW implementations on one real set of gradients.
        model(**batch).loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        variants = {"for-loop (CPU default)": {"foreach": False}, "foreach": {"foreach": True}}
        if device.type in ("cpu", "cuda"):
            variants["fused"] = {"fused": True}
        optimizers = {
            name: torch.optim.AdamW(parameter_groups(model, 0.05), lr=1e-4, betas=(0.9, 0.95), **kwargs)
            for name, kwargs in variants.items()
        }
        adam_times = {name: [] for name in optimizers}
        for _ in range(args.steps + 1):
            for name, opt in optimizers.items():
                for pname, p in model.named_parameters():
                    p.grad = grads[pname].clone()
                sync()
                start = time.perf_counter()
                opt.step()
                sync()
                adam_times[name].append(time.perf_counter() - start)
        base = statistics.median(adam_times["for-loop (CPU default)"][1:])
        for name, t in adam_times.items():
            median = statistics.median(t[1:])
            adam_rows.append((size, name, median * 1e3, base / median, 100 * median / total))

    where = cpu_name() if device.type == "cpu" else torch.cuda.get_device_name()
    print(
        f"\n{where}, {args.threads} threads, torch {torch.__version__}, batch {args.batch_size} of 2 s crops, fp32, "
        f"{args.cpu_allocator} allocator\n"
    )
    print("| size | phase | ms | share of the step |")
    print("|---|---|---:|---:|")
    for size, phase, ms, share in phase_rows:
        print(f"| {size} | {phase} | {ms:.0f} | {share:.1f}% |")
    print("\n| size | AdamW step | ms | x for-loop | share of the step |")
    print("|---|---|---:|---:|---:|")
    for size, name, ms, speedup, share in adam_rows:
        print(f"| {size} | {name} | {ms:.1f} | {speedup:.2f} | {share:.1f}% |")


if __name__ == "__main__":
    main()

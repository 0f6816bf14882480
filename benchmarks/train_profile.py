"""Where a pretraining step's time goes: data, forward (with the loss), backward, and the optimizer (gradient
clipping + AdamW + zero_grad), timed apart on the script's model (`AxLSTMForPreTraining`, the pretraining loss, AdamW
with the script's parameter groups and betas, fused AdamW as `--optim adamw_torch_fused`, the script's tuned allocator
unless `--cpu_allocator default`) on 2 s crops. The data phase is what examples/pretrain.py does for each batch
without workers (`--num_workers 0`): crops, masking noise and collation from log-mel shards written by
examples/prepare_features.py over a synthesised corpus (`--features_dir` for your own), through the script's
`FeatureShardSource`, `PretrainingCrops` and `collate_crops`; with workers it overlaps the model's step instead. The
optimizer phase is also timed with each of torch's AdamW implementations (`foreach=False` is what torch picks for
CPU tensors by default, `foreach=True`, `fused=True`).
With `--parts`, one mLSTM block's forward + backward is also split into its parts (pre-norm and direction flips,
up-projection, causal conv + SiLU, gates, q / k / v, the mLSTM cell, the output norm / skip / gate, down-projection),
each timed on its own with the block's real modules and shapes, with the projections' GEMM rate.

    python benchmarks/train_profile.py                          # tiny and base, batch 32, 3 timed steps
    python benchmarks/train_profile.py --sizes tiny --batch_size 8 --steps 2
    python benchmarks/train_profile.py --sizes tiny --parts      # + one block's parts

Each phase is timed with a wall clock between explicit boundaries (CUDA: synchronised); medians over the steps. The
AdamW variants are timed on the gradients of one real backward, interleaved, so they see the same machine load.
Prints two markdown tables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architectures import cpu_name  # noqa: E402
from pretrain_throughput import feature_shards, synthesised_corpus  # noqa: E402


def feature_batches(features_dir: str, config, batch_size: int):
    """An endless iterator of the script's training batches (0 workers) from prepare_features.py shards."""
    from torch.utils.data import DataLoader

    from hf_axlstm import AxLSTMFeatureExtractor
    from hf_axlstm.pretraining import (
        FeatureShardSource,
        PretrainingCrops,
        collate_crops,
        load_feature_shards,
        num_patches,
    )

    extractor = AxLSTMFeatureExtractor(feature_size=config.num_mel_bins)
    source = FeatureShardSource(load_feature_shards(features_dir, extractor))
    crop = config.frames_per_window
    crops = PretrainingCrops(source, range(len(source)), crop, num_patches(crop, config), seed=0)
    epoch = 0
    while True:
        crops.set_epoch(epoch)
        yield from DataLoader(crops, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=collate_crops)
        epoch += 1


def _outputs(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def block_parts(size: str, batch_size: int, device: torch.device, steps: int, sync, implementation: str) -> list:
    """(part, ms, share of the block, GFLOP/s or None) for forward + backward of one reversed mLSTM block of `size`
    on 2 s crops, each part on its own (leaf inputs, a fixed upstream gradient), medians over `steps` after 2 warm-ups.
    The parts run as the mixer implementation `implementation` runs them ("fused_cpu": the fused kernels)."""
    import torch.nn.functional as F

    from hf_axlstm import AxLSTMConfig
    from hf_axlstm import modeling_axlstm as modeling
    from hf_axlstm.kernels_axlstm import run_cell
    from hf_axlstm.mixers_axlstm import (
        _MixerOutput,
        _rows_to_heads,
        _tiled_matmul,
        _tiles_to_heads,
        causal_depthwise_conv,
        derived_weights,
        resolve_mixer_spec,
    )

    config = AxLSTMConfig.from_preset(size)
    torch.manual_seed(0)
    # Layer 1 runs the flipped direction. Taken from a model so that its weights are initialised: a bare
    # AxLSTMBlock keeps torch.empty's values in its block-diagonal projections (gates of 1e26 and more, whose exp
    # takes torch's slow path: the whole block measured 1.3x its time with initialised weights).
    model = modeling.AxLSTMModel(config)
    model.set_mixer_implementation(implementation)
    block = model.layers[1].to(device).train()
    mixer = block.mixer
    tokens = 1 + config.frames_per_window // config.patch_size[0] * config.num_freq_patches
    heads, inner, width = config.num_heads, config.intermediate_size, config.hidden_size
    head_dim = inner // heads
    x = torch.randn(batch_size, tokens, width, device=device).requires_grad_()
    spec = resolve_mixer_spec(mixer, x)  # the block's choice (cell form, chunk, padding, fused kernels), as it runs
    cell, fused = spec.cell, spec.fused
    seq = tokens + spec.pad  # the mixer pads to whole chunks
    rows = batch_size * seq

    def leaf(*shape, shift=0.0):
        return (torch.randn(*shape, device=device) + shift).requires_grad_()

    x_in = leaf(batch_size, seq, width)
    x_mlstm, conv_rows = leaf(batch_size, seq, inner), leaf(rows, inner)
    q, k, v = (leaf(batch_size, heads, seq, head_dim) for _ in range(3))
    igate, fgate = leaf(batch_size, heads, seq), leaf(batch_size, heads, seq, shift=3.0)
    h, conv_act, z = leaf(batch_size, heads, seq, head_dim), leaf(batch_size, seq, inner), leaf(batch_size, seq, inner)

    def gates():
        x_gate_weight, conv_gate_weight, _, _ = derived_weights(mixer)
        out = torch.addmm(mixer.gate_proj.bias, conv_rows, conv_gate_weight.t())
        return out.addmm_(x_in.reshape(rows, -1), x_gate_weight.t())

    def conv():  # as the mixer runs it: the fused kernel where the implementation has it (float32 CPU training)
        weight, bias = mixer.conv.conv.weight, mixer.conv.conv.bias
        if fused is not None:
            return fused.conv_silu(x_mlstm, weight, bias)
        return F.silu(causal_depthwise_conv(x_mlstm, weight, bias))

    def qkv():
        _, _, qk_tiles, v_tiles = derived_weights(mixer)
        if fused is not None:
            return fused.heads(conv_rows.view(batch_size, seq, inner), x_mlstm, qk_tiles, v_tiles, heads)
        q_heads = _tiles_to_heads(_tiled_matmul(conv_rows, qk_tiles), batch_size, seq, heads)
        k_heads = _rows_to_heads(conv_rows, batch_size, seq, heads)
        v_heads = _tiles_to_heads(_tiled_matmul(x_mlstm, v_tiles), batch_size, seq, heads)
        return q_heads, k_heads, v_heads

    def tail():
        args = (h, mixer.out_norm.weight, conv_act, mixer.learnable_skip, z, mixer.out_norm.eps)
        return fused.tail(*args) if fused is not None else _MixerOutput.apply(*args)

    form = f"chunkwise, chunk {cell.chunk_size}" if cell.form == "chunkwise" else cell.form
    form += ", fused" if cell.fused is not None else ""
    up_flops = 3 * 2 * rows * width * 2 * inner  # forward + the two backward GEMMs
    parts = [
        ("whole block", lambda: block(x), None),
        ("pre-norm + direction flips", lambda: block.norm(x).flip(1).flip(1), None),
        ("up-projection (GEMM)", lambda: mixer.proj_up(x_in), up_flops),
        ("causal conv + SiLU", conv, None),
        ("gates (folded weights)", gates, None),
        ("q, k, v (16-wide tiles, head layout)", qkv, None),
        (f"mLSTM cell ({form})", lambda: run_cell(q, k, v, igate, fgate, cell, config.mlstm_eps), None),
        ("output: head norm, skip, gate", tail, None),
        ("down-projection (GEMM)", lambda: mixer.proj_down(x_mlstm), up_flops // 2),
    ]
    results = []
    for name, run, flops in parts:
        grads = [torch.randn_like(out) for out in _outputs(run())]
        times = []
        for step in range(steps + 2):
            sync()
            start = time.perf_counter()
            torch.autograd.backward(_outputs(run()), grads)
            sync()
            if step >= 2:
                times.append(time.perf_counter() - start)
        results.append((name, statistics.median(times), flops))
    block_seconds = results[0][1]
    return [
        (size, name, sec * 1e3, 100 * sec / block_seconds, flops / sec / 1e9 if flops else None)
        for name, sec, flops in results
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "small", "base"])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parts", action="store_true", help="also time one mLSTM block's parts (see above)")
    parser.add_argument(
        "--features_dir", default=None, help="prepare_features.py shards for the data phase (default: synthesised)"
    )
    parser.add_argument(
        "--cpu_allocator",
        default="tuned",
        choices=["tuned", "default"],
        help="glibc heap reuse as in examples/pretrain.py (hf_axlstm.cpu_allocator), or malloc's defaults",
    )
    parser.add_argument(
        "--cpu_kernels",
        default="fused",
        choices=["fused", "eager"],
        help="float32 training through the fused C++ kernels as in examples/pretrain.py (the mixer implementation "
        "'fused_cpu', hf_axlstm.cpu_kernels), or the eager folded forms ('auto')",
    )
    args = parser.parse_args(argv)
    implementation = "auto"
    if args.cpu_kernels == "fused" and args.device == "cpu":
        from hf_axlstm.cpu_kernels import fused_kernels

        fused_kernels()  # built (or loaded from the cache) now, not inside a timed step
        implementation = "fused_cpu"
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

    phase_rows, adam_rows, part_rows = [], [], []
    tmp = tempfile.TemporaryDirectory()
    features_dir = args.features_dir
    if features_dir is None:
        wav_dir = synthesised_corpus(Path(tmp.name) / "wav", clips_per_class=max(4, args.batch_size))
        features_dir = feature_shards(wav_dir, Path(tmp.name) / "features")
    for size in args.sizes:
        torch.manual_seed(0)
        model = AxLSTMForPreTraining(AxLSTMConfig.from_preset(size)).to(device).train()
        model.set_mixer_implementation(implementation)
        frames = model.config.frames_per_window
        patches = frames // model.config.patch_size[0] * model.config.num_freq_patches
        batch = {
            "input_values": torch.randn(args.batch_size, frames, 80, device=device),
            "attention_mask": torch.ones(args.batch_size, frames, dtype=torch.long, device=device),
            "noise": torch.rand(args.batch_size, patches, device=device),
        }
        script_adamw = adamw_kwargs("adamw_torch_fused", device)  # the script's default --optim
        optimizer = torch.optim.AdamW(parameter_groups(model, 0.05), lr=1e-4, betas=(0.9, 0.95), **script_adamw)
        loader = feature_batches(features_dir, model.config, args.batch_size)
        times = {"data": [], "forward": [], "backward": [], "optimizer": []}
        for step in range(args.steps + 1):  # the first step is a warm-up
            sync()
            before_data = time.perf_counter()
            real = next(loader)
            batch = {key: real[key].to(device) for key in batch}
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
                times["data"].append(start - before_data)
                times["forward"].append(after_forward - start)
                times["backward"].append(after_backward - after_forward)
                times["optimizer"].append(end - after_backward)
        medians = {phase: statistics.median(t) for phase, t in times.items()}
        total = sum(medians.values())
        for phase, seconds in medians.items():
            phase_rows.append((size, phase, seconds * 1e3, 100 * seconds / total))
        phase_rows.append((size, "step", total * 1e3, 100.0))
        print(f"[profile] {size}: step {total:.2f} s = {args.batch_size / total:.1f} clips/s", flush=True)

        if args.parts:
            part_rows += block_parts(size, args.batch_size, device, args.steps, sync, implementation)

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

    tmp.cleanup()
    where = cpu_name() if device.type == "cpu" else torch.cuda.get_device_name()
    print(
        f"\n{where}, {args.threads} threads, torch {torch.__version__}, batch {args.batch_size} of 2 s crops, fp32, "
        f"{args.cpu_allocator} allocator, mixer implementation {implementation!r}; data: 0 workers, log-mel shards\n"
    )
    print("| size | phase | ms | share of the step |")
    print("|---|---|---:|---:|")
    for size, phase, ms, share in phase_rows:
        print(f"| {size} | {phase} | {ms:.0f} | {share:.1f}% |")
    if part_rows:
        blocks = {size: AxLSTMConfig.from_preset(size).num_hidden_layers for size in args.sizes}
        print(f"\nOne mLSTM block, forward + backward of each part on its own ({args.batch_size} crops of 2 s):\n")
        print("| size | part | ms | share of the block | GFLOP/s |")
        print("|---|---|---:|---:|---:|")
        for size, name, ms, share, rate in part_rows:
            shown = f"{name} (x {blocks[size]} blocks)" if name == "whole block" else name
            print(f"| {size} | {shown} | {ms:.1f} | {share:.1f}% | {f'{rate:.0f}' if rate else '-'} |")
    print("\n| size | AdamW step | ms | x for-loop | share of the step |")
    print("|---|---|---:|---:|---:|")
    for size, name, ms, speedup, share in adam_rows:
        print(f"| {size} | {name} | {ms:.1f} | {speedup:.2f} | {share:.1f}% |")


if __name__ == "__main__":
    main()

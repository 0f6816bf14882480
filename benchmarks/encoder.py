"""Encoder speed: hf_axlstm vs a straightforward reference of the authors' formulation, on 2 s clips.

Prints ONE markdown table. Rows: size x batch x mode (forward / training step) x dtype; columns: clips/s and latency
(median of interleaved rounds, so the variants see the same machine load), peak memory and achieved FLOP/s as a
fraction of the fp32 GEMM peak measured in the same run.

- "reference": written here from the paper's / authors' description (facts only): the quadratic parallel mLSTM
  with the (S+1) x (S+1) repeat-based decay matrix and the S x S matrix normalised before the product with v,
  per-block einsum q/k/v projections, gates from two linears on concat(q, k, v), a padded Conv1d, and `.flip` around
  reversed blocks. It uses the same parameters as the hf_axlstm model (outputs agree to ~1e-6).
- FLOPs are counted analytically for the authors' formulation (matmuls only, full S x S products; the chunkwise form
  does fewer), so "% peak" is effective throughput, comparable between variants.
- Peak memory: the rise of the process's peak RSS during one call, in a fresh subprocess per (size, variant): the
  kernel's peak-RSS mark (VmHWM) is reset (`echo 5 > /proc/self/clear_refs`) just before the call and read after it,
  minus the RSS at the reset; glibc is told to mmap every block over 64 KiB (`MALLOC_MMAP_THRESHOLD_`), so freed
  tensors leave the RSS at once and the peak is the peak of live memory. It counts everything the call allocates at its worst moment (activations, S x S
  temporaries, gradients of the step, allocator slack), not the weights or the gradient buffers that exist before.

- On CUDA (`--device cuda`): every call ends with `torch.cuda.synchronize()`; peak memory is the rise of
  `torch.cuda.max_memory_allocated()` during one call, in the same process; bf16 autocast rows come for every batch and
  the training step, and their "% peak" is against the bf16 GEMM peak measured in the same run (fp32 rows: the fp32
  peak with TF32 off, torch's default).

    python benchmarks/encoder.py                       # quick: tiny + base, < 2 min on 2 cores
    python benchmarks/encoder.py --sizes tiny small base --repeats 5 --bf16_sizes tiny base
    python benchmarks/encoder.py --device cuda --sizes tiny small base --batches 1 8 64 --train_batch 64 \
        --train_sizes tiny small base --bf16_sizes tiny small base --repeats 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from hf_axlstm.configuration_axlstm import AxLSTMConfig
from hf_axlstm.modeling_axlstm import AxLSTMModel

FRAMES = 200  # 2 s clips

# ------------------------------------------------------------------------------------------- the reference model


def reference_mlstm(q, k, v, igate, fgate, eps=1e-6):
    """The stabilised parallel mLSTM as the authors write it. q, k, v (B, NH, S, DH); gates (B, NH, S, 1)."""
    batch, heads, seq, head_dim = q.shape
    log_fgates = F.logsigmoid(fgate)  # (B, NH, S, 1)
    lower = torch.ones(seq, seq, dtype=torch.bool, device=q.device).tril()
    cumsum = torch.cat([q.new_zeros(batch, heads, 1, 1), torch.cumsum(log_fgates, dim=-2)], dim=-2)  # (B, NH, S+1, 1)
    rep = cumsum.repeat(1, 1, 1, seq + 1)  # (B, NH, S+1, S+1)
    log_fg_matrix = torch.where(lower, (rep - rep.transpose(-2, -1))[:, :, 1:, 1:], -float("inf"))
    log_d = log_fg_matrix + igate.transpose(-2, -1)  # (B, NH, S, S)
    max_log_d = torch.max(log_d, dim=-1, keepdim=True).values
    d_matrix = torch.exp(log_d - max_log_d)
    c = (q @ (k / math.sqrt(head_dim)).transpose(-2, -1)) * d_matrix
    normaliser = torch.maximum(c.sum(dim=-1, keepdim=True).abs(), torch.exp(-max_log_d))
    return (c / (normaliser + eps)) @ v


def reference_mixer(mixer, x):
    inner = mixer.learnable_skip.shape[0]
    heads = mixer.num_heads
    batch, seq, _ = x.shape
    x_mlstm, z = F.linear(x, mixer.proj_up.weight).split(inner, dim=-1)
    conv = mixer.conv.conv
    padded = F.pad(x_mlstm.transpose(1, 2), (conv.kernel_size[0] - 1, 0))
    conv_act = F.silu(F.conv1d(padded, conv.weight, conv.bias, groups=inner).transpose(1, 2))

    def headwise(proj, t):
        blocks = t.view(batch, seq, -1, proj.block_size)
        return torch.einsum("...hd,hod->...ho", blocks, proj.weight).reshape(batch, seq, inner)

    q, k, v = headwise(mixer.q_proj, conv_act), headwise(mixer.k_proj, conv_act), headwise(mixer.v_proj, x_mlstm)
    qkv = torch.cat([q, k, v], dim=-1)
    w, b = mixer.gate_proj.weight, mixer.gate_proj.bias
    igate = F.linear(qkv, w[:heads], b[:heads]).transpose(-1, -2).unsqueeze(-1)  # (B, NH, S, 1)
    fgate = F.linear(qkv, w[heads:], b[heads:]).transpose(-1, -2).unsqueeze(-1)

    def split(t):
        return t.view(batch, seq, heads, -1).transpose(1, 2)

    h = reference_mlstm(split(q), split(k), split(v), igate, fgate, eps=mixer.config.mlstm_eps)  # (B, NH, S, DH)
    h = h.transpose(1, 2).reshape(batch * seq, inner)
    h = F.group_norm(h, heads, weight=1.0 + mixer.out_norm.weight, eps=mixer.out_norm.eps).view(batch, seq, inner)
    h = (h + mixer.learnable_skip * conv_act) * F.silu(z)
    return F.linear(h, mixer.proj_down.weight)


def reference_encoder(model: AxLSTMModel, input_values: torch.Tensor) -> torch.Tensor:
    hidden = model.embeddings(input_values)
    for block in model.layers:
        if block.reverse:
            hidden = hidden.flip(dims=[1])
        hidden = hidden + reference_mixer(block.mixer, block.norm(hidden))
        if block.reverse:
            hidden = hidden.flip(dims=[1])
    return model.layernorm(hidden)


def ours_encoder(model: AxLSTMModel, input_values: torch.Tensor) -> torch.Tensor:
    return model(input_values).last_hidden_state


VARIANTS = {"reference": reference_encoder, "ours": ours_encoder}

# ------------------------------------------------------------------------------------------------------ helpers


def clip_flops(config: AxLSTMConfig, seq: int) -> float:
    """Matmul FLOPs of one clip through the encoder (authors' formulation, full S x S products)."""
    d, inner, heads = config.hidden_size, config.intermediate_size, config.num_heads
    head_dim, bs = inner // heads, config.qkv_block_size
    per_block = (
        2 * seq * d * 2 * inner  # up-projection
        + 2 * seq * inner * d  # down-projection
        + 3 * 2 * seq * inner * bs  # block-diagonal q, k, v
        + 2 * seq * 3 * inner * 2 * heads  # gates
        + 2 * 2 * seq * seq * head_dim * heads  # q k^T and C v
    )
    patches = seq - 1
    return config.num_hidden_layers * per_block + 2 * patches * d * math.prod(config.patch_size)


def _cuda_wall() -> float:
    """Wall clock after the queued GPU work has finished."""
    torch.cuda.synchronize()
    return time.perf_counter()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter  # set from --clock / --device


def gemm_peak(size: int | None = None, repeats: int = 5, device: str = "cpu", dtype=torch.float32) -> float:
    """GEMM FLOP/s of `dtype` on `device` (best of `repeats` square products: the peak)."""
    size = size or (2048 if device == "cpu" else 8192)
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    a @ b
    times = []
    for _ in range(repeats):
        start = clock()
        a @ b
        times.append(clock() - start)
    return 2 * size**3 / min(times)


def interleaved_medians(fns: dict, rounds: int, warmup: int = 1) -> dict:
    """Median seconds per call, running the callables round-robin so they share the same machine load."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def rss_now_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`) and
    return the current RSS in KiB; without that interface, fall back to the lifetime peak (`ru_maxrss`)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss_now_kib()


def peak_rss_kib() -> int:
    """Peak RSS since the last `reset_peak_rss` (VmHWM), in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def build(size: str, seed: int = 0, device: str = "cpu") -> AxLSTMModel:
    torch.manual_seed(seed)
    return AxLSTMModel(AxLSTMConfig.from_preset(size)).eval().to(device)


def forward_fn(model, variant, inputs, dtype):
    encoder = VARIANTS[variant]

    def run():
        with torch.no_grad(), torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            return encoder(model, inputs)

    return run


def train_fn(model, variant, inputs, optimizer, dtype="fp32"):
    encoder = VARIANTS[variant]

    def run():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = encoder(model, inputs).float().square().mean()
        loss.backward()
        optimizer.step()

    return run


def cuda_peak_mib(fn) -> float:
    """Rise of the CUDA allocator's peak above what is allocated before one call of `fn` (MiB)."""
    fn()  # allocations that persist after a first call (gradient buffers, cached weights) belong to the baseline
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def memory_case(size: str, variant: str, train_batch: int, forward_batches: list[int]) -> dict:
    """Runs in a fresh subprocess: peak-RSS rise (MiB) of one call of each case, in increasing order of memory."""
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    model = build(size)
    inputs = {b: torch.randn(b, FRAMES, 80) for b in set(forward_batches) | {train_batch}}
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    # The gradients exist before the baseline (as in any training loop after its first step).
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    out = {}
    for batch in sorted(forward_batches):
        base = reset_peak_rss()
        forward_fn(model, variant, inputs[batch], "fp32")()
        out[f"forward_{batch}"] = (peak_rss_kib() - base) / 1024
    if train_batch:
        model.train()
        base = reset_peak_rss()
        train_fn(model, variant, inputs[train_batch], optimizer)()
        out[f"train_{train_batch}"] = (peak_rss_kib() - base) / 1024
    return out


def memory_env() -> dict:
    """Environment of a memory subprocess: glibc serves every block over 64 KiB with its own mmap and unmaps it when
    freed, so the resident set follows the live tensors (instead of keeping freed heap pages that later calls reuse
    without growing the RSS)."""
    return {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def measure_memory(size, variant, train_batch, forward_batches) -> dict:
    cmd = [sys.executable, __file__, "--_memory_case", json.dumps([size, variant, train_batch, forward_batches])]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True, env=memory_env())
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "small", "base"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--train_batch", type=int, default=8, help="training-step batch (0: skip training rows)")
    parser.add_argument("--train_sizes", nargs="+", default=["tiny"], help="sizes with a training-step row")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds (median)")
    parser.add_argument(
        "--bf16_sizes",
        nargs="*",
        default=["tiny"],
        help="sizes with bf16-autocast rows (CPU: batch 1, one round; CUDA: every batch and the training step)",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--clock",
        default="wall",
        choices=sorted(CLOCKS),
        help="wall time, or the process's CPU time (robust when other jobs share the cores; use with --threads 1)",
    )
    parser.add_argument("--no_memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--_memory_case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._memory_case:
        print(json.dumps(memory_case(*json.loads(args._memory_case))))
        return

    global clock
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here")
    clock = _cuda_wall if cuda else CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    os.environ["BENCH_THREADS"] = str(args.threads)
    peaks = {"fp32": gemm_peak(device=args.device)}
    if cuda:
        peaks["bf16"] = gemm_peak(device=args.device, dtype=torch.bfloat16)
    seq = 1 + (FRAMES // 4) * 5
    rows = []
    for size in args.sizes:
        model = build(size, device=args.device)
        flops = clip_flops(model.config, seq)
        train_batch = args.train_batch if size in args.train_sizes else 0
        memory = {}
        if not args.no_memory and not cuda:
            for variant in VARIANTS:
                memory[variant] = measure_memory(size, variant, train_batch, args.batches)
        bf16 = size in args.bf16_sizes
        cases = [
            ("forward", b, dtype) for b in args.batches for dtype in ["fp32"] + (["bf16"] if cuda and bf16 else [])
        ]
        if bf16 and not cuda:
            cases.append(("forward", 1, "bf16"))
        if train_batch:
            cases += [("train", train_batch, dtype) for dtype in ["fp32"] + (["bf16"] if cuda and bf16 else [])]
        fp32_seconds = {}
        for mode, batch, dtype in cases:
            inputs = torch.randn(batch, FRAMES, 80, device=args.device)
            fns = {}
            for variant in VARIANTS:
                if mode == "forward":
                    fns[variant] = forward_fn(model, variant, inputs, dtype)
                else:
                    model.train()
                    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
                    fns[variant] = train_fn(model, variant, inputs, optimizer, dtype)
            if cuda and not args.no_memory:
                memory_here = {variant: cuda_peak_mib(fn) for variant, fn in fns.items()}
            else:
                memory_here = {v: memory.get(v, {}).get(f"{mode}_{batch}") if dtype == "fp32" else None for v in fns}
            slow_bf16 = dtype == "bf16" and not cuda  # CPU bf16 without bf16 units: minutes per round
            rounds = 1 if slow_bf16 else args.repeats
            medians = interleaved_medians(fns, rounds, warmup=0 if slow_bf16 else 1)
            model.eval()
            for variant, seconds in medians.items():
                if dtype == "fp32":
                    fp32_seconds[mode, batch, variant] = seconds
                fp32_time = fp32_seconds.get((mode, batch, variant)) if dtype == "bf16" else None
                step_flops = flops * batch * (3 if mode == "train" else 1)
                mem, ref_mem = memory_here[variant], memory_here["reference"]
                rows.append(
                    {
                        "size": size,
                        "mode": mode,
                        "batch": batch,
                        "dtype": dtype,
                        "variant": variant,
                        "clips/s": batch / seconds,
                        "latency ms": seconds * 1e3,
                        "x ref": medians["reference"] / seconds,
                        "x fp32": fp32_time / seconds if fp32_time else None,  # no fp32 row of this shape: "-"
                        "peak MiB": mem,
                        "mem x ref": (mem / ref_mem) if mem is not None and ref_mem else None,
                        "flop/s": step_flops / seconds,
                    }
                )
        # The machine's speed drifts; the peak is the best GEMM rate seen at any point of the run (conservative).
        peaks["fp32"] = max(peaks["fp32"], gemm_peak(device=args.device))
    for row in rows:
        row["% peak"] = 100 * row.pop("flop/s") / peaks.get(row["dtype"], peaks["fp32"])

    if cuda:
        where = (
            f"{torch.cuda.get_device_name()}; GEMM peak measured: fp32 {peaks['fp32'] / 1e12:.1f} TFLOP/s (TF32 "
            f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}), bf16 {peaks['bf16'] / 1e12:.0f} TFLOP/s "
            "(best over the run); peak memory from the CUDA allocator"
        )
    else:
        where = (
            f"fp32 GEMM peak measured: {peaks['fp32'] / 1e9:.0f} GFLOP/s (best over the run; {args.threads} threads, "
            f"{args.clock} clock); load average at the end {os.getloadavg()[0]:.1f}; "
            f"{torch.backends.cpu.get_cpu_capability()}"
        )
    print(
        f"{where}; 2 s clips (251 tokens); median of {args.repeats} interleaved rounds"
        f"{'' if cuda else ' (bf16: 1)'}; torch {torch.__version__}.\n"
    )
    header = ["size", "mode", "batch", "dtype", "variant", "clips/s", "latency ms", "x ref", "x fp32", "peak MiB"]
    header += ["mem x ref", "% peak"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = []
        for key in header:
            value = row[key]
            if value is None:
                cells.append("-")
            elif isinstance(value, float):
                cells.append(f"{value:.2f}" if key in ("x ref", "x fp32", "mem x ref") else f"{value:.1f}")
            else:
                cells.append(str(value))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

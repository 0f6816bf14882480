"""Encoder speed: hf_axlstm vs the paper-shaped reference it ships, on 2 s clips; and the cost side of AxLSTM vs
SSAST (the paper's transformer baseline), at 2 s and 10 s.

Prints ONE markdown table. Rows: architecture x size x clip length x batch x mode (forward / training step) x dtype;
columns: clips/s and latency (median of interleaved rounds, so the variants, and the architectures, see the same
machine load), peak memory and achieved FLOP/s as a fraction of the fp32 GEMM peak measured in the same run. With
`--architectures axlstm ssast` an "architecture comparison" table follows: encoder parameters, GFLOP per clip,
forward and training-step clips/s, peak memory, and the ratio SSAST / AxLSTM, per size and clip length.

- "reference": the package's own paper-shaped mixer, the mixer implementation "plain" (`AxLSTMMixer.plain_forward`:
  up-projection, padded causal Conv1d + SiLU, per-block einsum q / k / v projections, gates from one linear on
  concat(q, k, v), head norm, skip, output gate, down-projection) with `mlstm_backend="parallel"` (the paper's
  quadratic S x S cell, `mlstm_parallel`, trained through autograd): a copy of the model (`plain_twin`) that shares
  its parameters, with its own config. "ours" is the model as it runs by default (`mixer_implementation="auto"`,
  `mlstm_backend="auto"`). Both compute the same function.
- SSAST (`--architectures ssast`): one variant, "ours" (`SSASTModel`: pre-norm blocks with torch's
  scaled_dot_product_attention, which is itself the straightforward formulation); no "reference", so "x ref" is "-".
  `--architectures` defaults to `axlstm` alone, so the commands of the tables in README.md give the same cases (the
  rows gain `arch` and `clip s` columns). `--no_reference` skips AxLSTM's reference (the comparison needs only
  `ours`); `--num_hidden_layers N` builds N blocks instead of 12 (smoke runs).
- `--seconds 2 10`: clip lengths (100 frames per second: 2 s = 251 tokens, 10 s = 1000 frames = 1251 tokens);
  `--frames 200 1001` gives frame counts instead (1001 = a 10 s clip's feature-extractor output, padded to whole
  4-frame patches: 1256 tokens).
- FLOPs are counted analytically for the authors' formulation (matmuls only, full S x S products; the chunkwise form
  does fewer), so "% peak" is effective throughput, comparable between variants. SSAST: qkv, q k^T, the weighted sum
  of v, the output projection and the MLP (`architectures.ssast_clip_flops`). A training step counts 3x the forward.
- Peak memory: the rise of the process's peak RSS during one call, in a fresh subprocess per (size, variant): the
  kernel's peak-RSS mark (VmHWM) is reset (`echo 5 > /proc/self/clear_refs`) just before the call and read after it,
  minus the RSS at the reset; glibc is told to mmap every block over 64 KiB (`MALLOC_MMAP_THRESHOLD_`), so freed
  tensors leave the RSS at once and the peak is the peak of live memory. It counts everything the call allocates at
  its worst moment (activations, S x S temporaries, gradients of the step, allocator slack), not the weights or the
  gradient buffers that exist before.
  One untimed batch-1 call of each kind comes first (the first call in a process allocates ~20 MiB of one-time state).
- Timings run under malloc's defaults unless `--cpu_allocator tuned`, which times them with the heap reuse that
  examples/pretrain.py and finetune.py set on a CPU (`hf_axlstm.cpu_allocator`): what a training user sees. With the
  defaults every block over glibc's adaptive mmap threshold (at most 32 MiB) is a fresh mmap, whose pages fault in
  again on every call; that costs AxLSTM's many large per-chunk and S x S temporaries more than SSAST's. (The memory
  subprocesses always run with their own mmap setting, above.)

- On CUDA (`--device cuda`): every call ends with `torch.cuda.synchronize()`; peak memory is the rise of
  `torch.cuda.max_memory_allocated()` during one call, in the same process; bf16 autocast rows come for every batch and
  the training step, and their "% peak" is against the bf16 GEMM peak measured in the same run (fp32 rows: the fp32
  peak with TF32 off, torch's default). A variant that runs out of GPU memory on its first call (the quadratic forms
  at 10 s and large batches) gets an "out of memory" row; the others are timed.

    python benchmarks/encoder.py                       # quick: tiny + base, < 2 min on 2 cores
    python benchmarks/encoder.py --sizes tiny small base --repeats 5 --bf16_sizes tiny base
    python benchmarks/encoder.py --device cuda --sizes tiny small base --batches 1 8 64 --train_batch 64 \
        --train_sizes tiny small base --bf16_sizes tiny small base --repeats 20
    # AxLSTM vs SSAST, 2 s and 10 s, with the architecture comparison table (CPU: long; see README.md)
    python benchmarks/encoder.py --architectures axlstm ssast --seconds 2 10 --sizes tiny small base \
        --train_sizes tiny small base --bf16_sizes --no_reference --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import signal
import subprocess
import sys
import time
import weakref

import torch

from hf_axlstm.modeling_axlstm import AxLSTMModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architectures import (  # noqa: E402
    ARCHITECTURES,
    architecture_of,
    axlstm_clip_flops,
    build_encoder,
    encoder_params,
    frames_for,
    num_tokens,
    quadratic_clip_flops,
)
from architectures import clip_flops as any_clip_flops  # noqa: E402

FRAMES = 200  # 2 s clips (the default)

# ------------------------------------------------------------------------------------------- the reference model


_PLAIN_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its "reference" twin


def plain_twin(model: AxLSTMModel) -> AxLSTMModel:
    """A copy of `model` that shares its parameters (the same tensors: trained and updated together) and runs the
    mixer implementation "plain" with the parallel cell (its own config, so `model`'s settings stay as they are);
    made once per model."""
    twin = _PLAIN_TWINS.get(model)
    if twin is None:
        twin = copy.deepcopy(model, memo={id(p): p for p in model.parameters()})
        twin.set_mixer_implementation("plain")
        twin.config.mlstm_backend = "parallel"
        _PLAIN_TWINS[model] = twin
    return twin


def reference_encoder(model: AxLSTMModel, input_values: torch.Tensor) -> torch.Tensor:
    twin = plain_twin(model)
    twin.train(model.training)
    return twin(input_values).last_hidden_state


def ours_encoder(model, input_values: torch.Tensor) -> torch.Tensor:
    return model(input_values).last_hidden_state


VARIANTS = {"reference": reference_encoder, "ours": ours_encoder}  # AxLSTM's
# Variants per architecture; SSAST has no separate reference (SSASTModel is the straightforward formulation).
ARCH_VARIANTS = {"axlstm": VARIANTS, "ssast": {"ours": ours_encoder}}

# ------------------------------------------------------------------------------------------------------ helpers


clip_flops = axlstm_clip_flops  # the AxLSTM count (authors' formulation); architectures.clip_flops dispatches


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
    """Median seconds per call, running the callables round-robin so they share the same machine load; the order is
    reversed every other round (A B, B A, ...), so that no callable always runs right after the same other one."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for index in range(rounds):
        order = list(fns.items()) if index % 2 == 0 else list(fns.items())[::-1]
        for name, fn in order:
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


def build(size: str, seed: int = 0, device: str = "cpu", architecture: str = "axlstm", layers: int | None = None):
    """The encoder of preset `size` of `architecture` (`layers`: fewer blocks, for quick runs)."""
    overrides = {"num_hidden_layers": layers} if layers else {}
    return build_encoder(architecture, size, seed=seed, device=device, **overrides)


def forward_fn(model, variant, inputs, dtype):
    encoder = ARCH_VARIANTS[architecture_of(model)][variant]

    def run():
        with torch.no_grad(), torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            return encoder(model, inputs)

    return run


def train_fn(model, variant, inputs, optimizer, dtype="fp32"):
    encoder = ARCH_VARIANTS[architecture_of(model)][variant]

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


def memory_case(
    size: str,
    variant: str,
    train_batch: int,
    forward_batches: list[int],
    architecture: str = "axlstm",
    frames: int = FRAMES,
    layers: int | None = None,
) -> dict:
    """Runs in a fresh subprocess: peak-RSS rise (MiB) of one call of each case, in increasing order of memory."""
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    model = build(size, architecture=architecture, layers=layers)
    inputs = {b: torch.randn(b, frames, 80) for b in set(forward_batches) | {train_batch}}
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    # The gradients exist before the baseline (as in any training loop after its first step).
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    # One untimed call of each kind at batch 1 first: the first call in a process allocates one-time state (about
    # 20 MiB on the CPU: thread pools, kernel caches), which is no cost of the call and would otherwise land on
    # whichever case is measured first.
    warm = torch.randn(1, frames, 80)
    forward_fn(model, variant, warm, "fp32")()
    out = {}
    for batch in sorted(forward_batches):
        base = reset_peak_rss()
        forward_fn(model, variant, inputs[batch], "fp32")()
        out[f"forward_{batch}"] = (peak_rss_kib() - base) / 1024
    if train_batch:
        model.train()
        train_fn(model, variant, warm, optimizer)()
        base = reset_peak_rss()
        train_fn(model, variant, inputs[train_batch], optimizer)()
        out[f"train_{train_batch}"] = (peak_rss_kib() - base) / 1024
    return out


def memory_env() -> dict:
    """Environment of a memory subprocess: glibc serves every block over 64 KiB with its own mmap and unmaps it when
    freed, so the resident set follows the live tensors (instead of keeping freed heap pages that later calls reuse
    without growing the RSS)."""
    return {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def measure_memory(
    size, variant, train_batch, forward_batches, architecture="axlstm", frames=FRAMES, layers=None
) -> dict:
    case = [size, variant, train_batch, forward_batches, architecture, frames, layers]
    cmd = [sys.executable, __file__, "--_memory_case", json.dumps(case)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=memory_env())
    if result.returncode == -signal.SIGKILL:  # the kernel's OOM killer: report it, time the rest
        note = f"{architecture} {size} {variant}, {frames} frames: the memory subprocess was killed (out of memory)"
        print(f"warning: {note}", file=sys.stderr, flush=True)
        KILLED_MEMORY_CASES.append(note)
        return {}
    if result.returncode != 0:
        raise SystemExit(f"memory case {case} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


KILLED_MEMORY_CASES: list[str] = []  # shown under the table; their peak MiB cells are "-"


# --------------------------------------------------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "small", "base"])
    parser.add_argument(
        "--architectures",
        nargs="+",
        default=["axlstm"],
        choices=sorted(ARCHITECTURES),
        help="encoders to time (default: axlstm, as the README's tables); two give the architecture comparison",
    )
    parser.add_argument(
        "--seconds",
        nargs="+",
        type=float,
        default=[2.0],
        help="clip lengths in seconds (100 frames per second: 2 s = 251 tokens, 10 s = 1251 tokens)",
    )
    parser.add_argument(
        "--frames",
        nargs="+",
        type=int,
        default=None,
        help="clip lengths in log-mel frames instead of --seconds (e.g. 1001: a 10 s clip's feature-extractor output, "
        "1256 tokens)",
    )
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
    parser.add_argument(
        "--compare_batch",
        type=int,
        default=None,
        help="forward batch of the architecture comparison (default: 8 if in --batches, else the largest)",
    )
    parser.add_argument("--num_hidden_layers", type=int, default=None, help="fewer blocks (quick runs)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--clock",
        default="wall",
        choices=sorted(CLOCKS),
        help="wall time, or the process's CPU time (robust when other jobs share the cores; use with --threads 1)",
    )
    parser.add_argument(
        "--cpu_allocator",
        default="default",
        choices=["default", "tuned"],
        help="timings under malloc's defaults, or with the heap reuse examples/pretrain.py sets on a CPU",
    )
    parser.add_argument("--no_memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument(
        "--no_reference",
        action="store_true",
        help="skip AxLSTM's reference variant (the architecture comparison needs only `ours`; 'x ref' is '-')",
    )
    parser.add_argument("--_memory_case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._memory_case:
        print(json.dumps(memory_case(*json.loads(args._memory_case))))
        return

    global clock
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here")
    if args.compare_batch is not None and args.compare_batch not in args.batches:
        raise SystemExit(f"--compare_batch {args.compare_batch} is not one of --batches {args.batches}")
    clock = _cuda_wall if cuda else CLOCKS[args.clock]
    if args.cpu_allocator == "tuned" and not cuda:
        from hf_axlstm.cpu_allocator import tune_cpu_allocator

        tune_cpu_allocator()  # this process only: the memory subprocesses keep their own setting
    torch.set_num_threads(args.threads)
    os.environ["BENCH_THREADS"] = str(args.threads)
    if args.frames:
        clip_lengths = [(f"{f / 100:g}", f) for f in args.frames]
    else:
        clip_lengths = [(f"{s:g}", frames_for(s)) for s in args.seconds]
    # AxLSTM first, so the ratio rows are SSAST / AxLSTM.
    architectures = [arch for arch in ARCHITECTURES if arch in args.architectures]
    peaks = {"fp32": gemm_peak(device=args.device)}
    if cuda:
        peaks["bf16"] = gemm_peak(device=args.device, dtype=torch.bfloat16)
    rows = []
    info = {}  # (architecture, size, clip s) -> encoder parameters, FLOPs per clip, tokens
    for size in args.sizes:
        models = {
            arch: build(size, device=args.device, architecture=arch, layers=args.num_hidden_layers)
            for arch in architectures
        }
        variants = [
            (arch, variant)
            for arch in architectures
            for variant in ARCH_VARIANTS[arch]
            if not (args.no_reference and variant == "reference")
        ]
        if ("axlstm", "reference") in variants:
            plain_twin(models["axlstm"])  # made here, not inside a timed call
        train_batch = args.train_batch if size in args.train_sizes else 0
        bf16 = size in args.bf16_sizes
        for clip_s, frames in clip_lengths:
            flops = {}
            for arch, model in models.items():
                seq = num_tokens(model.config, frames)
                flops[arch] = any_clip_flops(model.config, seq)
                info[arch, size, clip_s] = {
                    "params": encoder_params(model),
                    "flops": flops[arch],
                    "quadratic": quadratic_clip_flops(model.config, seq),
                    "tokens": seq,
                }
            memory = {}
            if not args.no_memory and not cuda:
                for arch, variant in variants:
                    memory[arch, variant] = measure_memory(
                        size, variant, train_batch, args.batches, arch, frames, args.num_hidden_layers
                    )
            cases = [
                ("forward", b, dtype) for b in args.batches for dtype in ["fp32"] + (["bf16"] if cuda and bf16 else [])
            ]
            if bf16 and not cuda:
                cases.append(("forward", 1, "bf16"))
            if train_batch:
                cases += [("train", train_batch, dtype) for dtype in ["fp32"] + (["bf16"] if cuda and bf16 else [])]
            fp32_seconds = {}
            for mode, batch, dtype in cases:
                inputs = torch.randn(batch, frames, 80, device=args.device)
                fns = {}
                for arch, variant in variants:
                    model = models[arch]
                    if mode == "forward":
                        fns[arch, variant] = forward_fn(model, variant, inputs, dtype)
                    else:
                        model.train()
                        optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
                        fns[arch, variant] = train_fn(model, variant, inputs, optimizer, dtype)
                out_of_memory = []
                if cuda:
                    # One call per variant first (the peak, or only a trial): a variant that runs out of GPU memory
                    # (the quadratic forms at 10 s and large batches) is reported as such, the others are timed.
                    memory_here = {}
                    for key, fn in list(fns.items()):
                        try:
                            memory_here[key] = None if args.no_memory else cuda_peak_mib(fn)
                            if args.no_memory:
                                fn()
                        except torch.OutOfMemoryError:
                            out_of_memory.append(key)
                            del fns[key]
                            models[key[0]].zero_grad(set_to_none=True)
                            torch.cuda.empty_cache()
                else:
                    memory_here = {
                        key: memory.get(key, {}).get(f"{mode}_{batch}") if dtype == "fp32" else None for key in fns
                    }
                slow_bf16 = dtype == "bf16" and not cuda  # CPU bf16 without bf16 units: minutes per round
                rounds = 1 if slow_bf16 else args.repeats
                medians = interleaved_medians(fns, rounds, warmup=0 if slow_bf16 else 1)
                for model in models.values():
                    model.eval()
                case = {"size": size, "clip s": clip_s, "mode": mode, "batch": batch, "dtype": dtype}
                for arch, variant in out_of_memory:
                    rows.append({**case, "arch": arch, "variant": variant, "clips/s": "out of memory"})
                for (arch, variant), seconds_per_call in medians.items():
                    if dtype == "fp32":
                        fp32_seconds[mode, batch, arch, variant] = seconds_per_call
                    fp32_time = fp32_seconds.get((mode, batch, arch, variant)) if dtype == "bf16" else None
                    step_flops = flops[arch] * batch * (3 if mode == "train" else 1)
                    ref_time = medians.get((arch, "reference"))
                    mem, ref_mem = memory_here[arch, variant], memory_here.get((arch, "reference"))
                    rows.append(
                        {
                            **case,
                            "arch": arch,
                            "variant": variant,
                            "clips/s": batch / seconds_per_call,
                            "latency ms": seconds_per_call * 1e3,
                            "x ref": ref_time / seconds_per_call if ref_time else None,  # no reference: "-"
                            "x fp32": fp32_time / seconds_per_call if fp32_time else None,  # no fp32 row: "-"
                            "peak MiB": mem,
                            "mem x ref": (mem / ref_mem) if mem is not None and ref_mem else None,
                            "flop/s": step_flops / seconds_per_call,
                        }
                    )
        # The machine's speed drifts; the peak is the best GEMM rate seen at any point of the run (conservative).
        peaks["fp32"] = max(peaks["fp32"], gemm_peak(device=args.device))
        del models
    for row in rows:
        flop_s = row.pop("flop/s", None)
        row["% peak"] = None if flop_s is None else 100 * flop_s / peaks.get(row["dtype"], peaks["fp32"])

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
            f"{torch.backends.cpu.get_cpu_capability()}; timed with "
            f"{'the tuned allocator' if args.cpu_allocator == 'tuned' else 'malloc defaults'}"
        )
    tokens = {clip_s: i["tokens"] for (_, _, clip_s), i in info.items()}
    clips = ", ".join(f"{clip_s} s clips ({n} tokens)" for clip_s, n in tokens.items())
    layers = f"; {args.num_hidden_layers} blocks (not the presets' 12)" if args.num_hidden_layers else ""
    print(
        f"{where}; {clips}{layers}; median of {args.repeats} interleaved rounds"
        f"{'' if cuda else ' (bf16: 1)'}; torch {torch.__version__}.\n"
    )
    header = ["arch", "size", "clip s", "mode", "batch", "dtype", "variant", "clips/s", "latency ms", "x ref"]
    header += ["x fp32", "peak MiB", "mem x ref", "% peak"]
    print_table(header, rows)
    for note in KILLED_MEMORY_CASES:
        print(f"\nPeak memory not measured for {note}; its rows show '-'.")
    if len(architectures) > 1:
        print()
        print_comparison(rows, info, architectures, args, cuda)


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if key in ("x ref", "x fp32", "mem x ref") else f"{value:.1f}"
    return str(value)


def print_table(header: list[str], rows: list[dict]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(_cell(key, row.get(key)) for key in header) + " |")


def print_comparison(rows: list[dict], info: dict, architectures: list[str], args, cuda: bool) -> None:
    """The architecture comparison: per clip length and size, one line per architecture ("ours" variant) and the
    ratio of each to the first architecture (AxLSTM comes first: SSAST / AxLSTM)."""
    fwd_batch = args.compare_batch or (8 if 8 in args.batches else max(args.batches))
    found = {
        (r["arch"], r["size"], r["clip s"], r["mode"], r["batch"], r["dtype"]): r
        for r in rows
        if r["variant"] == "ours"
    }
    dtypes = ["fp32"] + (["bf16"] if any(r["dtype"] == "bf16" for r in rows) and cuda else [])
    columns = {}  # name -> (mode, batch, dtype, field)
    for dtype in dtypes:
        tag = "" if dtype == "fp32" else "bf16 "
        columns[f"{tag}fwd clips/s (b{fwd_batch})"] = ("forward", fwd_batch, dtype, "clips/s")
        if args.train_batch:
            columns[f"{tag}train clips/s (b{args.train_batch})"] = ("train", args.train_batch, dtype, "clips/s")
    columns[f"fwd peak MiB (b{fwd_batch})"] = ("forward", fwd_batch, "fp32", "peak MiB")
    if args.train_batch:
        columns[f"train peak MiB (b{args.train_batch})"] = ("train", args.train_batch, "fp32", "peak MiB")
    header = ["clip s", "size", "architecture", "params M", "GFLOP/clip", "S x S %", *columns]
    base = architectures[0]
    print(
        "Architecture comparison (variant `ours`; fp32 unless marked bf16; params: encoder, no head; GFLOP/clip: "
        "analytic matmul count of one clip's forward, AxLSTM's with the full S x S products of the authors' parallel "
        "form (its chunkwise kernel, `auto`'s choice on the CPU beyond a few hundred tokens, does fewer); S x S %: that "
        f"quadratic part's share; peak MiB: rise during one call; ratio rows: architecture / {base}, > 1 = more):\n"
    )
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|" + "---:|" * (len(header) - 3))
    for clip_s in dict.fromkeys(r["clip s"] for r in rows):
        for size in dict.fromkeys(r["size"] for r in rows):
            values = {}
            for arch in architectures:
                meta = info.get((arch, size, clip_s))
                if meta is None:
                    continue
                values[arch] = [meta["params"] / 1e6, meta["flops"] / 1e9, 100 * meta["quadratic"] / meta["flops"]]
                for mode, batch, dtype, field in columns.values():
                    row = found.get((arch, size, clip_s, mode, batch, dtype))
                    values[arch].append(row.get(field) if row else None)
            for arch, vals in values.items():
                cells = [clip_s, size, arch] + [
                    "-" if v is None else str(v) if isinstance(v, str) else f"{v:.2f}" if i < 2 else f"{v:.1f}"
                    for i, v in enumerate(vals)
                ]
                print("| " + " | ".join(cells) + " |")
            for arch in architectures[1:]:
                if arch not in values or base not in values:
                    continue
                ratios = [
                    a / b if isinstance(a, float | int) and isinstance(b, float | int) and b else None
                    for a, b in zip(values[arch], values[base])
                ]
                ratios[2] = None  # a ratio of shares says nothing
                cells = [clip_s, size, f"{arch} / {base}"] + ["-" if r is None else f"{r:.2f}" for r in ratios]
                print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

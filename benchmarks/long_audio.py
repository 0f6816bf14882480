"""Long audio: one clip of 2-60 s through the encoder as ONE sequence (parallel vs chunkwise vs auto kernels, and the
paper-shaped reference: encoder.py's `reference_encoder`, the mixer implementation "plain" with the quadratic parallel
cell) or as independent 2 s windows (the HEAR protocol). Prints ONE markdown table.

Time: median wall seconds per clip of `--repeats` rounds in which every case runs once, round-robin, in this process
(so all cases see the same machine load; the machine's drift moved identical cases by up to 25% when each was timed in
its own process), after one warm-up round. `--per_process` times each case in a fresh subprocess instead (the median of
`--repeats` calls after two warm-ups). Peak memory: in a fresh subprocess per case; after the model and the input are
built, the kernel's peak-RSS mark is reset (`echo 5 > /proc/self/clear_refs`), the case runs once, and the rise of the
peak RSS (VmHWM) above the RSS at the reset is reported (glibc mmaps every block over 64 KiB, so freed tensors leave
the RSS at once): the memory the call itself needed at its worst moment (activations, S x S matrices, states,
allocator slack), not the model weights.

    python benchmarks/long_audio.py                                   # quick: tiny, 2/5/10 s, < 2 min on 2 cores
    python benchmarks/long_audio.py --size base --seconds 2 5 10 30 60 --repeats 1
    python benchmarks/long_audio.py --device cuda --size base --seconds 2 5 10 30 60 --repeats 10 \
        --max_quadratic_seconds 60

On CUDA (`--device cuda`) the cases run in this process, each call ends with `torch.cuda.synchronize()`, and the peak
is the rise of `torch.cuda.max_memory_allocated()` above the memory allocated before the call (after a first call, as
in encoder.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import encoder  # noqa: E402
from encoder import (  # noqa: E402
    CLOCKS,
    _cuda_wall,
    build,
    cuda_peak_mib,
    memory_env,
    peak_rss_kib,
    reference_encoder,
    reset_peak_rss,
)

FRAMES_PER_SECOND = 100
MODES = ("reference", "parallel", "chunkwise", "auto", "windows")
OPTIONAL_MODES = ("triton",)  # CUDA with NX-AI mlstm_kernels (inference)


def run_case(
    size: str, seconds: float, mode: str, repeats: int, threads: int, clock: str, what: str, device: str = "cpu"
) -> dict:
    """One case in this (fresh, on CPU) process: `what="memory"`: the peak-memory rise of one call; `what="time"`: the
    median of `repeats` calls after two warm-up calls."""
    torch.set_num_threads(threads)
    cuda = device == "cuda"
    timer = _cuda_wall if cuda else CLOCKS[clock]
    call = case_call(build(size, device=device), seconds, mode)

    if what == "memory" and cuda:
        return {"peak_mib": cuda_peak_mib(call)}
    if what == "memory":
        base = reset_peak_rss()
        call()
        return {"peak_mib": (peak_rss_kib() - base) / 1024}
    for _ in range(2):
        call()
    times = []
    for _ in range(repeats):
        start = timer()
        call()
        times.append(timer() - start)
    return {"seconds": sorted(times)[len(times) // 2]}


def case_call(model, seconds: float, mode: str):
    """The call that encodes one clip of `seconds` in `mode` (the model's backend is set inside, so one model can
    serve every case)."""
    frames = int(seconds * FRAMES_PER_SECOND)
    inputs = torch.randn(1, frames, 80, generator=torch.Generator().manual_seed(0)).to(model.device)
    if mode == "windows":
        # The clip cut into independent 2 s windows, encoded as one batch (zero-padded to whole windows).
        windows = -(-frames // 200)
        inputs = torch.nn.functional.pad(inputs, (0, 0, 0, windows * 200 - frames)).view(windows, 200, 80)

    def call():
        with torch.no_grad():
            if mode == "reference":
                return reference_encoder(model, inputs)
            model.config.mlstm_backend = "auto" if mode == "windows" else mode
            return model(inputs).last_hidden_state

    return call


def run_subprocess(case: list, env: dict, timeout: float) -> dict | str:
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--_case", json.dumps(case)],
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
            env=env,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    except subprocess.CalledProcessError as err:
        return "failed: " + (err.stderr.strip().splitlines() or ["?"])[-1][:60]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[2, 5, 10])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES + OPTIONAL_MODES)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="wall or process CPU time")
    parser.add_argument("--max_quadratic_seconds", type=float, default=10, help="longest clip for the S x S forms")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per case before it is reported as such")
    parser.add_argument(
        "--per_process",
        action="store_true",
        help="CPU: time each case in its own fresh process instead of round-robin in this one",
    )
    parser.add_argument("--_case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._case:
        print(json.dumps(run_case(*json.loads(args._case))))
        return

    results = {}
    if not args.per_process and args.device == "cpu":
        torch.set_num_threads(args.threads)
        encoder.clock = CLOCKS[args.clock]
        model = build(args.size)
        cases = [(s, m) for s in args.seconds for m in args.modes]
        runnable = [c for c in cases if not (c[1] in ("reference", "parallel") and c[0] > args.max_quadratic_seconds)]
        medians = encoder.interleaved_medians({c: case_call(model, *c) for c in runnable}, args.repeats, warmup=1)
        for seconds, mode in cases:
            if (seconds, mode) not in medians:
                results[seconds, mode] = "skipped (S x S)"
                continue
            case = [args.size, seconds, mode, args.repeats, args.threads, args.clock, "memory"]
            memory = run_subprocess(case, memory_env(), args.timeout)
            results[seconds, mode] = {
                "seconds": medians[seconds, mode],
                **(memory if isinstance(memory, dict) else {}),
            }
    for seconds in args.seconds:
        if not args.per_process and args.device == "cpu":
            break
        for mode in args.modes:
            if mode in ("reference", "parallel") and seconds > args.max_quadratic_seconds:
                results[seconds, mode] = "skipped (S x S)"
                continue
            case = [args.size, seconds, mode, args.repeats, args.threads, args.clock]
            if args.device == "cuda":
                try:
                    memory = run_case(*case, "memory", "cuda")  # first: the memory call also warms up
                    results[seconds, mode] = {**run_case(*case, "time", "cuda"), **memory}
                except torch.OutOfMemoryError:
                    results[seconds, mode] = "out of GPU memory"
                torch.cuda.empty_cache()
                continue
            # Memory with glibc told to unmap freed blocks at once (see encoder.memory_env); time in the default
            # environment, where freed blocks are reused (that setting would add page faults to every call).
            timing = run_subprocess(case + ["time"], dict(os.environ), args.timeout)
            memory = run_subprocess(case + ["memory"], memory_env(), args.timeout)
            results[seconds, mode] = {**timing, **memory} if isinstance(timing, dict) else timing

    if args.device == "cuda":
        where = f"{torch.cuda.get_device_name()}, median of {args.repeats}; peak = rise of the CUDA allocator's peak"
    else:
        where = (
            f"{args.threads} threads, {args.clock} clock, median of {args.repeats}"
            f"{' (fresh process per case)' if args.per_process else ' interleaved rounds in one process'}; peak = rise "
            f"of peak RSS during one call (fresh process per case); load average at the end {os.getloadavg()[0]:.1f}"
        )
    print(
        f"AxLSTM-{args.size[0].upper()}, one clip (batch 1), fp32, {where}; torch {torch.__version__}. "
        f"'x 2 s' = time / time of the 2 s clip in the same mode; 'x ref' = reference time / time.\n"
    )
    header = ["clip s", "tokens", "mode", "time s", "x 2 s", "x ref", "peak MiB"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for seconds in args.seconds:
        tokens = 1 + int(seconds * FRAMES_PER_SECOND) // 4 * 5
        for mode in args.modes:
            res = results[seconds, mode]
            if isinstance(res, str):
                print(f"| {seconds:g} | {tokens} | {mode} | {res} | - | - | - |")
                continue
            two = results.get((2.0, mode)) if 2.0 in args.seconds else None
            ref = results.get((seconds, "reference"))
            x_two = f"{res['seconds'] / two['seconds']:.2f}" if isinstance(two, dict) else "-"
            x_ref = f"{ref['seconds'] / res['seconds']:.2f}" if isinstance(ref, dict) else "-"
            peak = f"{res['peak_mib']:.0f}" if "peak_mib" in res else "-"
            print(f"| {seconds:g} | {tokens} | {mode} | {res['seconds']:.4g} | {x_two} | {x_ref} | {peak} |")


if __name__ == "__main__":
    main()

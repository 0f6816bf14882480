"""Every GPU measurement of the pretraining-throughput work in one run, for a machine lent for a few minutes: each
step is one of the benchmarks here, run as a subprocess with its own time limit, its markdown output appended to one
report (also printed as it goes), so a step that fails or runs out of time costs only itself.

    python benchmarks/gpu_pretraining.py --out report.md                     # everything, in priority order
    python benchmarks/gpu_pretraining.py --out report.md --steps script-tiny reference-tiny
    python benchmarks/gpu_pretraining.py --smoke --out /tmp/smoke.md         # the plumbing on a CPU (2 blocks, tiny)

Steps, in the order they run (`--steps` picks some; `--list` prints them with their commands):
- `script-tiny`, `script-base`: `pretrain_throughput.py`, bf16 autocast, the model-only step next to
  examples/pretrain.py itself on prepare_features.py shards with 8 DataLoader workers, tiny at batch 256 and base at
  128 (the issue's batches), eager and `--torch_compile` (the script's end-to-end throughput against the model-only
  step, and what compiling buys).
- `reference-tiny`, `reference-base`: `encoder.py`, the training step (forward + backward + SGD) of hf_axlstm against
  its reference (the mixer implementation "plain" with the parallel cell), fp32 and bf16, with the CUDA allocator's peak
  memory (the "2x the reference's bf16 step, at most 0.6x its memory" target).
- `profile`: `train_profile.py --parts`, forward / backward / optimizer / data and one block's parts, tiny at 256 and
  base at 128.
- `kernels`: `cell_training.py --kernels`, the training forms and chunk sizes on CUDA (whether `auto`'s CPU-measured
  training chunk and crossing hold there; `select_chunk_size` keeps the config's chunk on CUDA until measured).

The report starts with the device, torch and the steps; each step's section has its commands, exit status and wall
time. The steps' time limits add up to 32 minutes, more than a lent machine usually has: `--steps` picks what fits
(`script-tiny` and `reference-tiny` first: they hold the issue's targets), and `--list` shows the limits. `--smoke`
runs every step on the CPU with 2 blocks, batch 2 and one timed step, to check the commands before device time is
spent on them (its figures mean nothing; 10 minutes on 2 cores, most of it compiling).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def steps(smoke: bool) -> dict[str, tuple[list[list[str]], int]]:
    """{step: ([benchmark argv, ...], time limit in seconds for the step)}."""
    py = [sys.executable]
    tiny, base = (2, 2) if smoke else (256, 128)
    few = ["--num_hidden_layers", "2"] if smoke else []
    device = ["--device", "cpu" if smoke else "cuda"]
    timed = ["--steps", "1", "--warmup", "1"] if smoke else ["--steps", "6", "--warmup", "3"]
    workers = ["--num_workers", "0" if smoke else "8"]

    def script(preset: str, batch: int) -> list[list[str]]:
        cmd = py + [str(HERE / "pretrain_throughput.py"), "--presets", preset, "--batch_size", str(batch), "--bf16",
                    "--modes", "model only", "script", *timed, *workers, *device, *few]  # fmt: skip
        return [cmd, cmd + ["--torch_compile"]]

    def reference(size: str, batch: int) -> list[list[str]]:
        return [py + [str(HERE / "encoder.py"), "--sizes", size, "--batches", str(batch), "--train_batch", str(batch),
                      "--train_sizes", size, "--bf16_sizes", size, "--repeats", "1" if smoke else "5", *device,
                      *few, *(["--no_memory"] if smoke else [])]]  # fmt: skip

    profile = [
        py
        + [
            str(HERE / "train_profile.py"),
            "--sizes",
            size,
            "--batch_size",
            str(batch),
            "--parts",
            "--steps",
            "1" if smoke else "3",
            *device,
        ]  # fmt: skip
        for size, batch in (("tiny", tiny), ("base", base))
    ]
    cases = ["96,2,130"] if smoke else ["96,256,251", "384,128,251", "96,8,1251", "384,8,1251"]
    kernels = [py + [str(HERE / "cell_training.py"), "--kernels", "--cases", *cases, *device,
                     "--rounds", "1" if smoke else "5", "--chunk_sizes", "64", "128"]]  # fmt: skip
    return {
        "script-tiny": (script("tiny", tiny), 420),
        "reference-tiny": (reference("tiny", tiny), 240),
        "script-base": (script("base", base), 420),
        "reference-base": (reference("base", base), 300),
        "profile": (profile, 300),
        "kernels": (kernels, 240),
    }


def run_step(name: str, commands: list[list[str]], limit: int, report) -> bool:
    """Run one step's commands within `limit` seconds in all; append their output to the report. True if all ran."""
    start, ok = time.monotonic(), True
    print(f"\n## {name}\n", file=report, flush=True)
    for cmd in commands:
        left = limit - (time.monotonic() - start)
        shown = shlex.join([Path(cmd[0]).name, *[Path(c).name if c.endswith(".py") else c for c in cmd[1:]]])
        print(f"`{shown}`\n", file=report, flush=True)
        if left <= 0:
            print(f"not run: the step's {limit} s were spent\n", file=report, flush=True)
            ok = False
            continue
        began = time.monotonic()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
            status, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as expired:
            status, out, err = "timed out", expired.stdout or "", expired.stderr or ""
            out, err = (t.decode() if isinstance(t, bytes) else t for t in (out, err))
        print(out.strip() + "\n", file=report, flush=True)
        print(f"(exit {status}, {time.monotonic() - began:.0f} s)\n", file=report, flush=True)
        if status != 0:
            ok = False
            print("```\n" + err.strip()[-3000:] + "\n```\n", file=report, flush=True)
    return ok


class _Tee:
    """Write to the report file and to stdout."""

    def __init__(self, path: Path):
        self.file = open(path, "w")

    def write(self, text: str) -> None:
        self.file.write(text)
        sys.stdout.write(text)

    def flush(self) -> None:
        self.file.flush()
        sys.stdout.flush()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the markdown report to write")
    parser.add_argument("--steps", nargs="+", default=None, help="steps to run (default: all, in order)")
    parser.add_argument("--smoke", action="store_true", help="check the commands on a CPU (2 blocks, batch 2)")
    parser.add_argument("--list", action="store_true", help="print the steps and their commands, run nothing")
    args = parser.parse_args(argv)
    plan = steps(args.smoke)
    chosen = args.steps or list(plan)
    unknown = [name for name in chosen if name not in plan]
    if unknown:
        parser.error(f"--steps {unknown}: unknown; expected some of {list(plan)}")
    if args.list:
        for name in chosen:
            commands, limit = plan[name]
            print(f"{name} (at most {limit} s):")
            for cmd in commands:
                print("    " + shlex.join(cmd))
        return 0

    import torch

    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run on a GPU machine, or --smoke to check the commands on a CPU")
    device = "CPU (smoke run: the figures mean nothing)" if args.smoke else torch.cuda.get_device_name(0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = _Tee(args.out)
    print(f"# GPU pretraining measurements\n\n{device}; torch {torch.__version__}; steps {' '.join(chosen)}",
          file=report, flush=True)  # fmt: skip
    failed = [name for name in chosen if not run_step(name, *plan[name], report)]
    print(
        f"\n{'all steps ran' if not failed else 'failed or cut short: ' + ' '.join(failed)}", file=report, flush=True
    )
    report.file.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

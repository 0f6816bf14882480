"""Inference back ends side by side: eager fp32, eager bf16 autocast, torch.compile, ONNX Runtime fp32 and int8.

Prints ONE markdown table. Rows: size x clip length x batch x back end; columns: latency and clips/s (median of
interleaved rounds: every back end of a case runs once per round, so they see the same machine load), peak memory,
the speed ratio to eager fp32, and the worst relative error of the pooled embedding against eager fp32.

- The encoders are the presets with random weights (seed 0), `AxLSTMModel`, the `feature-extraction` graph; the ONNX
  files come from `hf_axlstm.export_onnx.export` (validated there) and are cached under `--cache_dir` (an export of
  12 blocks takes a few minutes, and is reused by later runs).
- eager: `model(input_values)` under `torch.inference_mode()`, the package's default kernels (`mlstm_backend="auto"`).
  bf16: the same under `torch.autocast("cpu", torch.bfloat16)`. compile: `torch.compile(model)` (default mode,
  one compile per shape, not timed). ONNX Runtime: CPU provider, all graph optimisations, `--threads` intra-op
  threads (torch gets the same number).
- Peak memory: the rise of the process's peak RSS (VmHWM, reset just before the call) during one call, in a fresh
  subprocess per (size, back end) with glibc mmapping every block over 64 KiB (as in benchmarks/encoder.py); the
  weights and the ORT session are loaded before the reset, so it is the call's working memory (ORT without its
  memory arena there, which would otherwise keep the first call's buffers and show no rise on the second).

    python benchmarks/inference.py                                   # tiny + base, batch 1 and 8, 2 s and 10 s
    python benchmarks/inference.py --sizes tiny --batches 1 --seconds 2 --repeats 3    # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architectures import cpu_name  # noqa: E402
from encoder import memory_env, peak_rss_kib, reset_peak_rss  # noqa: E402

BACKENDS = ("eager", "bf16", "compile", "ort", "ort-int8")
LABELS = {
    "eager": "eager fp32",
    "bf16": "eager bf16 autocast",
    "compile": "torch.compile fp32",
    "ort": "ONNX Runtime fp32",
    "ort-int8": "ONNX Runtime int8",
}


def exported_folder(size: str, cache_dir: Path, layers: int | None) -> tuple[Path, Path]:
    """(save_pretrained folder, ONNX export folder with fp32 + int8 graphs) of the size's encoder, built once."""
    from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMModel
    from hf_axlstm.export_onnx import export

    name = size + (f"-{layers}l" if layers else "")
    source, target = cache_dir / f"{name}-torch", cache_dir / f"{name}-onnx"
    if not (target / "model_int8.onnx").is_file():
        torch.manual_seed(0)
        overrides = {"num_hidden_layers": layers} if layers else {}
        AxLSTMModel(AxLSTMConfig.from_preset(size, **overrides)).save_pretrained(source)
        AxLSTMFeatureExtractor().save_pretrained(source)
        print(f"[bench] exporting {name} to {target} (cached for later runs) ...", file=sys.stderr, flush=True)
        export(source, target, quantize="int8", overwrite=True, verbose=False)
    return source, target


def runner(backend: str, folders: tuple[Path, Path], threads: int, arena: bool = True):
    """A callable (input_values, attention_mask) -> pooled embedding (numpy) for the back end. ONNX Runtime runs
    without busy-waiting threads, which would otherwise slow the PyTorch call timed after it."""
    from hf_axlstm import AxLSTMModel
    from hf_axlstm.ort import make_session

    source, exported = folders
    if backend.startswith("ort"):
        file = "model_int8.onnx" if backend == "ort-int8" else "model.onnx"
        session = make_session(exported / file, threads=threads, spinning=False, arena=arena)

        def run(values, mask):
            return session.run(["pooler_output"], {"input_values": values.numpy(), "attention_mask": mask.numpy()})[0]

        return run
    model = AxLSTMModel.from_pretrained(source).eval()
    if backend == "compile":
        model = torch.compile(model)

    def run(values, mask):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=backend == "bf16"):
            return model(values, attention_mask=mask).pooler_output.float().numpy()

    return run


def inputs_for(batch: int, seconds: float, seed: int = 0):
    frames = int(round(seconds * 100))
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 80, generator=generator), torch.ones(batch, frames, dtype=torch.long)


def memory_case(size: str, backend: str, cases: list, threads: int, folders: list[str]) -> dict:
    """Runs in a fresh subprocess: peak-RSS rise (MiB) of one call per case, smallest case first."""
    torch.set_num_threads(threads)
    run = runner(
        backend, tuple(map(Path, folders)), threads, arena=False
    )  # no arena: each call's memory shows in its peak
    out = {}
    for batch, seconds in sorted(cases, key=lambda c: c[0] * c[1]):
        values, mask = inputs_for(batch, seconds)
        run(values, mask)  # one-time state (compile, thread pools, ORT's arena for this shape) is not the call's
        base = reset_peak_rss()
        run(values, mask)
        out[f"{batch}x{seconds}"] = (peak_rss_kib() - base) / 1024
    return out


def measure_memory(size, backend, cases, threads, folders) -> dict:
    case = [size, backend, cases, threads, [str(f) for f in folders]]
    cmd = [sys.executable, __file__, "--_memory_case", json.dumps(case)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=memory_env())
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "small", "base"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--seconds", nargs="+", type=float, default=[2.0, 10.0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per case (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num_hidden_layers", type=int, default=None, help="fewer blocks (smoke runs)")
    parser.add_argument("--no_memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--cache_dir", default="benchmarks/.onnx_cache")
    parser.add_argument("--_memory_case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._memory_case:
        print(json.dumps(memory_case(*json.loads(args._memory_case))))
        return
    torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir)
    cases = [(b, s) for s in args.seconds for b in args.batches]
    rows = []
    for size in args.sizes:
        folders = exported_folder(size, cache, args.num_hidden_layers)
        memory = {}
        if not args.no_memory:
            for backend in args.backends:
                memory[backend] = measure_memory(size, backend, cases, args.threads, folders)
        runs = {backend: runner(backend, folders, args.threads) for backend in args.backends}
        for batch, seconds in cases:
            values, mask = inputs_for(batch, seconds)
            outputs = {name: run(values, mask) for name, run in runs.items()}  # warm-up (and compile) + outputs
            times = {name: [] for name in runs}
            for _ in range(args.repeats):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run(values, mask)
                    times[name].append(time.perf_counter() - start)
            medians = {name: float(np.median(t)) for name, t in times.items()}
            reference = outputs.get("eager")
            for name in runs:
                error = None
                if reference is not None:
                    error = float(np.abs(outputs[name] - reference).max() / np.abs(reference).max())
                rows.append(
                    {
                        "size": size,
                        "clip s": f"{seconds:g}",
                        "batch": batch,
                        "back end": LABELS[name],
                        "ms": medians[name] * 1e3,
                        "clips/s": batch / medians[name],
                        "peak MiB": memory.get(name, {}).get(f"{batch}x{seconds}"),
                        "x eager fp32": medians["eager"] / medians[name] if "eager" in medians else None,
                        "emb rel err": error,
                    }
                )
            print(f"[bench] {size} batch {batch} {seconds:g} s done", file=sys.stderr, flush=True)
    print(
        f"\n{cpu_name()}, {args.threads} threads, torch {torch.__version__}, onnxruntime "
        f"{__import__('onnxruntime').__version__}; median of {args.repeats} interleaved rounds\n"
    )
    header = ["size", "clip s", "batch", "back end", "ms", "clips/s", "peak MiB", "x eager fp32", "emb rel err"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = []
        for key in header:
            value = row[key]
            if value is None:
                cells.append("-")
            elif key == "emb rel err":
                cells.append(f"{value:.1e}")
            elif key == "x eager fp32":
                cells.append(f"{value:.2f}")
            elif isinstance(value, float):
                cells.append(f"{value:.1f}")
            else:
                cells.append(str(value))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

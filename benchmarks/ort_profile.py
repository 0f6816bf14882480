"""Where ONNX Runtime spends the time of an exported AxLSTM graph: ORT's own profiler, summed per operator type and
per (operator, output shape), over a few runs of one input.

    python benchmarks/ort_profile.py benchmarks/.onnx_cache/base-onnx/model.onnx --batch 8 --seconds 2

(`benchmarks/inference.py` leaves the exported tiny / base graphs in benchmarks/.onnx_cache/.) Prints two markdown
tables: ms per run and share of the kernel time per operator type, and the costliest (operator, output shape) pairs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("onnx_file")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    session = ort.InferenceSession(args.onnx_file, options, providers=["CPUExecutionProvider"])
    frames = int(round(args.seconds * 100))
    rng = np.random.default_rng(0)
    feeds = {
        "input_values": rng.standard_normal((args.batch, frames, 80)).astype(np.float32),
        "attention_mask": np.ones((args.batch, frames), dtype=np.int64),
    }
    session.run(None, feeds)  # warm-up (not in the sums below: its events come first and are skipped)
    for _ in range(args.runs):
        session.run(None, feeds)
    trace = session.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    runs = [e for e in events if e.get("name") == "model_run"]
    warm_events = runs[0]["ts"] + runs[0]["dur"] if runs else 0
    per_op, per_shape, count = collections.Counter(), collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < warm_events:
            continue
        op = e["args"]["op_name"]
        per_op[op] += e["dur"]
        count[op] += 1
        shape = e["args"].get("output_type_shape", [{}])
        dims = next(iter(shape[0].values()), []) if shape else []
        per_shape[(op, tuple(dims))] += e["dur"]
    total = sum(per_op.values()) or 1
    run_ms = [r["dur"] / 1e3 for r in runs[1:]]
    print(
        f"\n{args.onnx_file}: batch {args.batch}, {args.seconds:g} s, {args.threads} threads; "
        f"model_run {np.median(run_ms):.1f} ms (median of {len(run_ms)})\n"
    )
    print("| operator | ms per run | share | nodes |")
    print("|---|---:|---:|---:|")
    for op, dur in per_op.most_common(args.top):
        print(f"| {op} | {dur / 1e3 / args.runs:.1f} | {100 * dur / total:.1f}% | {count[op] // args.runs} |")
    print("\n| operator | output shape | ms per run |")
    print("|---|---|---:|")
    for (op, dims), dur in per_shape.most_common(args.top):
        print(f"| {op} | {list(dims)} | {dur / 1e3 / args.runs:.1f} |")


if __name__ == "__main__":
    main()

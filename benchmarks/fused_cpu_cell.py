"""The fused CPU cell (hf_axlstm.cpu_kernels, csrc/cpu_kernels.cpp) against the eager `_ChunkwiseMLSTM`, in one
process, interleaved: forward + backward of the chunkwise cell on cell cases (`mlstm(..., fused=fused_kernels())`
against `mlstm(..., fused=None)`), and whole pretraining steps of the presets (forward + backward of
`AxLSTMForPreTraining`'s loss, the model part of examples/pretrain.py's step) with the mixer implementation
"fused_cpu" (the fused conv + SiLU, q / k / v, tail and cell) against "folded" (the same folded mixer, eager). The
outputs and gradients of the two are compared first (a speed-up that changes the function is not one).

    python benchmarks/fused_cpu_cell.py                                   # the cell cases below
    python benchmarks/fused_cpu_cell.py --cases 32,4,256,96,64 8,4,1280,384,256
    python benchmarks/fused_cpu_cell.py --models tiny --batch 32 --rounds 5   # whole steps, 2 s crops

A case is batch,heads,seq,head_dim,chunk. Prints markdown tables (ms are medians of `--rounds` interleaved rounds
after a warm-up call, `encoder.interleaved_medians`; the tuned allocator of examples/pretrain.py).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architectures import cpu_name  # noqa: E402
from encoder import interleaved_medians  # noqa: E402

DEFAULT_CASES = ["32,4,256,96,64", "32,4,256,96,128", "8,4,1280,96,64", "8,4,1280,192,128", "8,4,1280,384,256"]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def cell_case(spec: str, kernels, rounds: int) -> dict:
    from hf_axlstm.kernels_axlstm import mlstm

    batch, heads, seq, head_dim, chunk = (int(x) for x in spec.split(","))
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(batch, heads, seq, head_dim, generator=gen) for _ in range(3)]
    inputs += [torch.randn(batch, heads, seq, generator=gen), torch.randn(batch, heads, seq, generator=gen) + 3]
    inputs = [t.requires_grad_() for t in inputs]
    grad_out = torch.randn(batch, heads, seq, head_dim, generator=gen)

    def run(fused):
        def call():
            out = mlstm(*inputs, backend="chunkwise", chunk_size=chunk, fused=fused)
            return [out, *torch.autograd.grad(out, inputs, grad_out)]

        return call

    fused, eager = run(kernels), run(None)
    diff = max(rel(a, b) for a, b in zip(fused(), eager()))
    medians = interleaved_medians({"eager": eager, "fused": fused}, rounds)
    return {"case": f"head_dim {head_dim}, batch {batch}, S={seq}, chunk {chunk}", "diff": diff, **medians}


def model_case(size: str, batch: int, seconds: float, kernels, rounds: int) -> dict:
    from hf_axlstm import AxLSTMConfig, AxLSTMForPreTraining
    from hf_axlstm.kernels_axlstm import resolve_cell

    config = AxLSTMConfig.from_preset(size, frames_per_window=int(seconds * 100))
    torch.manual_seed(0)
    model = AxLSTMForPreTraining(config).train()
    inputs = torch.randn(batch, config.frames_per_window, config.num_mel_bins)
    patches = config.frames_per_window // config.patch_size[0] * config.num_freq_patches
    noise = torch.rand(batch, patches)
    tokens, head_dim = patches + 1, config.intermediate_size // config.num_heads
    cells = {
        name: resolve_cell("auto", config.chunk_size, tokens, head_dim, batch * config.num_heads, "cpu", torch.float32,
                           True, True, fused)
        for name, fused in (("fused", kernels), ("eager", None))
    }  # fmt: skip

    def run(implementation):
        def call():
            model.set_mixer_implementation(implementation)
            model.zero_grad(set_to_none=True)
            loss = model(input_values=inputs, noise=noise).loss
            loss.backward()
            return [loss.detach()] + [p.grad for p in model.parameters() if p.grad is not None]

        return call

    fused, eager = run("fused_cpu"), run("folded")
    diff = max(rel(a, b) for a, b in zip(fused(), eager()))
    medians = interleaved_medians({"eager": eager, "fused": fused}, rounds)

    def text(cell):
        if cell.form != "chunkwise":
            return cell.form
        return f"chunkwise, chunk {cell.chunk_size}" + (", fused cell" if cell.fused is not None else "")

    where = text(cells["fused"])
    if cells["eager"][:2] != cells["fused"][:2]:
        where += f"; eager: {text(cells['eager'])}"
    return {"case": f"{size}, {seconds:g} s, batch {batch} (whole step; {where})", "diff": diff, **medians}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=None, help="batch,heads,seq,head_dim,chunk (cell cases)")
    parser.add_argument("--models", nargs="*", default=[], choices=["tiny", "small", "base"])
    parser.add_argument("--batch", type=int, default=32, help="--models: clips per step")
    parser.add_argument("--seconds", type=float, default=2.0, help="--models: crop length")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from hf_axlstm import cpu_kernels
    from hf_axlstm.cpu_allocator import tune_cpu_allocator

    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    kernels = cpu_kernels.fused_kernels()  # built (or loaded from the cache) now, not inside a timed call
    cases = args.cases if args.cases is not None else ([] if args.models else DEFAULT_CASES)
    rows = [cell_case(spec, kernels, args.rounds) for spec in cases]
    rows += [model_case(size, args.batch, args.seconds, kernels, args.rounds) for size in args.models]
    print(
        "\nForward + backward, the eager `_ChunkwiseMLSTM` against the fused CPU cell (whole steps: the mixer "
        f"implementations 'folded' against 'fused_cpu'), {cpu_name()}, {args.threads} threads, "
        f"torch {torch.__version__}, fp32, tuned allocator; medians of {args.rounds} interleaved rounds; "
        "diff = the largest relative difference of the outputs and gradients\n"
    )
    print("| case | eager ms | fused ms | fused / eager | diff |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        ratio = r["fused"] / r["eager"]
        print(f"| {r['case']} | {r['eager'] * 1e3:.1f} | {r['fused'] * 1e3:.1f} | {ratio:.2f} | {r['diff']:.1e} |")


if __name__ == "__main__":
    main()

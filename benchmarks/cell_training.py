"""The chunkwise mLSTM's training paths side by side: the hand-written backward (`_ChunkwiseMLSTM`, the default for
float32 training; narrow heads keep their states between the passes, heads over 1.5 chunks recompute them) against
autograd through the chunk loop (`mlstm(..., recompute=False)`), in one process, interleaved.

    python benchmarks/cell_training.py                                   # the cell, the default cases
    python benchmarks/cell_training.py --cases 96,32,256 384,2,1280      # head_dim,batch,seq
    python benchmarks/cell_training.py --model base --seconds 10 --batch 2   # whole pretraining steps
    python benchmarks/cell_training.py --kernels --cases 96,32,251 192,32,251   # the training forms and chunk sizes
    python benchmarks/cell_training.py --kernels --model base --seconds 10 --batch 2   # auto's chunk vs the config's

Cell cases time forward + backward of `mlstm(..., backend="chunkwise", recompute=...)` on random inputs (4 heads,
chunk 64). Model mode times forward + backward of `AxLSTMForPreTraining`'s loss on random log-mels with the folded
mixer (`"fused_cpu"`, or `"folded"` with `--cpu_kernels eager` or on CUDA) against the same folded mixer whose cell
trains through autograd (registered here as `"folded_autograd_cell"`: `MixerImplementation(folded_mixer_forward,
recompute=False)`); at lengths where `auto` picks the parallel form the choice changes that form's backward as well.
So does `auto`'s longer training chunk for wide heads (`select_chunk_size`, taken by `kernels_axlstm.resolve_cell`),
which goes with the hand-written path: each path runs with the chunk `auto` gives it. Kept
memory: the bytes of the distinct storages autograd saves for the backward (`torch.autograd.graph.saved_tensors_hooks`),
inputs and weights included. Medians over the rounds after a warm-up call per path; the tuned allocator of
examples/pretrain.py on a CPU. Prints a markdown table.

With `--kernels` the cell cases compare the training forms instead, each with its default training path: the
chunkwise form at each of `--chunk_sizes` (its hand-written backward; the sequence padded to whole chunks first, as
the model pads its input) and the parallel form (`_ParallelMLSTM`, which recomputes its S x S matrices in the
backward), with the form and chunk `auto` picks for the case (`resolve_cell`). That is the measurement behind
`AUTO_CHUNKWISE_FACTOR_GRAD` and the model's training chunk size. `--kernels --model SIZE` times whole pretraining
steps with `auto`'s training chunk (`select_chunk_size`) against the config's chunk (`config.mlstm_backend =
"chunkwise"`, which runs `config.chunk_size`), on the same weights and inputs (losses compared first).

With `--cpu_kernels fused` (the default on a CPU) the hand-written path runs the fused C++ cell
(`hf_axlstm.cpu_kernels.fused_kernels()`, passed to `mlstm(..., fused=...)`; the model's `"fused_cpu"`
implementation), as examples/pretrain.py trains; the autograd path never runs it.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architectures import cpu_name  # noqa: E402
from encoder import interleaved_medians  # noqa: E402

PATHS = {"hand-written": True, "autograd loop": False}  # -> mlstm(..., recompute=)
AUTOGRAD_CELL = "folded_autograd_cell"  # the folded mixer, its cell trained through autograd (model mode)


def kept_bytes(run):
    """Run `run()` (a forward) recording what autograd saves; returns (its output, bytes of the distinct storages)."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = run()
    return out, sum(storages.values())


def compare(runs: dict, forwards: dict, rounds: int) -> dict:
    """{path: (median seconds of forward + backward, kept bytes)}: `runs[path]()` (one forward + backward) timed
    round-robin by encoder.py's `interleaved_medians` (one warm-up call each), then the kept bytes of one more forward
    `forwards[path]()` each."""
    seconds = interleaved_medians(runs, rounds)
    return {path: (seconds[path], kept_bytes(forwards[path])[1]) for path in runs}


def cell_case(head_dim: int, batch: int, seq: int, args, fused, sync) -> dict:
    """`compare` on the chunkwise cell: 4 heads, random inputs, forget gates biased to +3 (long memory); `fused`: the
    fused CPU kernels for the hand-written path, or None."""
    from hf_axlstm.kernels_axlstm import mlstm

    generator = torch.Generator().manual_seed(0)

    def leaf(*shape, shift=0.0):
        return (torch.randn(*shape, generator=generator) + shift).to(args.device).requires_grad_()

    q, k, v = (leaf(batch, 4, seq, head_dim) for _ in range(3))
    igate, fgate = leaf(batch, 4, seq), leaf(batch, 4, seq, shift=3.0)
    grad = torch.randn(batch, 4, seq, head_dim, generator=generator).to(args.device)

    def path_forward(recompute: bool):
        cell_fused = fused if recompute else None  # the fused cell is a hand-written path
        return lambda: mlstm(q, k, v, igate, fgate, backend="chunkwise", recompute=recompute, fused=cell_fused)

    forwards = {path: path_forward(recompute) for path, recompute in PATHS.items()}

    def run(forward):
        def step():
            forward().backward(grad)
            sync()

        return step

    return compare({path: run(forward) for path, forward in forwards.items()}, forwards, args.rounds)


def training_steps(model, forward, names, sync) -> dict:
    """One callable per variant name: a training step of `forward(name)`'s loss, gradients cleared, device synced."""

    def step(name):
        def run():
            forward(name).loss.backward()
            model.zero_grad(set_to_none=True)
            sync()

        return run

    return {name: step(name) for name in names}


def model_case(model, values, fast: str, rounds: int, sync) -> dict:
    """`compare` on whole pretraining steps: the mixers through `fast` (hand-written) and through the folded mixer
    whose cell trains through autograd (`AUTOGRAD_CELL`), on the same weights and inputs."""
    from hf_axlstm.mixers_axlstm import ALL_MIXER_IMPLEMENTATIONS, MixerImplementation, folded_mixer_forward

    ALL_MIXER_IMPLEMENTATIONS.register(AUTOGRAD_CELL, MixerImplementation(folded_mixer_forward, recompute=False))
    implementations = {"hand-written": fast, "autograd loop": AUTOGRAD_CELL}

    def forward(path):
        model.set_mixer_implementation(implementations[path])
        return model(input_values=values)

    forwards = {path: (lambda path=path: forward(path)) for path in PATHS}
    return compare(training_steps(model, forward, PATHS, sync), forwards, rounds)


def kernel_case(head_dim: int, batch: int, seq: int, args, fused, sync) -> dict:
    """{form: (median seconds of forward + backward, kept bytes)} for the parallel form and the chunkwise form at
    each chunk size (through `fused`, the fused CPU kernels, where given), on the same random inputs (4 heads;
    chunkwise on the sequence zero-padded to whole chunks)."""
    from hf_axlstm.kernels_axlstm import mlstm

    generator = torch.Generator().manual_seed(0)
    q, k, v, grad = (torch.randn(batch, 4, seq, head_dim, generator=generator) for _ in range(4))
    igate, fgate = torch.randn(batch, 4, seq, generator=generator), torch.randn(batch, 4, seq, generator=generator) + 3

    def form(backend: str, chunk: int):
        pad = -seq % chunk if backend == "chunkwise" else 0
        padded = [torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in (q, k, v, grad)]
        padded += [torch.nn.functional.pad(t, (0, pad)) for t in (igate, fgate)]
        q_, k_, v_, grad_, i_, f_ = (t.to(args.device) for t in padded)
        leaves = [t.requires_grad_() for t in (q_, k_, v_, i_, f_)]

        def forward():
            return mlstm(*leaves, backend=backend, chunk_size=chunk, fused=fused)

        def step():
            forward().backward(grad_)
            sync()

        return forward, step

    forms = {"parallel": form("parallel", 64)}
    forms.update({f"chunkwise, chunk {c}": form("chunkwise", c) for c in args.chunk_sizes})
    seconds = interleaved_medians({name: step for name, (_, step) in forms.items()}, args.rounds)
    return {name: (seconds[name], kept_bytes(forward)[1]) for name, (forward, _) in forms.items()}


def model_chunks(model, values, rounds: int, sync) -> tuple[dict, str]:
    """({variant: (median seconds of forward + backward, kept bytes)}, the cell `auto` runs) for whole pretraining
    steps with `auto`'s training chunk and with the config's chunk (`config.mlstm_backend = "chunkwise"`, which runs
    `config.chunk_size`; where `auto` picks the parallel form both variants run it)."""
    from hf_axlstm.mixers_axlstm import resolve_mixer_spec
    from hf_axlstm.modeling_axlstm import AxLSTMMixer

    picked = []  # the first mixer's call under `auto`, as the model's dispatcher resolves it for training
    first = next(module for module in model.modules() if isinstance(module, AxLSTMMixer))
    hook = first.register_forward_pre_hook(lambda mixer, inputs: picked.append(resolve_mixer_spec(mixer, inputs[0])))
    configured = model.config.mlstm_backend
    model.config.mlstm_backend = "auto"
    model(input_values=values)
    hook.remove()
    cell = picked[0].cell
    chunk = model.config.chunk_size
    config_backend = "chunkwise" if cell.form == "chunkwise" else "auto"
    variants = {"auto's chunk": "auto", f"config's chunk ({chunk})": config_backend}

    def forward(name):
        torch.manual_seed(1)  # the same masks for both variants
        model.config.mlstm_backend = variants[name]
        return model(input_values=values)

    losses = {name: forward(name).loss.item() for name in variants}
    if max(losses.values()) - min(losses.values()) > 1e-5:
        raise SystemExit(f"the variants' losses differ: {losses}")
    forwards = {name: (lambda name=name: forward(name)) for name in variants}
    result = compare(training_steps(model, forward, variants, sync), forwards, rounds)
    model.config.mlstm_backend = configured
    picked_text = f"{cell.form}, chunk {cell.chunk_size}" if cell.form == "chunkwise" else cell.form
    return result, picked_text


def print_kernels(rows: list, args, fused) -> None:
    """The --kernels table: one row per case and form, times and kept memory against the parallel form."""
    from hf_axlstm.kernels_axlstm import resolve_cell

    print("| case | form | ms | x parallel | kept MiB | `auto` picks |")
    print("|---|---|---:|---:|---:|---|")
    for (head_dim, batch, seq), result in rows:
        cell = resolve_cell("auto", 64, seq, head_dim, batch * 4, args.device, torch.float32, True, True, fused)
        picked = f"{cell.form}, chunk {cell.chunk_size}" if cell.form == "chunkwise" else cell.form
        fastest = min(result, key=lambda name: result[name][0])
        for name, (sec, kept) in result.items():
            mark = " (fastest)" if name == fastest else ""
            print(f"| head_dim {head_dim}, batch {batch}, S={seq} | {name}{mark} | {sec * 1e3:.1f} | "
                  f"{sec / result['parallel'][0]:.2f} | {kept / 2**20:.0f} | {picked} |")  # fmt: skip


def parse_case(text: str) -> tuple[int, int, int]:
    try:
        head_dim, batch, seq = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"case {text!r} is not head_dim,batch,seq (three integers)") from None
    return head_dim, batch, seq


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cases",
        nargs="+",
        type=parse_case,
        default=[(96, 32, 256), (96, 8, 1280), (192, 8, 320), (192, 8, 1280), (384, 2, 1280)],
        help="cell cases head_dim,batch,seq",
    )
    parser.add_argument("--kernels", action="store_true", help="compare the training forms and chunk sizes")
    parser.add_argument("--chunk_sizes", nargs="+", type=int, default=[32, 64, 128], help="--kernels: chunkwise")
    parser.add_argument("--model", default=None, choices=["tiny", "small", "base"], help="whole steps instead")
    parser.add_argument("--seconds", type=float, default=10.0, help="model mode: clip length")
    parser.add_argument("--batch", type=int, default=2, help="model mode: batch size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--cpu_kernels",
        default="fused",
        choices=["fused", "eager"],
        help="float32 chunkwise training on a CPU through the fused C++ kernels as in examples/pretrain.py "
        "(hf_axlstm.cpu_kernels; the model's 'fused_cpu' implementation), or the eager `_ChunkwiseMLSTM` ('folded')",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    fused = None  # the fused CPU kernels, passed to the hand-written path explicitly
    if device.type == "cpu":
        from hf_axlstm.cpu_allocator import tune_cpu_allocator

        tune_cpu_allocator()
        if args.cpu_kernels == "fused":
            from hf_axlstm.cpu_kernels import fused_kernels

            fused = fused_kernels()  # built (or loaded from the cache) now, not inside a timed call
    fast = "fused_cpu" if fused is not None else "folded"  # the model's hand-written implementation
    torch.set_num_threads(args.threads)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    rows = []
    where = cpu_name() if device.type == "cpu" else torch.cuda.get_device_name()
    if args.kernels and args.model:
        from hf_axlstm import AxLSTMConfig, AxLSTMForPreTraining

        torch.manual_seed(0)
        model = AxLSTMForPreTraining(AxLSTMConfig.from_preset(args.model)).to(device).train()
        values = torch.randn(args.batch, round(args.seconds * 100), model.config.num_mel_bins, device=device)
        model.set_mixer_implementation(fast)
        result, picked = model_chunks(model, values, args.rounds, sync)
        print(f"\n{where}, {args.threads} threads, torch {torch.__version__}, fp32, {args.model} at {args.seconds:g} s, "
              f"batch {args.batch}, forward + backward of the pretraining loss, mixer implementation {fast!r}, `auto` "
              f"picks {picked}, median of {args.rounds}\n")  # fmt: skip
        print("| variant | ms | time x config's chunk | kept MiB | kept x config's chunk |")
        print("|---|---:|---:|---:|---:|")
        (ref_s, ref_b) = list(result.values())[1]
        for name, (sec, kept) in result.items():
            print(f"| {name} | {sec * 1e3:.0f} | {sec / ref_s:.2f} | {kept / 2**20:.0f} | {kept / ref_b:.2f} |")
        return
    if args.kernels:
        rows = [(case, kernel_case(*case, args, fused, sync)) for case in args.cases]
        print(f"\n{where}, {args.threads} threads, torch {torch.__version__}, fp32, 4 heads, forward + backward, "
              f"{args.cpu_kernels} CPU cell, median of {args.rounds}\n")  # fmt: skip
        print_kernels(rows, args, fused)
        return
    if args.model:
        from hf_axlstm import AxLSTMConfig, AxLSTMForPreTraining

        torch.manual_seed(0)
        model = AxLSTMForPreTraining(AxLSTMConfig.from_preset(args.model)).to(device).train()
        values = torch.randn(args.batch, round(args.seconds * 100), model.config.num_mel_bins, device=device)
        result = model_case(model, values, fast, args.rounds, sync)
        rows.append((f"{args.model}, {args.seconds:g} s, batch {args.batch} (whole step)", result))
    else:
        for head_dim, batch, seq in args.cases:
            case = cell_case(head_dim, batch, seq, args, fused, sync)
            rows.append((f"head_dim {head_dim}, batch {batch}, S={seq}", case))

    print(f"\n{where}, {args.threads} threads, torch {torch.__version__}, fp32, chunk 64, "
          f"{args.cpu_kernels if device.type == 'cpu' else 'eager'} hand-written path, median of {args.rounds}\n")  # fmt: skip
    print("| case | hand-written ms | autograd loop ms | time, hand-written / loop | kept MiB, hand-written | "
          "kept MiB, loop | kept, hand-written / loop |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case, result in rows:
        (new_s, new_b), (old_s, old_b) = result["hand-written"], result["autograd loop"]
        print(f"| {case} | {new_s * 1e3:.1f} | {old_s * 1e3:.1f} | {new_s / old_s:.2f}x | {new_b / 2**20:.0f} | "
              f"{old_b / 2**20:.0f} | {new_b / old_b:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()

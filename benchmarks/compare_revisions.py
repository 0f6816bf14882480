"""A/B: the encoder of the working tree against the encoder of a git revision, with the same weights, in one process.

On a shared or noisy machine, timings of separate runs drift by more than the effect of one change; here the two
versions run round-robin (interleaved medians, as in encoder.py), so they see the same load. The revision's
`src/hf_axlstm/` files are copied into a temporary package `hf_axlstm_rev`, its model gets the working tree's
weights, and the outputs are compared first (a speed-up that changes the function is not one).

    python benchmarks/compare_revisions.py HEAD --size tiny --frames 200 --batch 8
    python benchmarks/compare_revisions.py HEAD~3 --size base --mode train --rounds 3
    python benchmarks/compare_revisions.py HEAD~3 --mode pretrain --batch 32 --rounds 3   # the pretraining loss
    python benchmarks/compare_revisions.py HEAD~3 --mode pretrain --batch 32 --separate_processes
    python benchmarks/compare_revisions.py HEAD~3 --mode pretrain --batch 32 --rev_cpu_allocator default  # + malloc
    python benchmarks/compare_revisions.py old_copy/ --device cuda --batch 64   # a folder holding the package files

`rev` may also be a folder with a copy of a revision's `src/hf_axlstm/*.py` (for a machine without the git history:
`git archive REV src/hf_axlstm | tar -x -C old_copy --strip-components=2`).

Modes: `forward` (no gradients), `train` (forward + backward of the encoder, loss = mean square of its output),
`pretrain` (forward + backward of `AxLSTMForPreTraining`'s masked-reconstruction loss, the model part of
examples/pretrain.py's step). `--cpu_kernels fused` (the default, as in examples/pretrain.py) runs float32 training on
a CPU of both versions through their fused C++ kernels (each version's own `cpu_kernels` module and C++ source, enabled
the way that version's examples/pretrain.py enables them); `eager` the torch implementations. Both versions run in
one process (or, with `--separate_processes`, each in a fresh process per round), so process-wide settings apply to
both: with
`--cpu_allocator tuned` (the default, as in examples/pretrain.py) glibc keeps freed memory in its heap
(hf_axlstm.cpu_allocator); `default` leaves malloc alone. Compare allocators with pretrain_throughput.py, which runs
each configuration in its own process.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import encoder  # noqa: E402
from architectures import cpu_name  # noqa: E402
from encoder import CLOCKS, interleaved_medians  # noqa: E402

from hf_axlstm import AxLSTMConfig, AxLSTMForPreTraining, AxLSTMModel  # noqa: E402
from hf_axlstm.cpu_allocator import tune_cpu_allocator  # noqa: E402
from hf_axlstm.cpu_kernels import enable_fused_cpu_kernels  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def load_revision(rev: str, root: Path):
    """Import the package of `rev` (its `src/hf_axlstm/`, the C++ sources included) as `hf_axlstm_rev` (from a copy
    under `root`)."""
    package = root / "hf_axlstm_rev"
    if Path(rev).is_dir():
        shutil.copytree(rev, package)
    else:
        archive = subprocess.check_output(["git", "-C", str(REPO), "archive", "--format=tar", rev, "src/hf_axlstm"])
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        (root / "src" / "hf_axlstm").rename(package)
    sys.path.insert(0, str(root))
    modeling = importlib.import_module("hf_axlstm_rev.modeling_axlstm")
    configuration = importlib.import_module("hf_axlstm_rev.configuration_axlstm")
    return configuration.AxLSTMConfig, modeling


def enable_revision_fused_kernels(model) -> None:
    """The revision's fused CPU kernels, as its examples/pretrain.py enabled them: a model setting where it has one
    (`enable_fused_cpu_kernels(model)`), else the module-level registration of the versions before it."""
    kernels = importlib.import_module("hf_axlstm_rev.cpu_kernels")
    if hasattr(kernels, "enable_fused_cpu_kernels"):
        enabled = kernels.enable_fused_cpu_kernels(model)
    else:
        enabled = kernels.enable_fused_cpu_cell(build_now=True)
    if not enabled:
        raise SystemExit("the revision's fused CPU kernels could not be built (see the warning above)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="git revision to compare against (e.g. HEAD, HEAD~2, a commit hash)")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    parser.add_argument("--frames", type=int, default=200, help="log-mel frames per clip (100 per second)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mode", default="forward", choices=["forward", "train", "pretrain"])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast around both versions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--padded", action="store_true", help="pass an attention_mask (the last clip a quarter padding)"
    )
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS))
    parser.add_argument("--cpu_allocator", default="tuned", choices=["tuned", "default"])
    parser.add_argument(
        "--cpu_kernels",
        default="fused",
        choices=["fused", "eager"],
        help="the working tree's float32 chunkwise training on a CPU: through the fused C++ cell (hf_axlstm.cpu_kernels, "
        "the default, as in examples/pretrain.py) or the eager one; the revision runs its own code as it is",
    )
    parser.add_argument(
        "--rev_cpu_allocator",
        default=None,
        choices=["tuned", "default"],
        help="the revision's allocator when it differs from --cpu_allocator (a before/after of both changes): each "
        "version then runs in its own process per round (warm-up step included), alternating",
    )
    parser.add_argument(
        "--separate_processes",
        action="store_true",
        help="run each version in a fresh process per round, alternating (slower, but no version's heap, caches or "
        "thread pools shape the other's timings); implied when the allocators differ",
    )
    parser.add_argument("--_only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rev_cpu_allocator = args.rev_cpu_allocator or args.cpu_allocator
    separate = args.separate_processes or args.rev_cpu_allocator != args.cpu_allocator
    if separate and not args._only:
        return compare_in_processes(args, argv if argv is not None else sys.argv[1:])

    allocator = {"revision": args.rev_cpu_allocator, "working tree": args.cpu_allocator}.get(
        args._only, args.cpu_allocator
    )
    if allocator == "tuned":
        tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    encoder.clock = encoder._cuda_wall if args.device == "cuda" else CLOCKS[args.clock]
    with tempfile.TemporaryDirectory() as tmp:
        rev_config_cls, rev_modeling = load_revision(args.rev, Path(tmp))
        pretrain = args.mode == "pretrain"
        current_cls = AxLSTMForPreTraining if pretrain else AxLSTMModel
        rev_model_cls = rev_modeling.AxLSTMForPreTraining if pretrain else rev_modeling.AxLSTMModel
        torch.manual_seed(0)
        current = current_cls(AxLSTMConfig.from_preset(args.size)).eval().to(args.device)
        revision = rev_model_cls(rev_config_cls.from_preset(args.size)).eval().to(args.device)
        revision.load_state_dict(current.state_dict())
        if args.cpu_kernels == "fused" and args.device == "cpu":  # both versions, each its own kernels module
            if not enable_fused_cpu_kernels(current):
                raise SystemExit("the fused CPU kernels could not be built (see the warning above)")
            enable_revision_fused_kernels(revision)
        inputs = {"input_values": torch.randn(args.batch, args.frames, 80, device=args.device)}
        if pretrain:
            patches = args.frames // current.config.patch_size[0] * current.config.num_freq_patches
            inputs["noise"] = torch.rand(args.batch, patches, device=args.device)
        if args.padded:
            mask = torch.ones(args.batch, args.frames, dtype=torch.long, device=args.device)
            mask[-1, args.frames * 3 // 4 :] = 0
            inputs["attention_mask"] = mask
        autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)

        def output(model):
            out = model(**inputs)
            return out.logits if pretrain else out.last_hidden_state

        with torch.no_grad():
            expected = output(revision)
            diff = ((output(current) - expected).norm() / expected.norm()).item()

        def runner(model):
            if args.mode == "forward":

                def run():
                    with torch.no_grad(), autocast:
                        model(**inputs)

                return run
            model.train()

            def step():
                model.zero_grad(set_to_none=True)
                with autocast:
                    out = model(**inputs)
                    loss = out.loss if pretrain else out.last_hidden_state.float().square().mean()
                loss.backward()

            return step

        runners = {args.rev: runner(revision), "working tree": runner(current)}
        if args._only:  # one version in this process, for compare_in_processes
            name = args.rev if args._only == "revision" else "working tree"
            # two warm-up calls: in a fresh process the heap (tuned allocator) is still growing during the second
            seconds = interleaved_medians({name: runners[name]}, args.rounds, warmup=2)[name]
            print(json.dumps({"seconds": seconds, "diff": diff}))
            return
        medians = interleaved_medians(runners, args.rounds)

    print(
        f"AxLSTM-{args.size[0].upper()}, {args.mode}{' bf16' if args.bf16 else ''}, batch {args.batch} x {args.frames} frames"
        f"{' (padded)' if args.padded else ''}, "
        f"{torch.cuda.get_device_name() if args.device == 'cuda' else f'{cpu_name()}, {args.threads} threads, {args.clock} clock, {args.cpu_allocator} allocator'}, median of {args.rounds} interleaved rounds; output relative difference {diff:.1e}.\n"
    )
    print("| version | ms | speed-up |")
    print("|---|---|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {medians[args.rev] / seconds:.3f} |")


def compare_in_processes(args, argv: list[str]) -> None:
    """Each version in a fresh process per round under its own allocator, alternating; medians of the rounds."""
    times = {args.rev: [], "working tree": []}
    diff = None
    for _ in range(args.rounds):
        for only, name in (("revision", args.rev), ("working tree", "working tree")):
            cmd = [sys.executable, __file__, *argv, "--rounds", "1", "--_only", only]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-2000:])
            result = json.loads(done.stdout.strip().splitlines()[-1])
            times[name].append(result["seconds"])
            diff = result["diff"]
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"AxLSTM-{args.size[0].upper()}, {args.mode}, batch {args.batch} x {args.frames} frames, {cpu_name()}, "
        f"{args.threads} threads, {args.clock} clock; {args.rev} with the {args.rev_cpu_allocator} allocator, the "
        f"working tree with the {args.cpu_allocator} allocator, both with the {args.cpu_kernels} CPU kernels, each in its own "
        f"process per round (after two warm-up "
        f"calls), median of {args.rounds} alternating rounds; output relative difference {diff:.1e}.\n"
    )
    print("| version | allocator | ms | speed-up |")
    print("|---|---|---|---|")
    for name, seconds in medians.items():
        allocator = args.rev_cpu_allocator if name == args.rev else args.cpu_allocator
        print(f"| {name} | {allocator} | {seconds * 1e3:.1f} | {medians[args.rev] / seconds:.3f} |")


if __name__ == "__main__":
    main()

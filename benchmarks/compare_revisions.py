"""A/B: the encoder of the working tree against the encoder of a git revision, with the same weights, in one process.

On a shared or noisy machine, timings of separate runs drift by more than the effect of one change; here the two
versions run round-robin (interleaved medians, as in encoder.py), so they see the same load. The revision's
`src/hf_axlstm/` files are copied into a temporary package `hf_axlstm_rev`, its model gets the working tree's
weights, and the outputs are compared first (a speed-up that changes the function is not one).

    python benchmarks/compare_revisions.py HEAD --size tiny --frames 200 --batch 8
    python benchmarks/compare_revisions.py HEAD~3 --size base --mode train --rounds 3
    python benchmarks/compare_revisions.py old_copy/ --device cuda --batch 64   # a folder holding the package files

`rev` may also be a folder with a copy of a revision's `src/hf_axlstm/*.py` (for a machine without the git history:
`git archive REV src/hf_axlstm | tar -x -C old_copy --strip-components=2`).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import encoder  # noqa: E402
from encoder import CLOCKS, interleaved_medians  # noqa: E402

from hf_axlstm import AxLSTMConfig, AxLSTMModel  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def load_revision(rev: str, root: Path):
    """Import the package files of `rev` as `hf_axlstm_rev` (from a copy under `root`)."""
    package = root / "hf_axlstm_rev"
    if Path(rev).is_dir():
        shutil.copytree(rev, package)
    else:
        package.mkdir()
        listing = subprocess.check_output(["git", "-C", str(REPO), "ls-tree", "--name-only", rev, "src/hf_axlstm/"])
        for name in listing.decode().split():
            source = subprocess.check_output(["git", "-C", str(REPO), "show", f"{rev}:{name}"])
            (package / Path(name).name).write_bytes(source)
    sys.path.insert(0, str(root))
    modeling = importlib.import_module("hf_axlstm_rev.modeling_axlstm")
    configuration = importlib.import_module("hf_axlstm_rev.configuration_axlstm")
    return configuration.AxLSTMConfig, modeling.AxLSTMModel


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="git revision to compare against (e.g. HEAD, HEAD~2, a commit hash)")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    parser.add_argument("--frames", type=int, default=200, help="log-mel frames per clip (100 per second)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mode", default="forward", choices=["forward", "train"])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast around both versions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--padded", action="store_true", help="pass an attention_mask (the last clip a quarter padding)"
    )
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    encoder.clock = encoder._cuda_wall if args.device == "cuda" else CLOCKS[args.clock]
    with tempfile.TemporaryDirectory() as tmp:
        rev_config_cls, rev_model_cls = load_revision(args.rev, Path(tmp))
        torch.manual_seed(0)
        current = AxLSTMModel(AxLSTMConfig.from_preset(args.size)).eval().to(args.device)
        revision = rev_model_cls(rev_config_cls.from_preset(args.size)).eval().to(args.device)
        revision.load_state_dict(current.state_dict())
        inputs = {"input_values": torch.randn(args.batch, args.frames, 80, device=args.device)}
        if args.padded:
            mask = torch.ones(args.batch, args.frames, dtype=torch.long, device=args.device)
            mask[-1, args.frames * 3 // 4 :] = 0
            inputs["attention_mask"] = mask
        autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)
        with torch.no_grad():
            expected = revision(**inputs).last_hidden_state
            diff = ((current(**inputs).last_hidden_state - expected).norm() / expected.norm()).item()

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
                    loss = model(**inputs).last_hidden_state.float().square().mean()
                loss.backward()

            return step

        medians = interleaved_medians({args.rev: runner(revision), "working tree": runner(current)}, args.rounds)

    print(
        f"AxLSTM-{args.size[0].upper()}, {args.mode}{' bf16' if args.bf16 else ''}, batch {args.batch} x {args.frames} frames"
        f"{' (padded)' if args.padded else ''}, "
        f"{torch.cuda.get_device_name() if args.device == 'cuda' else f'{args.threads} threads, {args.clock} clock'}, median of {args.rounds} interleaved rounds; output relative difference {diff:.1e}.\n"
    )
    print("| version | ms | speed-up |")
    print("|---|---|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {medians[args.rev] / seconds:.3f} |")


if __name__ == "__main__":
    main()

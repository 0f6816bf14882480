"""bf16 autocast vs float32: embedding error and a linear probe on each, on a labelled corpus made locally.

The corpus is `examples/synthetic_audio.py`'s (five classes of synthetic sounds, train/test split); the embeddings are
the mean-pooled final tokens of each whole clip, and the probe is `examples/demo.py`'s (standardised features,
multinomial logistic regression, test accuracy). Both precisions embed the same clips with the same model, so the
accuracy difference is the effect of bf16 alone. Prints ONE markdown table.

    python benchmarks/bf16_probe.py                                   # random-init tiny preset, ~2 min on 2 cores
    python benchmarks/bf16_probe.py --model axlstm_demo/pretrained    # a saved model folder (e.g. the demo's)
    python benchmarks/bf16_probe.py --device cuda --size base         # on a GPU (bf16 has no fast path on AVX2)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import demo  # noqa: E402  (examples/demo.py: its embedding, its probe, its loader for the other examples)

from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMModel  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a saved model folder; default: a random-init preset (--size)")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    parser.add_argument("--clips_per_class", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.model:
        model = AxLSTMModel.from_pretrained(args.model)
        name = args.model
    else:
        model = AxLSTMModel(AxLSTMConfig.from_preset(args.size))
        name = f"{args.size} (random init, seed {args.seed})"
    model = model.to(args.device).eval()
    feature_extractor = AxLSTMFeatureExtractor()
    synthetic_audio = demo._example("synthetic_audio")

    with tempfile.TemporaryDirectory() as tmp:
        meta = synthetic_audio.make_corpus(Path(tmp), clips_per_class=args.clips_per_class, seed=args.seed)
        rows = synthetic_audio.read_metadata(meta)
        labels = sorted({r["label"] for r in rows})
        split = {s: [r for r in rows if r["split"] == s] for s in ("train", "test")}
        files = {s: [Path(tmp) / r["file_name"] for r in split[s]] for s in split}
        targets = {s: torch.tensor([labels.index(r["label"]) for r in split[s]]) for s in split}
        results = {}
        for dtype in ("fp32", "bf16"):
            start = time.perf_counter()
            with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
                emb = {s: demo.embed(model, feature_extractor, files[s], args.batch_size) for s in split}
            seconds = time.perf_counter() - start
            accuracy = demo.probe_accuracy(emb["train"], targets["train"], emb["test"], targets["test"], len(labels))
            results[dtype] = {"emb": emb, "accuracy": accuracy, "seconds": seconds}

    reference = torch.cat([results["fp32"]["emb"][s] for s in split])
    print(
        f"Model {name}; {len(rows)} synthetic clips ({len(split['train'])} train / {len(split['test'])} test, "
        f"{len(labels)} classes); device {args.device}; embedding error = ||e - e_fp32|| / ||e_fp32|| over all clips.\n"
    )
    print("| precision | embedding rel. error | probe test accuracy | accuracy - fp32 (points) | embed time s |")
    print("|---|---|---|---|---|")
    for dtype, res in results.items():
        emb = torch.cat([res["emb"][s] for s in split])
        error = ((emb - reference).norm() / reference.norm()).item()
        delta = 100 * (res["accuracy"] - results["fp32"]["accuracy"])
        print(f"| {dtype} | {error:.1e} | {res['accuracy']:.3f} | {delta:+.1f} | {res['seconds']:.1f} |")


if __name__ == "__main__":
    main()

"""What dynamic int8 (ONNX Runtime) costs in accuracy, on the demo corpus.

Runs examples/demo.py (synthetic corpus, a pretrained encoder, a linear-head classifier; reused when `--demo_dir`
already holds them), exports the pretrained encoder and the classifier with `--quantize int8`, then compares on the
held-out test split:
- the pooled embedding's worst relative error (int8 vs PyTorch fp32, and ONNX fp32 vs PyTorch fp32);
- the linear-probe test accuracy (the demo's probe: standardised logistic regression fitted on each back end's own
  train embeddings) for PyTorch fp32, ONNX Runtime fp32 and int8;
- top-1 agreement of `pipeline("audio-classification")` between the PyTorch classifier and the int8 ONNX one.
Prints one markdown table.

    python benchmarks/int8_accuracy.py                                  # the demo's model (width 48, 4 blocks)
    python benchmarks/int8_accuracy.py --demo_dir axlstm_demo_tiny --hidden_size 192 --num_hidden_layers 12
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architectures import cpu_name  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"_axlstm_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo_dir", default="axlstm_demo")
    parser.add_argument("--hidden_size", type=int, default=48)
    parser.add_argument("--num_hidden_layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from transformers import AutoFeatureExtractor, pipeline
    from transformers.utils import logging as hf_logging

    from hf_axlstm import AxLSTMModel
    from hf_axlstm.audio import load_audio
    from hf_axlstm.export_onnx import export
    from hf_axlstm.ort import ORTAudioClassificationPipeline, ORTAxLSTMForAudioClassification, ORTAxLSTMModel

    hf_logging.set_verbosity_error()
    demo_dir = Path(args.demo_dir)
    demo = _example("demo")
    if not (demo_dir / "classifier" / "config.json").is_file():
        demo.main(
            [
                "--output_dir",
                str(demo_dir),
                "--hidden_size",
                str(args.hidden_size),
                "--num_hidden_layers",
                str(args.num_hidden_layers),
            ]
        )
    for name, task in (("pretrained", "feature-extraction"), ("classifier", "audio-classification")):
        target = demo_dir / f"{name}-onnx"
        if not (target / "model_int8.onnx").is_file():
            export(demo_dir / name, target, task=task, quantize="int8", overwrite=True)

    rows = demo._example("synthetic_audio").read_metadata(demo_dir / "corpus" / "metadata.csv")
    labels = sorted({r["label"] for r in rows})
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "test")}
    files = {s: [demo_dir / "corpus" / r["file_name"] for r in split[s]] for s in split}
    targets = {s: torch.tensor([labels.index(r["label"]) for r in split[s]]) for s in split}
    extractor = AutoFeatureExtractor.from_pretrained(demo_dir / "classifier")
    encoders = {
        "PyTorch fp32": AxLSTMModel.from_pretrained(demo_dir / "pretrained"),
        "ONNX Runtime fp32": ORTAxLSTMModel.from_pretrained(demo_dir / "pretrained-onnx", threads=args.threads),
        "ONNX Runtime int8": ORTAxLSTMModel.from_pretrained(
            demo_dir / "pretrained-onnx", file_name="model_int8.onnx", threads=args.threads
        ),
    }
    embeddings = {}
    for name, encoder in encoders.items():
        embeddings[name] = {s: demo.embed(encoder, extractor, files[s]) for s in split}
    reference = embeddings["PyTorch fp32"]["test"]
    table = []
    for name, emb in embeddings.items():
        error = float((emb["test"] - reference).abs().max() / reference.abs().max())
        accuracy = demo.probe_accuracy(emb["train"], targets["train"], emb["test"], targets["test"], len(labels))
        table.append((name, error, accuracy))

    torch_pipe = pipeline("audio-classification", model=str(demo_dir / "classifier"), device="cpu")
    int8_model = ORTAxLSTMForAudioClassification.from_pretrained(
        demo_dir / "classifier-onnx", file_name="model_int8.onnx", threads=args.threads
    )
    int8_pipe = pipeline(
        "audio-classification",
        model=int8_model,
        feature_extractor=extractor,
        pipeline_class=ORTAudioClassificationPipeline,
    )
    agree = correct_fp32 = correct_int8 = 0
    for row, path in zip(split["test"], files["test"]):
        audio = {"raw": load_audio(path), "sampling_rate": 16000}
        a, b = torch_pipe(audio, top_k=1)[0]["label"], int8_pipe(audio, top_k=1)[0]["label"]
        agree += a == b
        correct_fp32 += a == row["label"]
        correct_int8 += b == row["label"]
    n = len(files["test"])
    cpu = cpu_name()
    config = encoders["PyTorch fp32"].config
    print(
        f"\nDemo corpus ({len(labels)} classes, {len(files['train'])} train / {n} test clips), encoder width "
        f"{config.hidden_size}, {config.num_hidden_layers} blocks; {cpu}\n"
    )
    print("| back end | pooled-embedding rel. error vs PyTorch fp32 (test) | linear-probe test accuracy |")
    print("|---|---:|---:|")
    for name, error, accuracy in table:
        print(f"| {name} | {error:.1e} | {accuracy:.3f} |")
    print(
        f"\npipeline('audio-classification') on the {n} test clips: int8 ONNX agrees with PyTorch fp32 on "
        f"{agree}/{n} top-1 labels ({agree / n:.1%}); accuracy fp32 {correct_fp32 / n:.3f}, int8 {correct_int8 / n:.3f}"
    )


if __name__ == "__main__":
    main()

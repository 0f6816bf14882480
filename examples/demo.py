#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""The whole story on a fresh machine, offline (40 s on 2 idle AMD EPYC cores; more on busy ones):

    python examples/demo.py                 # writes ./axlstm_demo/
    python examples/demo.py --quick         # a smoke run (about 10 s there)

1. synthesise a small labelled corpus (tones, chirps, noise textures, harmonic stacks, clicks; examples/
   synthetic_audio.py), written as WAV files + metadata.csv with labels and train/test splits;
2. pretrain a shrunk AxLSTM on the train split's audio (labels unused) with examples/pretrain.py's `main`;
3. linear probes (logistic regression on mean-pooled frozen embeddings, scored on the held-out test split) for the
   pretrained encoder and for a randomly initialised one;
4. a linear head on the frozen pretrained encoder, saved as an AxLSTMForAudioClassification folder with id2label,
   classifying a test clip through `transformers.pipeline("audio-classification")`;
and prints the results as a markdown table. The numbers are whatever this run gives; nothing is tuned per side.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"_axlstm_example_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def embed(model, feature_extractor, files: list[Path], batch_size: int = 16) -> torch.Tensor:
    """Mean-pooled final-normed patch tokens of each whole clip (padding excluded), (clips, hidden_size)."""
    from hf_axlstm.audio import load_audio

    model.eval()
    out = []
    for start in range(0, len(files), batch_size):
        waves = [load_audio(f) for f in files[start : start + batch_size]]
        inputs = feature_extractor(waves, sampling_rate=16000, return_tensors="pt").to(model.device)
        out.append(model(**inputs).pooler_output.float().cpu())
    return torch.cat(out)


def fit_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float = 1e-3) -> torch.nn.Linear:
    """Multinomial logistic regression (L-BFGS, full batch, L2 on the weights)."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(x.shape[1], num_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x), y) + l2 * layer.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return layer


def probe_accuracy(train_x, train_y, test_x, test_y, num_classes) -> float:
    """Standardise with the train statistics, fit logistic regression, return the test accuracy."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    layer = fit_linear((train_x - mean) / std, train_y, num_classes)
    with torch.no_grad():
        predictions = layer((test_x - mean) / std).argmax(1)
    return (predictions == test_y).float().mean().item()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="AxLSTM end-to-end demo on synthetic audio (offline).")
    parser.add_argument("--output_dir", default="axlstm_demo")
    parser.add_argument("--quick", action="store_true", help="Smoke run: fewer clips and steps.")
    parser.add_argument("--clips_per_class", type=int, default=None)
    parser.add_argument("--max_train_steps", type=int, default=None)
    parser.add_argument("--hidden_size", type=int, default=48)
    parser.add_argument("--num_hidden_layers", type=int, default=4)
    parser.add_argument("--per_device_train_batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    clips_per_class = args.clips_per_class or (8 if args.quick else 40)
    steps = args.max_train_steps or (20 if args.quick else 240)

    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMForAudioClassification, AxLSTMModel

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    out = Path(args.output_dir)

    # 1. data
    synthetic_audio = _example("synthetic_audio")
    corpus = out / "corpus"
    meta = synthetic_audio.make_corpus(corpus, clips_per_class=clips_per_class, seed=args.seed)
    rows = synthetic_audio.read_metadata(meta)
    labels = sorted({r["label"] for r in rows})
    label_id = {name: i for i, name in enumerate(labels)}
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "test")}
    print(
        f"[demo] corpus: {len(rows)} clips, {len(labels)} classes, "
        f"{len(split['train'])} train / {len(split['test'])} test -> {corpus}",
        flush=True,
    )

    # 2. pretraining on the train split (labels unused)
    pretrain = _example("pretrain")
    pretrained_dir = out / "pretrained"
    pretrain.main([
        "--train_dir", str(corpus / "train"), "--output_dir", str(pretrained_dir),
        "--hidden_size", str(args.hidden_size), "--num_hidden_layers", str(args.num_hidden_layers),
        "--max_train_steps", str(steps), "--per_device_train_batch_size", str(args.per_device_train_batch_size),
        "--learning_rate", str(args.learning_rate), "--checkpointing_steps", str(max(1, steps // 4)),
        "--checkpoints_total_limit", "1", "--validation_fraction", "0.1", "--seed", str(args.seed),
        "--overwrite_output_dir",  # the demo rebuilds everything under --output_dir: a rerun replaces its last model
        # The fused CPU kernels' one-off build (about a minute) would double this demo's time for a few small steps.
        "--cpu_kernels", "eager",
    ])  # fmt: skip
    history = pretrain.TrainerState.from_file(pretrained_dir / "trainer_state.json").history
    pretrain_s = time.perf_counter() - started
    print(f"[demo] pretraining done ({pretrain_s:.0f} s since start)", flush=True)

    # 3. linear probes: pretrained vs randomly initialised encoder
    feature_extractor = AxLSTMFeatureExtractor()
    files = {s: [corpus / r["file_name"] for r in split[s]] for s in split}
    targets = {s: torch.tensor([label_id[r["label"]] for r in split[s]]) for s in split}
    pretrained = AxLSTMModel.from_pretrained(pretrained_dir)
    torch.manual_seed(args.seed)
    random_init = AxLSTMModel(AxLSTMConfig.from_pretrained(pretrained_dir))
    accuracy = {}
    embeddings = {}
    for name, encoder in (("random init", random_init), ("pretrained", pretrained)):
        embeddings[name] = {s: embed(encoder, feature_extractor, files[s]) for s in split}
        accuracy[name] = probe_accuracy(
            embeddings[name]["train"], targets["train"], embeddings[name]["test"], targets["test"], len(labels)
        )
        print(f"[demo] linear probe, {name}: test accuracy {accuracy[name]:.3f}", flush=True)

    # 4. a linear head on the frozen pretrained encoder -> AxLSTMForAudioClassification -> pipeline
    head = fit_linear(embeddings["pretrained"]["train"], targets["train"], len(labels))
    classifier = AxLSTMForAudioClassification.from_pretrained(
        pretrained_dir, id2label=dict(enumerate(labels)), label2id=label_id
    )
    with torch.no_grad():
        classifier.classifier.weight.copy_(head.weight)
        classifier.classifier.bias.copy_(head.bias)
    classifier_dir = out / "classifier"
    classifier.save_pretrained(classifier_dir)
    feature_extractor.register_for_auto_class("AutoFeatureExtractor")
    feature_extractor.save_pretrained(classifier_dir)
    classify = pipeline("audio-classification", model=str(classifier_dir), device="cpu")
    from hf_axlstm.audio import load_audio

    example = split["test"][len(split["test"]) // 2]
    prediction = classify({"raw": load_audio(corpus / example["file_name"]), "sampling_rate": 16000}, top_k=1)[0]
    with torch.no_grad():
        head_acc = (head(embeddings["pretrained"]["test"]).argmax(1) == targets["test"]).float().mean().item()

    # report
    train_loss = {h["step"]: h["loss"] for h in history if "loss" in h}
    val_loss = {h["step"]: h["val_loss"] for h in history if "val_loss" in h}
    lines = ["", "| step | train loss (batch) | validation loss (fixed masks) |", "|---:|---:|---:|"]
    for step in sorted({1, *val_loss}):
        v = f"{val_loss[step]:.4f}" if step in val_loss else ""
        lines.append(f"| {step} | {train_loss[step]:.4f} | {v} |")
    lines += ["", "| encoder (frozen, mean-pooled) | linear-probe test accuracy |", "|---|---:|"]
    lines += [f"| {name} | {acc:.3f} |" for name, acc in accuracy.items()]
    lines += [f"| chance ({len(labels)} classes) | {1 / len(labels):.3f} |", ""]
    lines.append(
        f"pipeline('audio-classification') on {example['file_name']} (true: {example['label']}): "
        f"{prediction['label']} ({prediction['score']:.2f}); linear head test accuracy {head_acc:.3f}"
    )
    lines.append(f"total {time.perf_counter() - started:.0f} s; model folders: {pretrained_dir}, {classifier_dir}")
    print("\n".join(lines), flush=True)
    return {"accuracy": accuracy, "prediction": prediction, "history": history, "head_accuracy": head_acc}


if __name__ == "__main__":
    main(sys.argv[1:])

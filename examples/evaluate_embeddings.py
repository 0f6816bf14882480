#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""The paper's downstream protocol: frozen scene embeddings + a small MLP, over several tasks, models and seeds.

    python examples/evaluate_embeddings.py --task tasks/demo.json \
        --model pretrained=axlstm_demo/pretrained --model random=random:axlstm_demo/pretrained --model logmel=logmel \
        --seeds 0 1 2 3 4 --output_dir eval_out

(`tasks/demo.json` is the corpus `examples/demo.py` writes; `tasks/esc50.json` is ESC-50 from the Hub.)

For every (model, task), the scene embedding of every clip (the HEAR API of `hf_axlstm.hear`: 2 s windows,
patch tokens -> frames, mean over frames) is extracted once and cached on disk (`--cache_dir`, keyed by model,
task, layout and mode). Then, per seed, a downstream MLP is trained on the train split's embeddings (standardised
with the train statistics): Linear(dim, 1024) -> BatchNorm -> Dropout(0.1) -> ReLU -> Linear(1024, classes), Adam
(lr 1e-4), batches of 1024, up to `--max_epochs` epochs, early stopping on the validation metric (`--patience`
epochs without improvement), the best validation epoch's model scored on the test split. Single-label tasks use
cross-entropy and accuracy, multi-label tasks binary cross-entropy and mAP (overridable per task).

Reported per (model, task): the mean test score over seeds and the half-width of its 95% confidence interval
(Student t, `t_{0.975, n-1} * std / sqrt(n)`). The normalised aggregate of a model is the mean over tasks of its
score divided by the best model's score on that task (x 100; or by `--normalize_to MODEL`'s score). Written to
`--output_dir`: `results.md` (a markdown table), `results.csv` and `results.png` (a bar chart with the intervals), each
written whole; a folder that holds an earlier run's results is refused unless `--overwrite_output_dir` is given.

Models (`--model NAME=SPEC`, repeatable):
- a `save_pretrained` folder, a Hub id or an official `.pth` checkpoint: the AxLSTM (or SSAST) encoder (`--layout`,
  `--mode`);
- `random:SRC`: a randomly initialised encoder of the same configuration as SRC (a folder, Hub id or a preset
  `tiny`, `small`, `base` for AxLSTM, `ssast-tiny`, `ssast-small`, `ssast-base` for SSAST), seeded, so it is the
  same every run;
- `logmel`: the plain log-mel baseline, mean and standard deviation over time of the (un-normalised) log-mel.

Task spec (one JSON file per task; relative paths are relative to the JSON file):

    {
      "name": "esc50",                 # optional, default: the file name
      "data": "esc50_folder",          # a Hub id, an audiofolder, a CSV/JSON file or a folder of split CSVs
      "data_files": {"train": "train.csv", "validation": "valid.csv", "test": "test.csv"},   # or this
      "config_name": null,             # Hub dataset configuration
      "audio_column": "audio", "label_column": "label",
      "label_delimiter": null,         # e.g. "," for multi-label strings; a list column is multi-label anyway
      "multi_label": null,             # force single- (false) or multi-label (true)
      "splits": {"train": "train", "validation": "validation", "test": "test"},
      "validation_fraction": 0.1, "test_fraction": 0.1, "split_seed": 0,   # for missing splits (seeded)
      "max_seconds": null,             # cut clips to their first max_seconds
      "metric": null                   # "accuracy" or "mAP" (default by task type)
    }
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, SSASTConfig, hear
from hf_axlstm.audio import TARGET_SAMPLING_RATE, AudioDecodeError, decode_audio_value
from hf_axlstm.data import DatasetInputError, LabelSpace, check_columns, load_audio_dataset, resolve_splits

logger = logging.getLogger("evaluate_embeddings")
SPLITS = ("train", "validation", "test")
RESULT_FILES = ("results.md", "results.csv", "results.png")


class SpecError(ValueError):
    """A task spec or model spec is invalid."""


# ------------------------------------------------------------------------------------------------------------ tasks


@dataclass
class Task:
    name: str
    data: str | None = None
    data_files: dict[str, str] | None = None
    config_name: str | None = None
    audio_column: str = "audio"
    label_column: str = "label"
    label_delimiter: str | None = None
    multi_label: bool | None = None
    splits: dict[str, str] = field(default_factory=lambda: {s: s for s in SPLITS})
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    max_seconds: float | None = None
    metric: str | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> Task:
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"task spec {str(path)!r} does not exist.")
        try:
            spec = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise SpecError(f"task spec {str(path)!r} is not valid JSON: {err}") from err
        if not isinstance(spec, dict):
            raise SpecError(f"task spec {str(path)!r} must be a JSON object, got a {type(spec).__name__}.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(spec) - known)
        if unknown:
            raise SpecError(f"task spec {str(path)!r} has unknown keys {unknown}; known: {sorted(known)}.")
        spec.setdefault("name", path.stem)

        def local(p: str) -> str:
            candidate = path.parent / p
            return str(candidate) if not os.path.isabs(p) and candidate.exists() else p

        check_spec_values(spec, f"task spec {str(path)!r}")
        if spec.get("data"):
            spec["data"] = local(spec["data"])
        if spec.get("data_files"):
            spec["data_files"] = {k: local(v) for k, v in spec["data_files"].items()}
        if not spec.get("data") and not spec.get("data_files"):
            raise SpecError(f"task spec {str(path)!r} needs 'data' or 'data_files'.")
        task = cls(**spec)
        task.splits = {**{s: s for s in SPLITS}, **(task.splits or {})}
        return task

    def fingerprint(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "metric"}


def check_spec_values(spec: dict, where: str) -> None:
    """Raise `SpecError` naming the key and the value for any task spec value of the wrong type or range."""

    def bad(key: str, expected: str):
        raise SpecError(f"{where}: {key!r} = {spec[key]!r} is invalid; expected {expected}.")

    def is_number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    name = spec.get("name")
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\\0") or name in (".", ".."):
        bad("name", "a non-empty name without path separators (it names the cache files)")
    for key in ("data", "config_name", "label_delimiter"):
        if spec.get(key) is not None and (not isinstance(spec[key], str) or not spec[key]):
            bad(key, "a non-empty string or null")
    for key in ("audio_column", "label_column"):
        if key in spec and (not isinstance(spec[key], str) or not spec[key]):
            bad(key, "a column name (a non-empty string)")
    for key in ("data_files", "splits"):
        value = spec.get(key)
        if value is not None and (
            not isinstance(value, dict)
            or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in value.items())
        ):
            bad(key, "an object mapping split names to non-empty strings")
        if isinstance(value, dict) and set(value) - set(SPLITS):
            raise SpecError(
                f"{where}: {key!r} has unknown splits {sorted(set(value) - set(SPLITS))}; known: {list(SPLITS)}."
            )
    if spec.get("multi_label") is not None and not isinstance(spec["multi_label"], bool):
        bad("multi_label", "true, false or null")
    for key in ("validation_fraction", "test_fraction"):
        if key in spec and not (is_number(spec[key]) and 0 < spec[key] < 1):
            bad(key, "a number strictly between 0 and 1")
    if spec.get("validation_fraction", 0.1) + spec.get("test_fraction", 0.1) >= 1:
        raise SpecError(
            f"{where}: validation_fraction + test_fraction must be below 1 (something must be trained on)."
        )
    if "split_seed" in spec and (
        isinstance(spec["split_seed"], bool) or not isinstance(spec["split_seed"], int) or spec["split_seed"] < 0
    ):
        bad("split_seed", "a non-negative integer")
    if spec.get("max_seconds") is not None and not (is_number(spec["max_seconds"]) and spec["max_seconds"] > 0):
        bad("max_seconds", "a positive number of seconds or null")
    if spec.get("metric") not in (None, "accuracy", "mAP"):
        bad("metric", "'accuracy', 'mAP' or null")


def load_task(task: Task):
    """Task -> ({split: (audio values, labels)}, LabelSpace)."""
    dataset = load_audio_dataset(task.data, task.config_name, task.data_files, task.audio_column)
    names = task.splits if not task.data_files else {s: s for s in SPLITS}
    splits = resolve_splits(
        dataset,
        names["train"],
        names["validation"],
        names["test"],
        task.validation_fraction,
        task.test_fraction,
        task.split_seed,
    )
    if splits["test"] is None:
        raise DatasetInputError(f"task {task.name!r} has no test split (and its train split was not split).")
    check_columns(splits, [task.audio_column, task.label_column])
    if len(splits["train"]) < 2:  # the downstream MLP's BatchNorm needs batches of two
        raise DatasetInputError(
            f"task {task.name!r}: the train split has {len(splits['train'])} clip; need at least 2."
        )
    space = LabelSpace.from_dataset(splits["train"], task.label_column, task.label_delimiter, task.multi_label)
    out = {}
    for split, data in splits.items():
        labels = [space.encode(v, split, task.label_column) for v in data[task.label_column]]
        out[split] = (
            list(data[task.audio_column]),
            np.asarray(labels, dtype=np.float32 if space.multi_label else np.int64),
        )
    return out, space


# ----------------------------------------------------------------------------------------------------------- models


class LogMelBaseline:
    """Mean and standard deviation over time of the un-normalised log-mel: 2 x 80 dimensions."""

    def __init__(self):
        self.feature_extractor = AxLSTMFeatureExtractor()

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        log_mel = self.feature_extractor.log_mel(audio)  # (n, frames, 80)
        return torch.cat([log_mel.mean(dim=1), log_mel.std(dim=1)], dim=-1)


class EncoderEmbedder:
    def __init__(self, model: hear.AxLSTMHEARModel):
        self.model = model

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        return hear.get_scene_embeddings(audio.to(self.model.device), self.model)


def build_embedder(spec: str, layout: str, mode: str, device: str):
    """A model spec -> (embedder, fingerprint for the cache key); `SpecError` naming the spec when it cannot load."""
    try:
        return _build_embedder(spec, layout, mode, device)
    except (OSError, ValueError, TypeError) as err:
        if isinstance(err, SpecError):
            raise
        raise SpecError(f"--model spec {spec!r} cannot be loaded: {err}") from err


def _build_embedder(spec: str, layout: str, mode: str, device: str):
    if spec == "logmel":
        return LogMelBaseline(), {"kind": "logmel"}
    if spec.startswith("random:"):
        source = spec[len("random:") :]
        from transformers import AutoConfig, AutoModel

        if source in ("tiny", "small", "base"):
            config = AxLSTMConfig.from_preset(source)
        elif source in ("ssast-tiny", "ssast-small", "ssast-base"):
            config = SSASTConfig.from_preset(source[len("ssast-") :])
        else:
            config = AutoConfig.from_pretrained(source)
        torch.manual_seed(0)
        encoder = AutoModel.from_config(type(config)(**{**config.to_diff_dict(), "id2label": None}))
        model = hear.load_model(encoder, layout=layout, mode=mode, device=device)
        return EncoderEmbedder(model), {"kind": "random", "config": config.to_json_string(use_diff=True)}
    fingerprint = {"kind": "encoder", "source": spec}
    local = Path(spec)
    if local.exists():
        weights = [local] if local.is_file() else sorted(local.glob("*.safetensors")) + sorted(local.glob("*.bin"))
        fingerprint["weights"] = [(str(w.resolve()), w.stat().st_size, w.stat().st_mtime_ns) for w in weights]
    model = hear.load_model(spec, layout=layout, mode=mode, device=device)
    return EncoderEmbedder(model), fingerprint


def check_model_spec(spec: str) -> None:
    """A cheap check before any data is loaded: a local source must exist, anything else must be a valid Hub id."""
    random = spec.startswith("random:")
    source = spec[len("random:") :] if random else spec
    presets = ("tiny", "small", "base", "ssast-tiny", "ssast-small", "ssast-base")
    if spec == "logmel" or (random and source in presets):
        return
    if not source:
        raise SpecError(
            "--model spec 'random:' needs a source: random:FOLDER, random:HUB_ID, random:tiny|small|base or random:ssast-tiny|small|base."
        )
    if Path(source).exists():
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(source)
    except HFValidationError:
        raise SpecError(
            f"--model spec {spec!r}: {source!r} does not exist locally and is not a valid Hub model id "
            "('name' or 'namespace/name')."
        ) from None


def parse_model_args(items: list[str]) -> dict[str, str]:
    models = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            raise SpecError(f"--model {item!r} is not NAME=SPEC (e.g. pretrained=path/to/model, base=logmel).")
        if any(c in name for c in "/\\") or name in (".", ".."):
            raise SpecError(f"--model name {name!r} is invalid: it names a cache folder, so no path separators.")
        if name in models:
            raise SpecError(f"--model name {name!r} is given twice.")
        models[name] = spec
    return models


# ------------------------------------------------------------------------------------------------------- embeddings


def audio_name(value) -> str:
    """What a user would recognise an audio value by: its path, else its type."""
    if isinstance(value, dict) and value.get("path"):
        return str(value["path"])
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    return f"a {type(value).__name__} value"


def decode(value, max_samples: int | None, min_samples: int) -> np.ndarray:
    wave = decode_audio_value(value, TARGET_SAMPLING_RATE)
    if wave.shape[0] == 0:
        raise AudioDecodeError(f"audio {audio_name(value)!r} has no samples.")
    if not np.isfinite(wave).all():
        raise AudioDecodeError(f"audio {audio_name(value)!r} has NaN or Inf samples; remove or repair it.")
    if max_samples is not None:
        wave = wave[:max_samples]
    if wave.shape[0] < min_samples:
        wave = np.pad(wave, (0, min_samples - wave.shape[0]))
    return wave


@torch.inference_mode()
def extract(embedder, audio_values: list, max_seconds: float | None, batch_size: int) -> np.ndarray:
    """Scene embeddings (n, dim), clips of equal length batched together (the HEAR API takes equal lengths)."""
    max_samples = int(max_seconds * TARGET_SAMPLING_RATE) if max_seconds else None
    min_samples = AxLSTMFeatureExtractor().min_num_samples
    waves = [decode(v, max_samples, min_samples) for v in audio_values]
    out: list[np.ndarray | None] = [None] * len(waves)
    by_length: dict[int, list[int]] = {}
    for i, wave in enumerate(waves):
        by_length.setdefault(wave.shape[0], []).append(i)
    for indices in by_length.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = torch.from_numpy(np.stack([waves[i] for i in chunk]))
            embeddings = embedder.embed(batch).float().cpu().numpy()
            finite = np.isfinite(embeddings).all(axis=1)
            if not finite.all():
                bad = chunk[int(np.flatnonzero(~finite)[0])]
                raise AudioDecodeError(
                    f"audio {audio_name(audio_values[bad])!r} gives NaN or Inf embeddings (samples up to |x| = "
                    f"{float(np.abs(waves[bad]).max()):.3g}; audio is expected in [-1, 1])."
                )
            for i, row in zip(chunk, embeddings):
                out[i] = row
    return np.stack(out)


def cached_embeddings(embedder, model_key: dict, task: Task, data, layout, mode, cache_dir: Path, batch_size: int):
    key = json.dumps({"model": model_key, "task": task.fingerprint(), "layout": layout, "mode": mode}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    path = cache_dir / f"{task.name}-{layout}-{mode}-{digest}.npz"
    if path.exists():
        logger.info("cached embeddings: %s", path)
        stored = np.load(path)
        return {s: stored[s] for s in SPLITS}
    embeddings = {s: extract(embedder, data[s][0], task.max_seconds, batch_size) for s in SPLITS}
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **embeddings)
    tmp.replace(path)
    (cache_dir / f"{path.stem}.json").write_text(key)
    return embeddings


# ------------------------------------------------------------------------------------------------- downstream MLP


class DownstreamMLP(nn.Sequential):
    def __init__(self, dim: int, num_classes: int, hidden: int = 1024, dropout: float = 0.1):
        super().__init__(
            nn.Linear(dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = positives[order].astype(np.float64)
    return float((np.cumsum(hits) / np.arange(1, len(hits) + 1) * hits).sum() / hits.sum())


def score(logits: np.ndarray, labels: np.ndarray, metric: str) -> float:
    if metric == "accuracy":
        return float((logits.argmax(-1) == labels).mean())
    positives = labels.astype(bool) if labels.ndim == 2 else np.eye(logits.shape[1], dtype=bool)[labels]
    classes = [c for c in range(logits.shape[1]) if positives[:, c].any()]
    return float(np.mean([average_precision(logits[:, c], positives[:, c]) for c in classes])) if classes else 0.0


def train_mlp(embeddings, labels, num_classes, multi_label, metric, seed, args, device) -> tuple[float, float, int]:
    """Train one downstream MLP; returns (best validation score, its test score, best epoch)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mean = embeddings["train"].mean(0)
    std = embeddings["train"].std(0) + 1e-6
    x = {s: torch.from_numpy((embeddings[s] - mean) / std).float().to(device) for s in SPLITS}
    y = {s: torch.from_numpy(labels[s]).to(device) for s in SPLITS}
    model = DownstreamMLP(x["train"].shape[1], num_classes, dropout=args.dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = F.binary_cross_entropy_with_logits if multi_label else F.cross_entropy

    def evaluate_on(split):
        model.eval()
        with torch.no_grad():
            return score(model(x[split]).float().cpu().numpy(), labels[split], metric)

    best = (-math.inf, 0.0, 0)
    best_state = None
    since_best = 0
    n = x["train"].shape[0]
    for epoch in range(args.max_epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, args.batch_size):
            idx = order[start : start + args.batch_size]
            if idx.numel() < 2:  # BatchNorm needs two examples
                continue
            optimizer.zero_grad()
            loss_fn(model(x["train"][idx]), y["train"][idx]).backward()
            optimizer.step()
        val = evaluate_on("validation")
        if val > best[0]:
            best, since_best = (val, 0.0, epoch), 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
            if since_best >= args.patience:
                break
    model.load_state_dict(best_state)
    return best[0], evaluate_on("test"), best[2]


def mean_ci95(values: list[float]) -> tuple[float, float]:
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


# ---------------------------------------------------------------------------------------------------------- reports


def write_reports(results: list[dict], models: list[str], tasks: list[str], out: Path, normalize_to: str | None):
    by = {(r["model"], r["task"]): r for r in results}
    for task in tasks:
        reference = by[(normalize_to, task)]["mean"] if normalize_to else max(by[(m, task)]["mean"] for m in models)
        for m in models:
            by[(m, task)]["normalized"] = 100.0 * by[(m, task)]["mean"] / reference if reference > 0 else float("nan")
    aggregate = {m: float(np.mean([by[(m, t)]["normalized"] for t in tasks])) for m in models}

    header = "| model | " + " | ".join(f"{t} ({by[(models[0], t)]['metric']})" for t in tasks) + " | normalised |"
    lines = [header, "|" + "---|" * (len(tasks) + 2)]
    for m in models:
        cells = []
        for t in tasks:
            r = by[(m, t)]
            ci = "" if math.isnan(r["ci95"]) else f" ± {100 * r['ci95']:.1f}"
            cells.append(f"{100 * r['mean']:.1f}{ci}")
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {aggregate[m]:.1f} |")
    table = "\n".join(lines)
    note = (
        f"\n\nTest scores x 100, mean ± 95% CI over {results[0]['n_seeds']} seed(s); normalised: mean over tasks of "
        + (f"score / {normalize_to}'s score" if normalize_to else "score / best model's score")
        + " x 100.\n"
    )
    staged = {name: out / f".{name}.tmp-{os.getpid()}" for name in RESULT_FILES}
    staged["results.md"].write_text(table + note)

    with open(staged["results.csv"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["model", "task", "metric", "mean", "ci95", "n_seeds", "normalized", "scores", "best_epochs"])
        for r in results:
            writer.writerow(
                [
                    r["model"],
                    r["task"],
                    r["metric"],
                    f"{r['mean']:.6f}",
                    f"{r['ci95']:.6f}",
                    r["n_seeds"],
                    f"{r['normalized']:.3f}",
                    " ".join(f"{s:.6f}" for s in r["scores"]),
                    " ".join(str(e) for e in r["best_epochs"]),
                ]
            )
        for m in models:
            writer.writerow([m, "aggregate", "normalized", "", "", "", f"{aggregate[m]:.3f}", "", ""])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [*tasks, "normalised / 100"]
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(labels) * max(1, len(models) / 2)), 3.6))
    for k, m in enumerate(models):
        heights = [by[(m, t)]["mean"] for t in tasks] + [aggregate[m] / 100]
        errors = [0.0 if math.isnan(by[(m, t)]["ci95"]) else by[(m, t)]["ci95"] for t in tasks] + [0.0]
        positions = np.arange(len(labels)) + (k - (len(models) - 1) / 2) * width
        ax.bar(positions, heights, width, yerr=errors, capsize=3, label=m)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel("test score")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize="small")
    ax.set_title("Frozen-embedding evaluation (mean, 95% CI)")
    fig.tight_layout()
    fig.savefig(staged["results.png"], dpi=120, format="png")
    plt.close(fig)
    for name, path in staged.items():  # each file appears whole, never half written
        os.replace(path, out / name)
    return table + note


# ------------------------------------------------------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", action="append", required=True, help="task spec JSON (repeatable)")
    parser.add_argument("--model", action="append", required=True, help="NAME=SPEC (repeatable), see the docstring")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace the results of an earlier run in --output_dir (its embedding cache is kept and reused)",
    )
    parser.add_argument("--cache_dir", default=None, help="embedding cache (default: OUTPUT_DIR/embeddings)")
    parser.add_argument("--layout", default="time_major", choices=hear.LAYOUTS)
    parser.add_argument("--mode", default="windows", choices=hear.MODES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max_epochs", type=int, default=500)
    parser.add_argument("--patience", type=int, default=20, help="epochs without validation improvement")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch_size", type=int, default=1024)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--embed_batch_size", type=int, default=16, help="clips per embedding call")
    parser.add_argument("--normalize_to", default=None, help="model name whose score is 100 in the aggregate")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if args.normalize_to is not None and args.normalize_to not in [m.partition("=")[0] for m in args.model]:
        parser.error(f"--normalize_to {args.normalize_to!r} is not one of the --model names.")
    bad_seeds = [seed for seed in args.seeds if not 0 <= seed < 2**32]
    if bad_seeds:
        parser.error(f"--seeds {bad_seeds[0]} is out of range; seeds are integers in [0, 2**32).")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds} repeats a seed; each seed must be given once.")
    for flag, minimum in (("max_epochs", 1), ("patience", 1), ("batch_size", 2), ("embed_batch_size", 1)):
        value = getattr(args, flag)
        if value < minimum:
            why = " (the MLP's BatchNorm needs two examples)" if flag == "batch_size" else ""
            parser.error(f"--{flag} {value} is invalid; expected an integer >= {minimum}{why}.")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr {args.lr} is invalid; expected a finite number > 0.")
    if not (math.isfinite(args.dropout) and 0 <= args.dropout < 1):
        parser.error(f"--dropout {args.dropout} is invalid; expected a number in [0, 1).")
    for flag in ("output_dir", "cache_dir"):
        value = getattr(args, flag)
        if value is not None and Path(value).exists() and not Path(value).is_dir():
            parser.error(f"--{flag} {value!r} exists and is not a directory.")
    earlier = [name for name in RESULT_FILES if (Path(args.output_dir) / name).exists()]
    if earlier and not args.overwrite_output_dir:
        parser.error(
            f"--output_dir {args.output_dir!r} already holds the results of an earlier run ({', '.join(earlier)}); "
            "pass --overwrite_output_dir to replace them (the embedding cache is kept), or choose another folder."
        )
    try:
        args.device = str(hear.resolve_device(args.device))
    except ValueError as err:
        parser.error(f"--device: {err}")
    return args


def run(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    device = args.device
    out = Path(args.output_dir)
    cache_dir = Path(args.cache_dir) if args.cache_dir else out / "embeddings"
    models = parse_model_args(args.model)
    for spec in models.values():
        check_model_spec(spec)
    tasks = [Task.from_file(p) for p in args.task]
    if len({t.name for t in tasks}) != len(tasks):
        raise SpecError(f"task names must be unique, got {[t.name for t in tasks]}.")
    out.mkdir(parents=True, exist_ok=True)

    loaded = {}
    for task in tasks:
        data, space = load_task(task)
        metric = task.metric or ("mAP" if space.multi_label else "accuracy")
        loaded[task.name] = (data, space, metric)
        logger.info(
            "task %s: %d classes, %s, %s", task.name, len(space.labels), metric, {s: len(data[s][1]) for s in SPLITS}
        )

    results = []
    for name, spec in models.items():
        embedder, fingerprint = build_embedder(spec, args.layout, args.mode, device)
        for task in tasks:
            data, space, metric = loaded[task.name]
            embeddings = cached_embeddings(
                embedder, fingerprint, task, data, args.layout, args.mode, cache_dir / name, args.embed_batch_size
            )
            labels = {s: data[s][1] for s in SPLITS}
            runs = [
                train_mlp(embeddings, labels, len(space.labels), space.multi_label, metric, seed, args, device)
                for seed in args.seeds
            ]
            scores = [test for _, test, _ in runs]
            mean, half = mean_ci95(scores)
            logger.info("%s / %s: %s %.4f ± %.4f", name, task.name, metric, mean, half)
            results.append(
                {
                    "model": name,
                    "task": task.name,
                    "metric": metric,
                    "mean": mean,
                    "ci95": half,
                    "n_seeds": len(scores),
                    "scores": scores,
                    "best_epochs": [epoch for _, _, epoch in runs],
                }
            )
        del embedder
    report = write_reports(results, list(models), [t.name for t in tasks], out, args.normalize_to)
    print(report)
    return 0


def main(argv=None) -> int:
    try:
        return run(argv)
    except (SpecError, DatasetInputError, AudioDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""The paper's comparison at equal budget: AxLSTM against the SSAST transformer baseline, on your corpus and tasks.

    # your own corpus and task specs (tasks/*.json; see docs/hear.md for the task JSON)
    python examples/compare_architectures.py --train_dir wavs/ --task tasks/demo.json \
        --preset tiny --max_train_steps 20000 --per_device_train_batch_size 128 --output_dir compare/
    # a built-in synthetic corpus and task, no downloads (about 5 CPU minutes per variant on 2 cores)
    python examples/compare_architectures.py --synthetic --output_dir compare_synth/ --num_hidden_layers 6 \
        --max_train_steps 300 --per_device_train_batch_size 16 --learning_rate 5e-4

Every variant is pretrained by `examples/pretrain.py` with the same data, steps, batch, learning-rate schedule and
seed (`--pretrain_args` passes any other pretraining flag to all of them); then the frozen encoders, a randomly
initialised copy of each architecture and the log-mel baseline are evaluated with the paper's protocol
(`examples/evaluate_embeddings.py`: scene embeddings + MLP over `--seeds`, mean and 95% CI). One markdown table,
written to `OUTPUT_DIR/comparison.md`: encoder parameters, pretraining time, final validation loss, the score per task
with its 95% CI, the normalised average (score / best score per task x 100) and the relative difference of that
average to SSAST's (the variant named `ssast`, or `--reference`).

Ablations of the recipe, for either architecture, are variants `NAME=TYPE[:key=value...]` (`--variant
axlstm-masked-loss=axlstm:loss_on=masked --variant ssast-ratio-0.75=ssast:mask_ratio=0.75`; docs/ssast.md).
Default variants: `axlstm` (the authors' recipe), `ssast` (the authors' SSAST: mask tokens without positions, so
every masked patch gets the same prediction) and `ssast+positions` (mask tokens with positions, as the original
SSAST). Variant keys: `loss_on` (all | masked), `mask_ratio` (0-1), `mask_token_positions` (true | false).
A variant folder that already holds a finished run is reused (delete it, or pass `--overwrite`, to pretrain again).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VARIANTS = ["axlstm=axlstm", "ssast=ssast", "ssast+positions=ssast:mask_token_positions=true"]
VARIANT_KEYS = {"loss_on": str, "mask_ratio": float, "mask_token_positions": bool}


class CompareError(ValueError):
    """A bad flag or variant spec: one `error:` line, exit 2."""


def _example(name: str):
    key = f"_compare_example_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def parse_variant(spec: str) -> tuple[str, str, dict]:
    """`NAME=TYPE[:key=value...]` -> (name, model_type, options)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest or "/" in name:
        raise CompareError(f"--variant {spec!r} is invalid; expected NAME=TYPE[:key=value...], e.g. ssast=ssast.")
    model_type, *options = rest.split(":")
    if model_type not in ("axlstm", "ssast"):
        raise CompareError(f"--variant {spec!r}: model type {model_type!r} is not one of axlstm, ssast.")
    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if key not in VARIANT_KEYS or not sep:
            raise CompareError(
                f"--variant {spec!r}: {option!r} is not key=value with a key in {sorted(VARIANT_KEYS)}."
            )
        if VARIANT_KEYS[key] is bool:
            if value.lower() not in ("true", "false"):
                raise CompareError(f"--variant {spec!r}: {key} must be true or false, got {value!r}.")
            parsed[key] = value.lower() == "true"
        elif VARIANT_KEYS[key] is float:
            try:
                parsed[key] = float(value)
            except ValueError:
                raise CompareError(f"--variant {spec!r}: {key} must be a number, got {value!r}.") from None
        else:
            parsed[key] = value
    return name, model_type, parsed


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = parser.add_argument_group("pretraining data (one of them)")
    data.add_argument("--train_dir", help="folder of audio files")
    data.add_argument("--features_dir", help="log-mel shards of examples/prepare_features.py")
    data.add_argument("--dataset_name", help="a datasets dataset (Hub id or local path)")
    data.add_argument("--synthetic", action="store_true", help="a synthetic corpus and task made here (no downloads)")
    parser.add_argument("--task", action="append", default=[], help="evaluation task JSON (repeatable)")
    parser.add_argument("--variant", action="append", default=[], help="NAME=TYPE[:key=value...] (repeatable)")
    parser.add_argument("--reference", default="ssast", help="variant the relative difference is computed against")
    parser.add_argument("--output_dir", required=True)
    budget = parser.add_argument_group("the shared budget")
    budget.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"])
    budget.add_argument("--hidden_size", type=int, default=None, help="override the preset's width (both)")
    budget.add_argument("--num_hidden_layers", type=int, default=None, help="override the preset's depth (both)")
    budget.add_argument("--max_train_steps", type=int, default=None)
    budget.add_argument("--per_device_train_batch_size", type=int, default=None)
    budget.add_argument("--learning_rate", type=float, default=None)
    budget.add_argument("--seed", type=int, default=0)
    budget.add_argument("--pretrain_args", default="", help="more examples/pretrain.py flags, for every variant")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="MLP seeds per (model, task)")
    evaluation.add_argument("--no_random", action="store_true", help="skip the random-init copies")
    evaluation.add_argument("--eval_args", default="", help="more examples/evaluate_embeddings.py flags")
    parser.add_argument("--overwrite", action="store_true", help="pretrain again even where a finished run exists")
    args = parser.parse_args(argv)

    sources = [flag for flag in ("train_dir", "features_dir", "dataset_name", "synthetic") if getattr(args, flag)]
    if len(sources) != 1:
        raise CompareError("give exactly one of --train_dir, --features_dir, --dataset_name, --synthetic.")
    if not args.task and not args.synthetic:
        raise CompareError("give at least one --task (or --synthetic, which makes its own task).")
    for flag in ("hidden_size", "num_hidden_layers", "max_train_steps", "per_device_train_batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise CompareError(f"--{flag}={value} is invalid; expected a positive integer.")
    if args.learning_rate is not None and not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise CompareError(f"--learning_rate={args.learning_rate} is invalid; expected a finite number > 0.")
    if args.hidden_size is not None and args.hidden_size % 64 and args.hidden_size % 32:
        raise CompareError(
            f"--hidden_size={args.hidden_size} is invalid here; expected a multiple of 32 (SSAST's heads of 64, or "
            "of 32 below 64)."
        )
    args.variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]
    names = [name for name, _, _ in args.variants]
    if len(set(names)) != len(names):
        raise CompareError(f"--variant names must be unique, got {names}.")
    if args.reference not in names:
        raise CompareError(f"--reference {args.reference!r} is not one of the variants {names}.")
    for flag in ("pretrain_args", "eval_args"):
        try:
            setattr(args, flag, shlex.split(getattr(args, flag)))
        except ValueError as err:
            raise CompareError(f"--{flag} cannot be split into arguments: {err}.") from None
    return args


# ------------------------------------------------------------------------------------------------- the corpus


def synthetic_setup(out: Path, seed: int) -> tuple[Path, list[Path]]:
    """A pretraining corpus and a held-out 5-class task (other clips, other seed) of examples/synthetic_audio.py."""
    synthetic = _example("synthetic_audio")
    corpus, task_dir = out / "data" / "pretrain", out / "data" / "task"
    if not (corpus / "metadata.csv").is_file():
        synthetic.make_corpus(corpus, clips_per_class=60, min_seconds=1.0, max_seconds=3.0, seed=seed + 1)
    if not (task_dir / "metadata.csv").is_file():
        synthetic.make_corpus(task_dir, clips_per_class=40, min_seconds=1.0, max_seconds=3.0, seed=seed + 2)
    spec = out / "data" / "synth5.json"
    spec.write_text(json.dumps({"name": "synth5", "data": "task", "validation_fraction": 0.15}))
    return corpus, [spec]


# ---------------------------------------------------------------------------------------------- pretraining


def _heads_for(hidden: int) -> int:
    return max(1, hidden // 64) if hidden % 64 == 0 else max(1, hidden // 32)


def pretrain_variant(args, name: str, model_type: str, options: dict, data_flags: list[str], root: Path) -> dict:
    """Pretrain one variant (or reuse a finished run); returns its row facts."""
    pretrain = _example("pretrain")
    folder = root / "pretrain" / name
    record = folder / "compare_run.json"
    if record.is_file() and (folder / "model.safetensors").is_file() and not args.overwrite:
        print(f"[{name}] reusing the finished run in {folder}")
        return json.loads(record.read_text())
    argv = [*data_flags, "--output_dir", str(folder), "--model_type", model_type, "--preset", args.preset]
    argv += ["--seed", str(args.seed), "--no_progress_bar"]
    for flag in (
        "hidden_size",
        "num_hidden_layers",
        "max_train_steps",
        "per_device_train_batch_size",
        "learning_rate",
    ):
        if getattr(args, flag) is not None:
            argv += [f"--{flag}", str(getattr(args, flag))]
    if model_type == "ssast" and args.hidden_size is not None:
        argv += ["--num_attention_heads", str(_heads_for(args.hidden_size))]
    if "loss_on" in options:
        argv += ["--loss_on", options["loss_on"]]
    if "mask_ratio" in options:
        argv += ["--mask_ratio", str(options["mask_ratio"])]
    if options.get("mask_token_positions"):
        argv += ["--mask_token_positions"]
    argv += args.pretrain_args
    if folder.exists() and any(folder.iterdir()):
        argv += ["--overwrite_output_dir"]  # an unfinished run of this command, or --overwrite
    print(f"[{name}] python examples/pretrain.py {shlex.join(argv)}", flush=True)
    start = time.perf_counter()
    pretrain.main(argv)
    seconds = time.perf_counter() - start
    state = json.loads((folder / "trainer_state.json").read_text())
    val = [h["val_loss"] for h in state["history"] if "val_loss" in h]
    from transformers import AutoModelForPreTraining

    encoder = AutoModelForPreTraining.from_pretrained(folder).base_model  # the encoder, without a load report
    facts = {
        "name": name,
        "model_type": model_type,
        "options": options,
        "params": sum(p.numel() for p in encoder.parameters()),
        "seconds": seconds,
        "steps": state["global_step"],
        "final_val_loss": val[-1] if val else None,
    }
    record.write_text(json.dumps(facts, indent=1))
    return facts


# ------------------------------------------------------------------------------------------------- the table


def read_results(csv_path: Path) -> tuple[dict, dict]:
    """results.csv of evaluate_embeddings -> ({(model, task): row}, {model: normalised aggregate})."""
    cells, aggregate = {}, {}
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["task"] == "aggregate":
                aggregate[row["model"]] = float(row["normalized"])
            else:
                cells[(row["model"], row["task"])] = row
    return cells, aggregate


def comparison_table(facts: list[dict], models: list[str], tasks: list[str], csv_path: Path, reference: str) -> str:
    cells, aggregate = read_results(csv_path)
    by_name = {f["name"]: f for f in facts}
    ref = aggregate[reference]
    header = ["model", "params (M)", "pretraining (min)", "final val loss"]
    header += [f"{t} ({cells[(models[0], t)]['metric']})" for t in tasks] + ["normalised", f"vs {reference}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        fact = by_name.get(model)
        params = f"{fact['params'] / 1e6:.2f}" if fact else "-"
        minutes = f"{fact['seconds'] / 60:.2f}" if fact else "-"
        val = f"{fact['final_val_loss']:.4f}" if fact and fact["final_val_loss"] is not None else "-"
        scores = []
        for task in tasks:
            row = cells[(model, task)]
            ci = float(row["ci95"])
            scores.append(f"{100 * float(row['mean']):.1f}" + ("" if math.isnan(ci) else f" ± {100 * ci:.1f}"))
        relative = 100.0 * (aggregate[model] - ref) / ref if ref else float("nan")
        lines.append(
            f"| {model} | {params} | {minutes} | {val} | " + " | ".join(scores)
            + f" | {aggregate[model]:.1f} | {relative:+.1f}% |"
        )  # fmt: skip
    return "\n".join(lines)


def _describe(options: dict) -> str:
    if not options:
        return "the authors' recipe"
    return ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items())


def run(argv=None) -> Path:
    args = parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [Path(t) for t in args.task]
    if args.synthetic:
        corpus, synthetic_tasks = synthetic_setup(out, args.seed)
        data_flags, tasks = ["--train_dir", str(corpus)], tasks + synthetic_tasks
    else:
        source = next(f for f in ("train_dir", "features_dir", "dataset_name") if getattr(args, f))
        data_flags = [f"--{source}", getattr(args, source)]
    for task in tasks:
        if not task.is_file():
            raise CompareError(f"--task {str(task)!r} does not exist.")

    facts = [
        pretrain_variant(args, name, model_type, options, data_flags, out)
        for name, model_type, options in args.variants
    ]

    models = {f["name"]: str(out / "pretrain" / f["name"]) for f in facts}
    if not args.no_random:
        for model_type in dict.fromkeys(f["model_type"] for f in facts):
            first = next(f for f in facts if f["model_type"] == model_type)
            models[f"{model_type} (random init)"] = f"random:{out / 'pretrain' / first['name']}"
    models["log-mel"] = "logmel"
    evaluate_argv = [arg for task in tasks for arg in ("--task", str(task))]
    evaluate_argv += [arg for name, spec in models.items() for arg in ("--model", f"{name}={spec}")]
    # the evaluation folder is this command's own: a rerun of the comparison replaces its results
    evaluate_argv += ["--output_dir", str(out / "evaluation"), "--overwrite_output_dir"]
    evaluate_argv += ["--seeds", *map(str, args.seeds), *args.eval_args]
    evaluate = _example("evaluate_embeddings")
    print(f"python examples/evaluate_embeddings.py {shlex.join(evaluate_argv)}", flush=True)
    code = evaluate.main(evaluate_argv)
    if code != 0:
        raise CompareError("the evaluation failed (its error is above).")

    task_names = [json.loads(t.read_text()).get("name", t.stem) for t in tasks]
    table = comparison_table(facts, list(models), task_names, out / "evaluation" / "results.csv", args.reference)
    budget = facts[0]
    note = (
        f"\n\nEqual budget: {budget['steps']} steps of batch {args.per_device_train_batch_size or 32}, the same data, "
        f"learning-rate schedule and seed {args.seed} for every variant; preset {args.preset}"
        + (f", width {args.hidden_size}" if args.hidden_size else "")
        + (f", {args.num_hidden_layers} blocks" if args.num_hidden_layers else "")
        + f". Scores x 100, mean ± 95% CI over MLP seeds {args.seeds}; normalised: mean over tasks of score / best "
        f"score x 100; 'vs {args.reference}': relative difference of the normalised average. Variants: "
        + "; ".join(f"{f['name']} = {f['model_type']} ({_describe(f['options'])})" for f in facts)
        + ".\n"
    )
    (out / "comparison.md").write_text(table + note)
    print("\n" + table + note)
    return out / "comparison.md"


def main(argv=None) -> int:
    pretrain = _example("pretrain")
    try:
        run(argv)
    except (CompareError, pretrain.PretrainingError) as err:
        print(f"compare_architectures.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Precompute per-clip normalised log-mels once, so large pretraining runs don't decode audio every epoch.

    python examples/prepare_features.py --train_dir wavs/ --output_dir feats/ --num_proc 8
    python examples/prepare_features.py --dataset_name user/audio --audio_column audio --output_dir feats-arrow/ \
        --format arrow
    accelerate launch examples/pretrain.py --features_dir feats/ --preset tiny --output_dir runs/tiny-feats \
        --max_train_steps 1000

Output: sharded Parquet (`train-00000-of-000NN.parquet`, default) or an Arrow dataset (`save_to_disk`), with columns
`log_mel` (frames x mels, float32, normalised over the whole clip), `num_frames` and `clip_id`, plus
`axlstm_features.json` recording the sampling rate, the log-mel settings and the number of clips; `pretrain.py`
checks them. A non-empty `--output_dir` is refused unless `--overwrite_output_dir` is given (stale shards of an
earlier run would otherwise be read with the new ones). A clip whose samples or log-mel are not finite (NaN / inf)
stops the run with an error naming it: nothing is written.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from hf_axlstm import AxLSTMFeatureExtractor
from hf_axlstm.audio import AudioDecodeError, decode_audio_value, find_audio_files, load_audio
from hf_axlstm.data import audio_name, one_line
from hf_axlstm.pretraining import (
    FEATURES_METADATA_FILE,
    NonFiniteClipError,
    OutputDirLock,
    PretrainingError,
    clip_log_mel,
    feature_metadata,
    load_dataset_split,
    os_error_line,
    output_dir_entries,
    undecoded_audio_column,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Precompute AxLSTM log-mel features as Parquet/Arrow shards.")
    parser.add_argument("--train_dir", type=str, help="Folder of audio files (recursive).")
    parser.add_argument("--dataset_name", type=str, help="A `datasets` dataset: Hub id or local path.")
    parser.add_argument("--dataset_config_name", type=str)
    parser.add_argument(
        "--train_split",
        type=str,
        default=None,
        help="Split of --dataset_name (default: train); a folder of one saved Dataset is the split itself.",
    )
    parser.add_argument("--audio_column", type=str, default="audio")
    parser.add_argument("--output_dir", type=str, required=True)
    parser.add_argument("--format", choices=["parquet", "arrow"], default="parquet")
    parser.add_argument("--num_proc", type=int, default=1, help="Processes for `datasets.map`.")
    parser.add_argument("--clips_per_shard", type=int, default=2000, help="Clips per output shard.")
    parser.add_argument("--num_mel_bins", type=int, default=80)
    parser.add_argument("--sampling_rate", type=int, default=16000, help="Rate the features are computed at.")
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Write into a non-empty --output_dir: first DELETES its feature shards (*.parquet, *.arrow), "
        f"{FEATURES_METADATA_FILE} and the Arrow dataset's state.json / dataset_info.json; other files stay.",
    )
    args = parser.parse_args(argv)
    if bool(args.train_dir) == bool(args.dataset_name):
        raise PretrainingError("give exactly one of --train_dir and --dataset_name.")
    for name in ("num_proc", "clips_per_shard", "num_mel_bins", "sampling_rate"):
        if getattr(args, name) < 1:
            raise PretrainingError(f"--{name}={getattr(args, name)} is invalid; expected a positive integer.")
    if args.train_dir and not Path(args.train_dir).is_dir():
        what = "is a file" if Path(args.train_dir).exists() else "does not exist"
        raise PretrainingError(f"--train_dir {args.train_dir!r} {what}; expected a folder of audio files.")
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise PretrainingError(f"--output_dir {args.output_dir!r} is a file; expected a folder (new or empty).")
    check_output_dir(args)
    return args


def check_output_dir(args) -> None:
    """Refuse a non-empty --output_dir without --overwrite_output_dir (checked again under the folder's lock)."""
    if output_dir_entries(args.output_dir) and not args.overwrite_output_dir:
        raise PretrainingError(
            f"--output_dir {args.output_dir!r} is not empty; pass --overwrite_output_dir to replace the features "
            "there, or choose another folder."
        )


OUTPUT_PATTERNS = ("*.parquet", "*.arrow", "state.json", "dataset_info.json", FEATURES_METADATA_FILE)


def clear_output_dir(out: Path) -> None:
    """Delete the files of earlier features in `out` (--overwrite_output_dir)."""
    for pattern in OUTPUT_PATTERNS:
        for path in out.glob(pattern):
            if path.is_file():
                path.unlink()


def _features(feature_extractor):
    from datasets import Array2D, Features, Value

    return Features(
        {
            "log_mel": Array2D(shape=(None, feature_extractor.feature_size), dtype="float32"),
            "num_frames": Value("int32"),
            "clip_id": Value("string"),
        }
    )


def build_dataset(args, feature_extractor):
    """A `datasets.Dataset` of the decoded-later inputs: file paths, or the undecoded audio column."""
    import datasets

    if args.train_dir:
        root = Path(args.train_dir)
        if not root.is_dir():
            raise PretrainingError(f"--train_dir {args.train_dir!r} does not exist or is not a directory.")
        files = find_audio_files(root)
        if not files:
            raise PretrainingError(f"--train_dir {args.train_dir!r} holds no audio files (wav, flac, ogg, ...).")
        return datasets.Dataset.from_dict(
            {"path": [str(f) for f in files], "clip_id": [f.relative_to(root).as_posix() for f in files]}
        )
    try:
        dataset = load_dataset_split(args.dataset_name, args.dataset_config_name, args.train_split)
    except PretrainingError:
        raise
    except Exception as err:  # offline, a damaged folder: one line naming the flag
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PretrainingError(f"cannot load --dataset_name {args.dataset_name!r}: {first}") from None
    if len(dataset) == 0:
        split = args.train_split or "train"
        raise PretrainingError(f"--dataset_name {args.dataset_name!r} (split {split!r}) is empty.")
    dataset = undecoded_audio_column(dataset, args.audio_column)
    return dataset.add_column("clip_id", [str(i) for i in range(len(dataset))])


def main(argv=None) -> Path:
    args = parse_args(argv)
    with OutputDirLock(args.output_dir):  # a second run on the folder is refused while this one lives
        check_output_dir(args)
        return write_features(args)


def write_features(args) -> Path:
    try:
        feature_extractor = AxLSTMFeatureExtractor(feature_size=args.num_mel_bins, sampling_rate=args.sampling_rate)
    except ValueError as err:
        raise PretrainingError(f"--num_mel_bins / --sampling_rate: {err}") from None
    dataset = build_dataset(args, feature_extractor)
    column = "path" if args.train_dir else args.audio_column

    def compute(row):
        if column == "path":
            wave = load_audio(row["path"], feature_extractor.sampling_rate)
        else:
            wave = decode_audio_value(row[column], feature_extractor.sampling_rate)
        try:
            log_mel = clip_log_mel(wave, feature_extractor).numpy()
        except NonFiniteClipError as err:
            name = row["path"] if column == "path" else f"{row['clip_id']} ({audio_name(row[column])})"
            raise NonFiniteClipError(f"clip {name!r}: {err}; remove or repair it (nothing was written).") from None
        return {"log_mel": log_mel, "num_frames": log_mel.shape[0], "clip_id": row["clip_id"]}

    features = dataset.map(
        compute,
        remove_columns=dataset.column_names,
        features=_features(feature_extractor),
        num_proc=args.num_proc if args.num_proc > 1 else None,
        desc="log-mel",
    )
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    clear_output_dir(out)
    num_shards = max(1, math.ceil(len(features) / args.clips_per_shard))
    if args.format == "arrow":
        features.save_to_disk(str(out), num_shards=num_shards)
    else:
        for i in range(num_shards):
            shard = features.shard(num_shards=num_shards, index=i, contiguous=True)
            shard.to_parquet(str(out / f"train-{i:05d}-of-{num_shards:05d}.parquet"))
    metadata = feature_metadata(
        feature_extractor,
        num_clips=len(features),
        format=args.format,
        num_shards=num_shards,
        extractor_config=feature_extractor.to_dict(),
    )
    (out / FEATURES_METADATA_FILE).write_text(json.dumps(metadata, indent=1))
    print(f"wrote {len(features)} clips in {num_shards} {args.format} shard(s) to {out}")
    return out


def cli(argv=None) -> int:
    try:
        main(argv)
    except (PretrainingError, AudioDecodeError) as err:
        print(f"prepare_features.py: error: {one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        line = os_error_line(err, "the features")  # a read-only or full --output_dir, a file where a folder should be
        if line is None:
            raise
        print(f"prepare_features.py: error: {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())

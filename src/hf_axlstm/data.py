# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Labelled audio datasets for fine-tuning and evaluation scripts: loading, splits, labels, checks.

Works with and without torchcodec: the audio column is never decoded by `datasets`; it is kept as paths or
`{"path", "bytes"}` dicts (`Audio(decode=False)`) and decoded with `hf_axlstm.audio.decode_audio_value`.

Sources understood by [`load_audio_dataset`]:
- a Hub dataset id (with an optional config name);
- a CSV / JSON / JSON-lines file, or a folder of `train.csv`, `validation.csv`, `test.csv` (or `.json`, `.jsonl`),
  with a column of audio file paths (relative paths are taken relative to the file's folder);
- an audio folder in the `audiofolder` layout: optional split folders (`train/`, `validation/`, `test/`), class
  folders below them (the label is the parent folder's name), or a `metadata.csv` / `metadata.jsonl` with a
  `file_name` column and any label columns. Where torchcodec works (it imports and decodes: see
  [`torchcodec_works`]), `datasets`' own `audiofolder` builder reads it; otherwise an equivalent reader here does.

Every problem with the input raises [`DatasetInputError`] with a message naming the file, split or column.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .audio import AUDIO_EXTENSIONS, AudioDecodeError, check_not_truncated, find_audio_files

SPLIT_ALIASES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "eval", "evaluation"),
}
_TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}


class DatasetInputError(ValueError):
    """The dataset, a split, a column, a label or an audio file is not usable; the message says which."""


_TORCHCODEC_WORKS: bool | None = None


def torchcodec_works() -> bool:
    """Whether `datasets` can decode audio here: torchcodec imports *and* decodes a tiny WAV (it needs FFmpeg's
    shared libraries and a build matching torch; a pip install next to a CPU-only torch often imports nothing
    usable). Checked once per process. When False, audio folders are read by this module (soundfile) instead."""
    global _TORCHCODEC_WORKS
    if _TORCHCODEC_WORKS is None:
        _TORCHCODEC_WORKS = _probe_torchcodec()
    return _TORCHCODEC_WORKS


def _probe_torchcodec() -> bool:
    if importlib.util.find_spec("torchcodec") is None:
        return False
    import io
    import struct

    rate, samples = 16000, 160
    data = b"\x00\x00" * samples
    fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate, 2, 16)
    wav = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
    wav += b"data" + struct.pack("<I", len(data)) + data
    try:
        from torchcodec.decoders import AudioDecoder

        decoded = AudioDecoder(io.BytesIO(wav).getvalue()).get_all_samples()
        return int(decoded.sample_rate) == rate and decoded.data.shape[-1] == samples
    except Exception:  # ImportError, OSError (missing libnvrtc / FFmpeg), RuntimeError: not usable
        return False


# -------------------------------------------------------------------------------------------------------- loading


def _split_of(name: str) -> str | None:
    for split, aliases in SPLIT_ALIASES.items():
        if name.lower() in aliases:
            return split
    return None


def _absolutise(dataset, column: str, base: Path):
    """Relative audio paths of a table -> paths relative to the table's folder."""

    def fix(batch):
        out = []
        for value in batch[column]:
            if isinstance(value, str) and value and not os.path.isabs(value) and "://" not in value:
                value = str(base / value)
            out.append(value)
        return {column: out}

    return dataset.map(fix, batched=True, desc=None)


def _has_rows(path: Path) -> bool:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if path.suffix.lower() in (".csv", ".tsv"):
        return len(lines) > 1  # a header and at least one row
    if path.suffix.lower() == ".json" and lines:
        try:
            return len(json.loads("\n".join(lines))) > 0
        except (json.JSONDecodeError, TypeError):
            return True  # JSON lines in a .json file, or not a list: leave it to the reader
    return bool(lines)


def _load_tables(files: dict[str, Path], audio_column: str):
    import datasets

    out = {}
    for split, path in files.items():
        if not _has_rows(path):
            raise DatasetInputError(f"split {split!r} is empty ({str(path)!r} has no rows).")
        builder = _TABLE_SUFFIXES[path.suffix.lower()]
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        try:
            table = datasets.load_dataset(builder, data_files={split: str(path)}, split=split, **kwargs)
        except Exception as err:  # pyarrow / pandas parse errors
            raise DatasetInputError(f"cannot read {str(path)!r} as {builder.upper()}: {err}") from err
        if audio_column in table.column_names and isinstance(table.features[audio_column], datasets.Value):
            table = _absolutise(table, audio_column, path.parent)
        out[split] = table
    return datasets.DatasetDict(out)


def _read_audio_folder(root: Path):
    """The `audiofolder` layout without torchcodec: audio paths as strings, labels from folder names or metadata."""
    import datasets

    root = Path(root).resolve()
    files = find_audio_files(root)
    if not files:
        raise DatasetInputError(f"audio folder {str(root)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}).")
    metadata = {}
    tables = find_audio_files(root, extensions=(".csv", ".jsonl"))  # the same walk: linked folders followed once
    for meta in [p for p in tables if p.name == "metadata.csv"] + [p for p in tables if p.name == "metadata.jsonl"]:
        rows = _load_tables({"train": meta}, "file_name")["train"]
        if "file_name" not in rows.column_names:
            raise DatasetInputError(f"{str(meta)!r} has no 'file_name' column.")
        for row in rows:
            metadata[(meta.parent / row["file_name"]).resolve()] = {k: v for k, v in row.items() if k != "file_name"}
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    for path in files:
        parts = path.relative_to(root).parts
        split = _split_of(parts[0]) if len(parts) > 1 else None
        inner = parts[1:] if split else parts
        row: dict[str, Any] = {"audio": str(path)}
        if metadata:
            row.update(metadata.get(path.resolve(), {}))
        elif len(inner) > 1:
            row["label"] = inner[-2]
        rows_by_split.setdefault(split or "train", []).append(row)
    out = {}
    for split, rows in rows_by_split.items():
        columns = sorted({k for r in rows for k in r})
        out[split] = datasets.Dataset.from_dict({c: [r.get(c) for r in rows] for c in columns})
    return datasets.DatasetDict(out)


def load_audio_dataset(
    name_or_path: str | os.PathLike | None = None,
    config_name: str | None = None,
    data_files: dict[str, str] | None = None,
    audio_column: str = "audio",
    **load_kwargs,
):
    """Load a labelled audio dataset as a `DatasetDict` whose audio column is not decoded (paths or
    `{"path", "bytes"}` dicts). `data_files` maps split names to CSV/JSON files (instead of `name_or_path`)."""
    import datasets

    if data_files:
        files = {}
        for split, file in data_files.items():
            path = Path(file)
            if not path.is_file():
                raise DatasetInputError(f"{split} file {str(file)!r} does not exist.")
            if path.suffix.lower() not in _TABLE_SUFFIXES:
                raise DatasetInputError(f"{split} file {str(file)!r} is not a CSV, TSV, JSON or JSON-lines file.")
            files[split] = path
        dataset = _load_tables(files, audio_column)
    elif name_or_path is None or not str(name_or_path):
        raise DatasetInputError("no dataset given: pass a Hub dataset id, a folder, or CSV/JSON files.")
    else:
        path = Path(name_or_path)
        if path.is_file():
            if path.suffix.lower() not in _TABLE_SUFFIXES:
                raise DatasetInputError(f"{str(path)!r} is not a CSV, TSV, JSON or JSON-lines file.")
            dataset = _load_tables({"train": path}, audio_column)
        elif path.is_dir():
            tables = {
                _split_of(p.stem): p
                for p in sorted(path.iterdir())
                if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES and _split_of(p.stem)
            }
            if tables:
                dataset = _load_tables(tables, audio_column)
            elif torchcodec_works():
                dataset = datasets.load_dataset("audiofolder", data_dir=str(path), **load_kwargs)
            else:
                dataset = _read_audio_folder(path)
        elif str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") > 1:
            raise DatasetInputError(f"dataset {str(name_or_path)!r} does not exist (no such file or folder).")
        else:
            try:
                dataset = datasets.load_dataset(str(name_or_path), config_name, **load_kwargs)
            except Exception as err:
                raise DatasetInputError(f"cannot load dataset {str(name_or_path)!r}: {err}") from err
    if isinstance(dataset, datasets.Dataset):
        dataset = datasets.DatasetDict({"train": dataset})
    for split in dataset:
        dataset[split] = keep_audio_undecoded(dataset[split], audio_column)
    return dataset


def keep_audio_undecoded(dataset, column: str):
    """Never let `datasets` decode `column`: an `Audio` column is cast to `Audio(decode=False)`, so it yields
    `{"path", "bytes"}` for `audio.decode_audio_value` (soundfile; works without torchcodec). Other columns and
    datasets whose features are unknown (some streaming ones) are returned as they are."""
    import datasets

    feature = (dataset.features or {}).get(column)
    if isinstance(feature, datasets.Audio) and feature.decode:
        dataset = dataset.cast_column(column, datasets.Audio(decode=False))
    return dataset


# --------------------------------------------------------------------------------------------------------- splits


def resolve_splits(
    dataset,
    train_split: str = "train",
    validation_split: str | None = "validation",
    test_split: str | None = "test",
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """`{"train", "validation", "test"}` datasets. A missing validation split is carved from train
    (`validation_fraction`, seeded); when only train exists, a test split is carved too (`test_fraction`).
    An existing split that is empty is an error."""
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise DatasetInputError(f"{name}={value!r} is invalid; expected a number strictly between 0 and 1.")
    if validation_fraction + test_fraction >= 1.0:
        raise DatasetInputError(
            f"validation_fraction + test_fraction = {validation_fraction + test_fraction} leaves no training data; "
            "expected a sum below 1."
        )
    available = list(dataset)
    if train_split not in dataset:
        raise DatasetInputError(f"the dataset has no {train_split!r} split; its splits are {available}.")
    for name in (train_split, validation_split, test_split):
        if name in dataset and len(dataset[name]) == 0:
            raise DatasetInputError(f"split {name!r} is empty.")
    train = dataset[train_split]
    test = dataset[test_split] if test_split in dataset else None
    validation = dataset[validation_split] if validation_split in dataset else None
    if test is None and validation is None:
        if len(train) < 3:
            raise DatasetInputError(f"split {train_split!r} has {len(train)} examples; need at least 3 to split it.")
        parts = train.train_test_split(test_size=max(1, round(test_fraction * len(train))), seed=seed)
        train, test = parts["train"], parts["test"]
    if validation is None:
        if len(train) < 2:
            raise DatasetInputError(f"split {train_split!r} has {len(train)} examples; too few to carve a validation.")
        parts = train.train_test_split(test_size=max(1, round(validation_fraction * len(train))), seed=seed)
        train, validation = parts["train"], parts["test"]
    return {"train": train, "validation": validation, "test": test}


def check_columns(splits: dict[str, Any], columns: Sequence[str]) -> None:
    for split, data in splits.items():
        if data is None:
            continue
        missing = [c for c in columns if c not in data.column_names]
        if missing:
            raise DatasetInputError(
                f"split {split!r} has no column {missing[0]!r}; its columns are {data.column_names}."
            )


# --------------------------------------------------------------------------------------------------------- labels


class LabelSpace:
    """The classes of a label column, read from the train split, and their encoding.

    A column holding lists (or, with `delimiter`, strings like `"dog,bark"`) is multi-label; a `ClassLabel` column
    keeps its names; other values are turned into strings and sorted.
    """

    def __init__(self, labels: list[str], multi_label: bool, delimiter: str | None = None, names=None):
        self.labels = labels
        self.multi_label = multi_label
        self.delimiter = delimiter
        self.names = names  # ClassLabel names: integer values are indices into these
        self.index = {label: i for i, label in enumerate(labels)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def values(self, value) -> list[str]:
        """One raw value -> its label strings."""
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [v for item in value for v in self.values(item)]
        if self.names is not None and isinstance(value, int) and not isinstance(value, bool):
            return [self.names[value]]
        if self.delimiter is not None and isinstance(value, str):
            return [v.strip() for v in value.split(self.delimiter) if v.strip()]
        return [str(value)]

    @classmethod
    def from_dataset(cls, dataset, column: str, delimiter: str | None = None, multi_label: bool | None = None):
        import datasets

        feature = dataset.features[column]
        names = None
        inner = getattr(feature, "feature", None)  # Sequence / List
        if isinstance(feature, datasets.ClassLabel):
            names = feature.names
        elif isinstance(inner, datasets.ClassLabel):
            names = inner.names
        is_list = isinstance(feature, (datasets.List, datasets.Sequence, list))
        if multi_label is None:
            multi_label = is_list or delimiter is not None
        space = cls([], multi_label, delimiter, names)
        seen = set()
        for value in dataset[column]:
            found = space.values(value)
            if not found and not multi_label:
                raise DatasetInputError(f"the train split has an empty label in column {column!r}.")
            seen.update(found)
        if not seen:
            raise DatasetInputError(f"the train split has no labels in column {column!r}.")
        labels = [n for n in names if n in seen] if names is not None else sorted(seen)
        if not multi_label and len(labels) < 2:
            raise DatasetInputError(f"column {column!r} has a single class {labels} in the train split; need two.")
        return cls(labels, multi_label, delimiter, names)

    def encode(self, value, split: str = "train", column: str = "label"):
        """Raw value -> class index (single-label) or multi-hot float list (multi-label)."""
        found = self.values(value)
        unknown = [v for v in found if v not in self.index]
        if unknown:
            raise DatasetInputError(
                f"label {unknown[0]!r} in split {split!r} (column {column!r}) does not occur in the train split."
            )
        if self.multi_label:
            hot = [0.0] * len(self.labels)
            for v in found:
                hot[self.index[v]] = 1.0
            return hot
        if len(found) != 1:
            raise DatasetInputError(
                f"split {split!r} has a value {value!r} in column {column!r} that is not exactly one label; "
                "pass --label_delimiter for multi-label strings."
            )
        return self.index[found[0]]

    def to_json(self) -> str:
        return json.dumps({"labels": self.labels, "multi_label": self.multi_label})


# ---------------------------------------------------------------------------------------------------------- audio


def audio_name(value) -> str:
    """A human-readable name for one audio value (its path when it has one)."""
    if isinstance(value, dict):
        return str(value.get("path") or "<audio bytes>")
    return str(value)


def check_audio_files(dataset, column: str, split: str) -> None:
    """Fail on the first audio file that does not exist, whose header cannot be read, or that is a truncated WAV (its
    header declares more audio than the file holds). Headers only: cheap."""
    import soundfile as sf

    for value in dataset[column]:
        path = value.get("path") if isinstance(value, dict) else value
        if isinstance(value, dict) and value.get("bytes") is not None:
            continue  # embedded bytes: checked when decoded
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise DatasetInputError(f"split {split!r} has an empty audio value in column {column!r}.")
        if "://" in str(path):
            continue
        if not os.path.isfile(path):
            raise DatasetInputError(f"audio file {str(path)!r} (split {split!r}) does not exist.")
        try:
            sf.info(str(path))
        except Exception as err:
            raise DatasetInputError(f"cannot read audio file {str(path)!r} (split {split!r}): {err}") from err
        try:
            check_not_truncated(path)
        except AudioDecodeError as err:
            raise DatasetInputError(f"{err} (split {split!r})") from None


def one_line(err: BaseException) -> str:
    """The message of `err` on one line, for a CLI's single `error:` line. An error raised in a DataLoader or
    `datasets.map` worker arrives with the worker's traceback as its message: its last line (without the exception's
    type) is the original message."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if "Traceback" in str(err):
        head, sep, rest = lines[-1].partition(": ")
        return rest if sep and head.replace(".", "").replace("_", "").isalnum() else lines[-1]
    return " ".join(lines)


__all__ = [
    "DatasetInputError",
    "LabelSpace",
    "audio_name",
    "one_line",
    "check_audio_files",
    "check_columns",
    "load_audio_dataset",
    "resolve_splits",
    "torchcodec_works",
]

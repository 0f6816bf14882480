# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Reusable pieces of masked-spectrogram pretraining (`examples/pretrain.py` tells the story, this module holds the
parts): clip sources (audio files, `datasets` audio columns, precomputed log-mel shards), deterministic random crops
with per-clip mask noise, the collator, AdamW parameter groups, the warm-up + cosine schedule, atomic checkpoints and
the plots.

Determinism is by construction: the crop offset and the mask noise of a clip are drawn from a generator seeded by
(seed, epoch, dataset index), and the order of an epoch from (seed, epoch). A run resumed from a checkpoint therefore
sees exactly the batches the uninterrupted run would have seen, and a two-process run sees, between its two ranks,
exactly the clips (with the same crops and masks) a one-process run with the same global batch sees.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from .audio import TARGET_SAMPLING_RATE, AudioDecodeError, decode_audio_value, find_audio_files, load_audio

FEATURES_METADATA_FILE = "axlstm_features.json"
CHECKPOINT_PREFIX = "checkpoint-"
COMPLETE_MARKER = "CHECKPOINT_COMPLETE"
TRAINER_STATE_FILE = "trainer_state.json"


class PretrainingError(ValueError):
    """A problem with the user's arguments or data, reported as one line (no traceback) by the scripts."""


class NonFiniteClipError(PretrainingError):
    """A clip whose audio samples or log-mel hold NaN or inf; the message says which (callers add the clip's name)."""


# ------------------------------------------------------------------------------------------------- features


def clip_log_mel(waveform: np.ndarray | torch.Tensor, feature_extractor) -> torch.Tensor:
    """One mono waveform at the extractor's rate -> per-clip normalised log-mel (frames, mels), float32.

    Clips shorter than the extractor's minimum (reflect padding needs `n_fft // 2 + 1` samples) are zero-padded to
    it. Normalisation uses the whole clip, before any crop (the authors' order)."""
    wave = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    if wave.ndim != 1:
        raise AudioDecodeError(f"expected a mono waveform, got shape {tuple(wave.shape)}.")
    if not bool(torch.isfinite(wave).all()):
        bad = int((~torch.isfinite(wave)).sum())
        raise NonFiniteClipError(f"{bad} of its {wave.shape[0]} audio samples are NaN or inf")
    minimum = feature_extractor.min_num_samples
    if wave.shape[0] < minimum:
        wave = torch.nn.functional.pad(wave, (0, minimum - wave.shape[0]))
    log_mel = feature_extractor.log_mel(wave[None])  # (1, frames, mels)
    if feature_extractor.do_normalize:
        log_mel = feature_extractor.normalize(log_mel)
    log_mel = log_mel[0].float()
    check_finite_log_mel(log_mel)
    return log_mel


def check_finite_log_mel(log_mel: torch.Tensor) -> None:
    """Raise `NonFiniteClipError` when a log-mel holds NaN or inf."""
    if not bool(torch.isfinite(log_mel).all()):
        raise NonFiniteClipError("its log-mel is not finite (NaN or inf)")


def feature_metadata(feature_extractor, **extra: Any) -> dict[str, Any]:
    """What a features folder records about how its log-mels were made; checked before pretraining reads them."""
    return {
        "format_version": 1,
        "sampling_rate": int(feature_extractor.sampling_rate),
        "num_mel_bins": int(feature_extractor.feature_size),
        "hop_length": int(feature_extractor.hop_length),
        "n_fft": int(feature_extractor.n_fft),
        "win_length": int(feature_extractor.win_length),
        "f_min": float(feature_extractor.f_min),
        "f_max": float(feature_extractor.f_max),
        "mel_scale": feature_extractor.mel_scale,
        "normalized": bool(feature_extractor.do_normalize),
        **extra,
    }


def check_feature_metadata(metadata: dict[str, Any], feature_extractor, where: str) -> None:
    """Raise `PretrainingError` (one line) when precomputed features do not match the extractor of the model."""
    expected = feature_metadata(feature_extractor)
    for key, label in (
        ("sampling_rate", "sampling rate (Hz)"),
        ("num_mel_bins", "number of mel bins"),
        ("hop_length", "hop length"),
        ("n_fft", "n_fft"),
        ("mel_scale", "mel scale"),
        ("normalized", "per-clip normalisation"),
    ):
        if key not in metadata:
            raise PretrainingError(
                f"features in {where} lack '{key}' in {FEATURES_METADATA_FILE}; re-run prepare_features.py."
            )
        if metadata[key] != expected[key]:
            raise PretrainingError(
                f"features in {where} have {label} {metadata[key]!r} but the model expects {expected[key]!r}; "
                "re-run prepare_features.py with matching settings."
            )


# ------------------------------------------------------------------------------------------------- clip sources


class ClipSource:
    """A finite, indexable collection of clips: `len`, `clip_id(i)` and `log_mel(i)` (normalised, (frames, mels))."""

    def __len__(self) -> int:
        raise NotImplementedError

    def clip_id(self, index: int) -> str:
        return str(index)

    def log_mel(self, index: int) -> torch.Tensor:
        raise NotImplementedError


class AudioFileSource(ClipSource):
    """Audio files found recursively under a folder (wav/flac/ogg/... via soundfile, resampled, mono)."""

    def __init__(self, root: str | os.PathLike, feature_extractor, files: Sequence[Path] | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise PretrainingError(f"--train_dir {str(root)!r} does not exist or is not a directory.")
        self.files = list(files) if files is not None else find_audio_files(self.root)
        if not self.files:
            raise PretrainingError(f"--train_dir {str(root)!r} holds no audio files (wav, flac, ogg, ...).")
        self.feature_extractor = feature_extractor

    def __len__(self) -> int:
        return len(self.files)

    def clip_id(self, index: int) -> str:
        return self.files[index].relative_to(self.root).as_posix()

    def log_mel(self, index: int) -> torch.Tensor:
        wave = load_audio(self.files[index], self.feature_extractor.sampling_rate)
        return clip_log_mel(wave, self.feature_extractor)


def undecoded_audio_column(dataset, column: str):
    """Check `column` exists and make an audio column yield `{"path", "bytes"}` (no torchcodec needed)."""
    from .data import keep_audio_undecoded

    names = list(dataset.column_names or dataset.features or [])
    if names and column not in names:
        raise PretrainingError(f"--audio_column {column!r} is not a column of the dataset; its columns are {names}.")
    return keep_audio_undecoded(dataset, column).select_columns([column])


class HFAudioSource(ClipSource):
    """An audio column of a map-style `datasets.Dataset`, decoded with `audio.decode_audio_value`."""

    def __init__(self, dataset, column: str, feature_extractor):
        self.dataset = undecoded_audio_column(dataset, column)
        self.column = column
        self.feature_extractor = feature_extractor
        if len(self.dataset) == 0:
            raise PretrainingError("the dataset split is empty.")

    def __len__(self) -> int:
        return len(self.dataset)

    def clip_id(self, index: int) -> str:
        value = self.dataset[index][self.column]
        path = value.get("path") if isinstance(value, dict) else None
        return f"{index}:{path}" if path else str(index)

    def log_mel(self, index: int) -> torch.Tensor:
        value = self.dataset[index][self.column]
        wave = decode_audio_value(value, self.feature_extractor.sampling_rate)
        return clip_log_mel(wave, self.feature_extractor)


def load_feature_shards(features_dir: str | os.PathLike, feature_extractor):
    """Open a folder written by `examples/prepare_features.py` (Arrow via `save_to_disk`, or Parquet shards) and
    check its metadata against `feature_extractor`. Returns a map-style `datasets.Dataset`."""
    root = Path(features_dir)
    if not root.is_dir():
        raise PretrainingError(f"--features_dir {str(features_dir)!r} does not exist or is not a directory.")
    meta_path = root / FEATURES_METADATA_FILE
    if not meta_path.is_file():
        raise PretrainingError(
            f"--features_dir {str(features_dir)!r} has no {FEATURES_METADATA_FILE}; create it with prepare_features.py."
        )
    try:
        metadata = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PretrainingError(f"{str(meta_path)!r} is not valid JSON ({err}); re-run prepare_features.py.") from None
    if not isinstance(metadata, dict):
        raise PretrainingError(f"{str(meta_path)!r} is not a JSON object; re-run prepare_features.py.")
    check_feature_metadata(metadata, feature_extractor, str(features_dir))
    import datasets

    if (root / "state.json").is_file() or (root / "dataset_info.json").is_file():
        try:
            dataset = datasets.load_from_disk(str(root))
        except Exception as err:  # a damaged Arrow file or state.json
            raise PretrainingError(
                f"cannot read the Arrow dataset in --features_dir {str(features_dir)!r}: {_first_line(err)}"
            ) from None
    else:
        files = sorted(root.glob("*.parquet"))
        if not files:
            raise PretrainingError(f"--features_dir {str(features_dir)!r} holds no Arrow dataset or Parquet shards.")
        for file in files:
            check_parquet_shard(file)
        try:
            dataset = datasets.Dataset.from_parquet([str(f) for f in files], keep_in_memory=False)
        except Exception as err:  # a damaged data page: name the shard that fails to read
            for file in files:
                check_parquet_shard(file, read_data=True)
            raise PretrainingError(
                f"cannot read the Parquet shards of --features_dir {str(features_dir)!r}: {_first_line(err)}"
            ) from None
    for column in ("log_mel", "num_frames"):
        if column not in dataset.column_names:
            raise PretrainingError(f"--features_dir {str(features_dir)!r} has no {column!r} column.")
    expected = metadata.get("num_clips")
    if isinstance(expected, int) and expected != len(dataset):
        raise PretrainingError(
            f"--features_dir {str(features_dir)!r} holds {len(dataset)} clips but {FEATURES_METADATA_FILE} records "
            f"{expected} (a shard is missing, or left over from another run); re-run prepare_features.py."
        )
    return dataset


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def check_parquet_shard(path: Path, read_data: bool = False) -> None:
    """Raise `PretrainingError` naming `path` when it is not a readable Parquet file (footer; all data with
    `read_data`)."""
    import pyarrow.parquet as pq

    try:
        if read_data:
            pq.read_table(path)
        else:
            pq.ParquetFile(path).metadata  # noqa: B018  (reads and checks the footer)
    except Exception as err:
        raise PretrainingError(
            f"feature shard {str(path)!r} is damaged or truncated ({_first_line(err)}); re-run prepare_features.py."
        ) from None


class FeatureShardSource(ClipSource):
    """Precomputed normalised log-mels (columns `log_mel` (frames, mels), `num_frames`, `clip_id`)."""

    def __init__(self, dataset):
        self.dataset = dataset.with_format("numpy")
        if len(self.dataset) == 0:
            raise PretrainingError("the features folder holds no clips.")
        # Column views, so that a clip's id or length is read without its log-mel (a row read decodes every column).
        self._ids = dataset.select_columns(["clip_id"]) if "clip_id" in dataset.column_names else None
        self._frames = self.dataset.select_columns(["log_mel", "num_frames"])

    def __len__(self) -> int:
        return len(self.dataset)

    def clip_id(self, index: int) -> str:
        if self._ids is not None:
            return str(self._ids[index]["clip_id"])
        return str(index)

    def log_mel(self, index: int) -> torch.Tensor:
        row = self._frames[index]
        values = np.asarray(row["log_mel"])
        if values.dtype == object:
            values = np.stack([np.asarray(r, dtype=np.float32) for r in values])
        log_mel = torch.from_numpy(values.astype(np.float32, copy=False))[: int(row["num_frames"])]
        check_finite_log_mel(log_mel)
        return log_mel


# ------------------------------------------------------------------------------------------------- crops & batches


def clip_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one clip's crop and mask noise: a pure function of (seed, epoch, index)."""
    return np.random.default_rng([int(seed), int(epoch) + 1, int(index)])


def crop_or_pad(
    log_mel: torch.Tensor, crop_frames: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random `crop_frames` window of a (frames, mels) log-mel; shorter clips are zero-padded at the end (never
    tiled). Returns values (crop_frames, mels) and attention_mask (crop_frames,) int64."""
    frames, mels = log_mel.shape
    if frames >= crop_frames:
        start = int(rng.integers(0, frames - crop_frames + 1))
        return log_mel[start : start + crop_frames].contiguous(), torch.ones(crop_frames, dtype=torch.long)
    values = torch.zeros(crop_frames, mels, dtype=log_mel.dtype)
    values[:frames] = log_mel
    mask = torch.zeros(crop_frames, dtype=torch.long)
    mask[:frames] = 1
    return values, mask


def num_patches(crop_frames: int, config) -> int:
    """Patches of a `crop_frames` window for `config` (250 for 200 frames and 4 x 16 patches)."""
    return -(-crop_frames // config.patch_size[0]) * config.num_freq_patches


class PretrainingCrops(Dataset):
    """Map-style dataset of training examples: `indices` of a `ClipSource`, each a random crop plus the uniform noise
    that decides its mask, both drawn from `clip_generator(seed, epoch, index)`. Call `set_epoch` before each
    epoch. With `fixed=True` the epoch is ignored (validation: the same crops and masks at every evaluation)."""

    def __init__(
        self, source: ClipSource, indices: Sequence[int], crop_frames: int, num_patches: int, seed: int, fixed=False
    ):
        self.source = source
        self.indices = list(indices)
        self.crop_frames = crop_frames
        self.num_patches = num_patches
        self.seed = seed
        self.fixed = fixed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = self.indices[position]
        rng = clip_generator(self.seed, -1 if self.fixed else self.epoch, index)
        try:
            log_mel = self.source.log_mel(index)
        except NonFiniteClipError as err:
            raise NonFiniteClipError(
                f"clip {self.source.clip_id(index)!r} (dataset index {index}): {err}; remove or repair it."
            ) from None
        values, mask = crop_or_pad(log_mel, self.crop_frames, rng)
        noise = torch.from_numpy(rng.random(self.num_patches).astype(np.float32))
        return {"input_values": values, "attention_mask": mask, "noise": noise, "clip_id": self.source.clip_id(index)}


class StreamingCrops(IterableDataset):
    """Endless examples from a (rank-sharded) streaming `datasets.IterableDataset` audio column: epochs restart when
    the stream ends, so every rank can run the same number of steps. `skip` examples (counted from the very start of
    the stream, over epochs) are passed over undecoded, which is how a resumed run finds its data position."""

    def __init__(self, dataset, column, feature_extractor, crop_frames, num_patches, seed, rank=0, skip=0):
        self.dataset = dataset
        self.column = column
        self.feature_extractor = feature_extractor
        self.crop_frames = crop_frames
        self.num_patches = num_patches
        self.seed = seed
        self.rank = rank
        self.skip = skip

    def __iter__(self) -> Iterator[dict[str, Any]]:
        count = 0
        epoch = 0
        while True:
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            seen_in_epoch = 0
            for position, row in enumerate(self.dataset):
                seen_in_epoch += 1
                count += 1
                if count <= self.skip:
                    continue
                wave = decode_audio_value(row[self.column], self.feature_extractor.sampling_rate)
                rng = clip_generator(self.seed, epoch, self.rank * 1_000_003 + position)
                try:
                    log_mel = clip_log_mel(wave, self.feature_extractor)
                except NonFiniteClipError as err:
                    value = row[self.column]
                    path = value.get("path") if isinstance(value, dict) else None
                    name = f"rank {self.rank}, stream position {position}" + (f", {path!r}" if path else "")
                    raise NonFiniteClipError(f"clip ({name}): {err}; remove or repair it.") from None
                values, mask = crop_or_pad(log_mel, self.crop_frames, rng)
                noise = torch.from_numpy(rng.random(self.num_patches).astype(np.float32))
                yield {
                    "input_values": values,
                    "attention_mask": mask,
                    "noise": noise,
                    "clip_id": f"rank{self.rank}:{position}",
                }
            if seen_in_epoch == 0:
                raise PretrainingError("the streaming dataset yielded no examples for this process.")
            epoch += 1


def collate_crops(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack cropped examples: input_values (B, frames, mels), attention_mask (B, frames), noise (B, patches),
    clip_ids (list of str)."""
    return {
        "input_values": torch.stack([e["input_values"] for e in examples]),
        "attention_mask": torch.stack([e["attention_mask"] for e in examples]),
        "noise": torch.stack([e["noise"] for e in examples]),
        "clip_ids": [e["clip_id"] for e in examples],
    }


def split_indices(num_clips: int, validation_fraction: float, seed: int, max_validation: int | None = None):
    """Deterministic (train, validation) split of range(num_clips)."""
    if not 0.0 <= validation_fraction < 1.0:
        raise PretrainingError(f"--validation_fraction={validation_fraction} is invalid; expected a number in [0, 1).")
    order = np.random.default_rng([int(seed), 0]).permutation(num_clips).tolist()
    num_val = int(round(num_clips * validation_fraction)) if validation_fraction > 0 else 0
    if validation_fraction > 0:
        num_val = max(1, num_val)
    if max_validation is not None:
        num_val = min(num_val, max_validation)
    if num_val >= num_clips:
        raise PretrainingError(f"--validation_fraction={validation_fraction} leaves no training clips ({num_clips}).")
    return sorted(order[num_val:]), sorted(order[:num_val])


def epoch_order(num_examples: int, epoch: int, seed: int, rank: int, world_size: int) -> list[int]:
    """This rank's share of the epoch's shuffled order: positions `rank::world_size` of one permutation drawn from
    (seed, epoch). The permutation is cut to a multiple of `world_size` so every rank gets as many examples."""
    order = np.random.default_rng([int(seed), int(epoch) + 1, 7]).permutation(num_examples).tolist()
    usable = (num_examples // world_size) * world_size
    return order[:usable][rank::world_size]


# ------------------------------------------------------------------------------------------------- optimisation


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on parameters with >= 2 dimensions, none on biases and other 1-D parameters."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


OPTIMIZERS = ("adamw_torch_fused", "adamw_torch")


def adamw_kwargs(optim: str, device: torch.device) -> dict[str, Any]:
    """torch.optim.AdamW's implementation keyword for examples/pretrain.py's `--optim` (transformers' names):
    `fused=True` where torch has the fused kernel for the device (CPU and CUDA), else torch's default (the for-loop
    on CPU, foreach on CUDA)."""
    if optim not in OPTIMIZERS:
        raise ValueError(f"optim={optim!r} is not known; expected one of {list(OPTIMIZERS)}.")
    if optim == "adamw_torch_fused" and torch.device(device).type in ("cpu", "cuda"):
        return {"fused": True}
    return {}


def warmup_cosine_lambda(warmup_steps: int, total_steps: int):
    """Multiplier of the base lr for update `step` (0-based): linear warm-up over `warmup_steps` (the first update
    already gets lr / warmup_steps), then a half cosine from 1 to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def warmup_cosine_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """`LambdaLR` with `warmup_cosine_lambda`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine_lambda(warmup_steps, total_steps))


def load_scheduler_state(scheduler, state: TrainerState, checkpoint: str | os.PathLike) -> None:
    """Restore the scheduler from `state.scheduler`, or, for a checkpoint of an older version, from the
    `custom_checkpoint_0.pkl` accelerate wrote, read with `torch.load(weights_only=True)` (plain numbers only)."""
    if state.scheduler is not None:
        scheduler.load_state_dict(state.scheduler)
        return
    legacy = Path(checkpoint) / "custom_checkpoint_0.pkl"
    if not legacy.is_file():
        raise PretrainingError(f"checkpoint {str(checkpoint)!r} records no learning-rate scheduler state.")
    try:
        scheduler.load_state_dict(torch.load(legacy, map_location="cpu", weights_only=True))
    except Exception as err:  # noqa: BLE001 - anything but plain numbers is refused
        raise PretrainingError(f"{str(legacy)!r} is not a plain scheduler state ({type(err).__name__}).") from None


# ------------------------------------------------------------------------------------------------- checkpoints


def format_duration(seconds: float) -> str:
    """`h:mm:ss` (with days when longer: `3d 04:05:06`); `?` for an unknown (NaN / infinite) duration."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    clock = f"{hours:d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}d {hours:02d}:{rest // 60:02d}:{rest % 60:02d}" if days else clock


class ThroughputMeter:
    """Training throughput between two reads of the loss (`flush`), with validation and checkpoint writing left out
    (`paused`). The times are host wall clock; on a GPU they are exact when `flush` is called after the host has
    waited for the device (reading the loss back does that)."""

    def __init__(self, num_processes: int = 1):
        self.num_processes = num_processes
        self._start = time.perf_counter()
        self._clips = self._steps = 0
        self.total_seconds = 0.0
        self.total_clips = self.total_steps = 0

    def step(self, clips: int) -> None:
        """One optimizer step over `clips` clips of this process."""
        self._clips += clips
        self._steps += 1

    def flush(self, steps_left: int) -> tuple[float, float]:
        """(clips per second of all processes, estimated seconds to finish `steps_left` steps) over the steps since
        the last flush; the counters restart."""
        now = time.perf_counter()
        elapsed = max(now - self._start, 1e-9)
        rate = self._clips * self.num_processes / elapsed
        eta = steps_left * elapsed / self._steps if self._steps else math.nan
        self.total_seconds += elapsed
        self.total_clips += self._clips * self.num_processes
        self.total_steps += self._steps
        self._start, self._clips, self._steps = now, 0, 0
        return rate, eta

    @contextmanager
    def paused(self):
        """Leave the time inside the `with` out of the throughput (validation, checkpoints)."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self._start += time.perf_counter() - begin

    def summary(self) -> str:
        """One line: steps, training time and mean clips/s over every flushed step."""
        rate = self.total_clips / self.total_seconds if self.total_seconds else math.nan
        return (
            f"trained {self.total_steps} steps in {format_duration(self.total_seconds)} "
            f"({rate:.1f} clips/s; validation and checkpoints not counted)"
        )


@dataclass
class TrainerState:
    """What a checkpoint records beyond `accelerator.save_state`: the data position and the curves."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of `epoch` already consumed on every rank
    examples_seen: int = 0  # per rank, for streaming data
    history: list[dict[str, float]] | None = None
    last_checkpoint: str | None = None
    schedule: dict[str, Any] | None = None  # the schedule-defining settings of the run (`check_schedule`)
    # The LR scheduler's state_dict, as JSON: accelerate would pickle a registered scheduler and read it back with
    # `torch.load(weights_only=False)`, which runs code from a checkpoint folder someone else made.
    scheduler: dict[str, Any] | None = None

    def to_json(self) -> str:
        data = dict(self.__dict__)
        data["history"] = self.history or []
        return json.dumps(data, indent=1)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainerState:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{str(path)!r} is not a JSON object")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def check_schedule(
    current: dict[str, Any], recorded: dict[str, Any] | None, checkpoint: str | os.PathLike, extend: bool = False
) -> str | None:
    """Refuse (`PretrainingError`) to resume a run whose schedule-defining settings differ from the checkpoint's.

    `current` and `recorded` map a flag's name (without dashes; also `num_processes`, `num_training_clips`) to its
    value; `current` may also hold `"<name>:from"`, a note on where a derived value came from (`"from
    --num_train_epochs 4"`), shown in the message. The checkpoint's optimizer and scheduler state were made under the
    recorded settings: continuing under others would silently mix two schedules (or ignore the new values, which
    loading the optimizer state overwrites). Returns a warning (and checks nothing) for a checkpoint without a record
    (written by an older version), else None.

    With `extend` (`--extend_schedule`), `max_train_steps` may be raised above the recorded value (never lowered),
    and a warm-up derived from `--warmup_ratio` is not compared (the caller keeps the recorded warm-up steps), nor is
    it on a later resume of a schedule extended before (`recorded["extended_from"]`); every other setting must
    still match."""
    if recorded is None:
        if extend:
            raise PretrainingError(
                f"--extend_schedule: checkpoint {str(checkpoint)!r} records no schedule settings (an older version "
                "wrote it), so its schedule cannot be extended."
            )
        return (
            f"checkpoint {str(checkpoint)!r} records no schedule settings (an older version wrote it): cannot check "
            "that --max_train_steps, --learning_rate, ... match it"
        )
    extended = extend or bool(recorded.get("extended_from"))
    for key, value in current.items():
        if key.endswith(":from") or key == "extended_from" or key not in recorded:
            continue
        old = recorded[key]
        note = current.get(f"{key}:from")
        shown = f"{value} ({note})" if note else f"{value}"
        if extend and key == "max_train_steps" and isinstance(old, int):
            if value < old:
                raise PretrainingError(
                    f"cannot resume from {str(checkpoint)!r}: --extend_schedule only raises the number of steps, and "
                    f"--max_train_steps {shown} is below the checkpoint's {old}."
                )
            continue
        if extended and key == "warmup_steps" and note is not None:
            continue  # derived from --warmup_ratio: an extended schedule keeps the recorded warm-up
        if value == old:
            continue
        if key == "num_processes":
            what = f"the number of processes {shown} differs from the checkpoint's {old}"
        elif key == "num_training_clips":
            what = f"the training data has {shown} clips, the checkpoint's run had {old}"
        else:
            what = f"--{key} {shown} differs from the checkpoint's {old}"
        hint = ""
        if key == "max_train_steps" and isinstance(old, int) and isinstance(value, int) and value > old:
            hint = " To continue the run to more steps on purpose, add --extend_schedule."
        raise PretrainingError(
            f"cannot resume from {str(checkpoint)!r}: {what}; its optimizer and schedule were made for the recorded "
            "settings. Resume with the checkpoint's values, or start a new run (another --output_dir, or "
            f"--overwrite_output_dir).{hint}"
        )
    return None


def checkpoint_step(path: Path) -> int | None:
    name = path.name
    if not name.startswith(CHECKPOINT_PREFIX):
        return None
    try:
        return int(name[len(CHECKPOINT_PREFIX) :])
    except ValueError:
        return None


def list_checkpoints(checkpoints_dir: str | os.PathLike) -> list[Path]:
    """Finished-or-not `checkpoint-<step>` folders, oldest first (temporary folders are ignored)."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    found = [(checkpoint_step(p), p) for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return [p for _, p in sorted(found)]


def file_sha256(path: Path, sync: bool = False) -> str:
    """Hex sha256 of a file's bytes (with `sync`, also flushed to disk)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        if sync:
            os.fsync(f.fileno())
    return digest.hexdigest()


def _checkpoint_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER)


def verify_checkpoint(path: Path) -> tuple[str | None, str | None]:
    """`(damage, note)` of a checkpoint folder: `damage` is a one-line reason (naming the file) why it must not be
    loaded, or None; `note` a warning for an intact checkpoint that could not be fully verified (one written by an
    older version, whose marker records no hashes)."""
    path = Path(path)
    marker = path / COMPLETE_MARKER
    if not marker.is_file():
        return "it is incomplete (no completion marker)", None
    if not (path / TRAINER_STATE_FILE).is_file():
        return f"it has no {TRAINER_STATE_FILE}", None
    try:
        text = marker.read_text()
    except (OSError, UnicodeDecodeError) as err:
        return f"its {COMPLETE_MARKER} is damaged (unreadable: {_first_line(err)})", None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        record = None
    if isinstance(record, int) or (record is None and text.strip().isdigit()):  # written before hashes existed
        return None, f"checkpoint {str(path)!r} records no file hashes (an older version wrote it): not verified"
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), dict):
        return f"its {COMPLETE_MARKER} is damaged (not the JSON record of the file hashes)", None
    for name, expected in sorted(record["sha256"].items()):
        file = path / name
        if not file.is_file():
            return f"its file {name!r} is missing", None
        if file_sha256(file) != expected:
            return f"its file {name!r} does not match the hash recorded when it was written (damaged)", None
    return None, None


def temporary_checkpoint_dir(checkpoints_dir: str | os.PathLike, step: int) -> Path:
    return Path(checkpoints_dir) / f".tmp-{CHECKPOINT_PREFIX}{step}"


def finalize_checkpoint(tmp_dir: Path, step: int, total_limit: int | None = None) -> Path:
    """Mark a fully written temporary checkpoint complete and move it into place in one rename, then keep only the
    newest `total_limit` checkpoints. Main process only.

    The marker, written last (temp file + rename), records the sha256 of every file of the checkpoint, so
    `verify_checkpoint` finds a file damaged afterwards; the files are flushed to disk before it."""
    hashes = {p.relative_to(tmp_dir).as_posix(): file_sha256(p, sync=True) for p in _checkpoint_files(tmp_dir)}
    marker_tmp = tmp_dir / f".{COMPLETE_MARKER}.tmp"
    with open(marker_tmp, "w") as f:
        f.write(json.dumps({"step": int(step), "format": 2, "sha256": hashes}, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(marker_tmp, tmp_dir / COMPLETE_MARKER)
    final = tmp_dir.parent / f"{CHECKPOINT_PREFIX}{step}"
    if final.exists():  # a stale folder of the same step (an earlier crashed run): move it aside first
        stale = tmp_dir.parent / f".stale-{final.name}"
        shutil.rmtree(stale, ignore_errors=True)
        os.replace(final, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.replace(tmp_dir, final)
    if total_limit is not None and total_limit > 0:
        for old in list_checkpoints(tmp_dir.parent)[:-total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def resolve_checkpoint(output_dir: str | os.PathLike, spec: str) -> list[Path]:
    """Candidates for `--resume_from_checkpoint`, best first: a path gives itself; `latest` gives every checkpoint
    under `output_dir/checkpoints`, newest first (the caller falls back down the list when one fails to load), or none
    yet (a restarted job then starts from scratch)."""
    if spec != "latest":
        path = Path(spec)
        if not path.is_dir():
            raise PretrainingError(
                f"--resume_from_checkpoint {spec!r} does not exist or is not a directory; expected a checkpoint "
                "folder or 'latest'."
            )
        return [path]
    return list(reversed(list_checkpoints(Path(output_dir) / "checkpoints")))


def truncate_log(path: str | os.PathLike, step: int) -> int:
    """Keep the lines of a JSON-lines log whose `step` is <= `step` (a resumed run writes the later ones again),
    atomically (temp file + rename). Lines that are not JSON objects with a step (a torn last line) are dropped.
    Returns the number of lines dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line + "\n")
        else:
            dropped += 1
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return dropped


# ------------------------------------------------------------------------------------------------- output folders

LOCK_FILE = ".hf_axlstm.lock"
# Files of ours that do not make a folder "non-empty" for the overwrite rule (a killed run's unlocked lock file).
IGNORED_IN_OUTPUT_DIR = (LOCK_FILE,)


def output_dir_entries(folder: str | os.PathLike) -> list[str]:
    """Sorted names in `folder` (none when it does not exist), without the run lock file."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name not in IGNORED_IN_OUTPUT_DIR)


class OutputDirLock:
    """An advisory lock on an output folder (`fcntl.flock` on `<folder>/.hf_axlstm.lock`), so that two runs never
    write one folder at once. The kernel releases it when the holding process ends, however it ends (`kill -9`
    included), so a killed run never leaves it held (its file may stay behind, unlocked; the next run takes it). The
    holder writes its process id into the file, which a refused run names. `release` deletes the file (while still
    holding the lock; `acquire` checks that the file it locked is still the one at the path, so a run never holds a
    deleted file's lock) and the folder too when `acquire` created it and nothing else was written there.

    `acquire` creates the folder (and its parents) if needed; it raises `PretrainingError` naming the folder when
    another process holds the lock, and `OSError` when the folder cannot be created or written."""

    def __init__(self, folder: str | os.PathLike, flag: str = "--output_dir"):
        self.folder = Path(folder)
        self.flag = flag
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        self._created_folder = False

    def acquire(self) -> OutputDirLock:
        import fcntl

        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            self._created_folder = True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
                finally:
                    os.close(fd)
                raise PretrainingError(
                    f"{self.flag} {str(self.folder)!r} is in use by another run (process {holder} holds "
                    f"{str(self.path)!r}); wait for it to end, or choose another folder."
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder before us deleted the file as we opened it: lock the new one
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)  # closing releases the lock
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # still holding the lock: a run that opened the old file re-opens the path
        except OSError:
            pass
        os.close(self._fd)  # releases the flock
        self._fd = None
        if self._created_folder:
            try:
                self.folder.rmdir()  # only when empty: a run refused before writing leaves no folder behind
            except OSError:
                pass

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> OutputDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST}
# How the write failures of torch.save (a RuntimeError) and safetensors (SafetensorError) read.
_WRITE_FAILURE_TEXT = ("file write failed", "No space left", "Read-only file system", "Permission denied",
                       "Disk quota exceeded", "Not a directory", "IoError")  # fmt: skip


def describe_os_error(err: OSError) -> str:
    """One line for an `OSError`: what failed, the errno's name and the file(s) it names."""
    name = errno.errorcode.get(err.errno, "") if err.errno is not None else ""
    text = err.strerror or str(err) or type(err).__name__
    what = f"{text} ({name})" if name else text
    if err.filename is not None:
        what += f": {str(err.filename)!r}"
        if err.filename2 is not None:
            what += f" -> {str(err.filename2)!r}"
    return what


def is_write_failure(err: BaseException) -> bool:
    """Whether `err` is a failed write (full disk, read-only or forbidden folder), including the forms torch.save
    and safetensors raise them in."""
    if isinstance(err, OSError):
        return err.errno in WRITE_ERRNOS
    return any(text in str(err) for text in _WRITE_FAILURE_TEXT)


def try_lock_output_dir(output_dir: str | os.PathLike) -> tuple[OutputDirLock | None, str | None]:
    """Take `OutputDirLock` on `output_dir` (the scripts' main process): `(lock, None)`, or `(None, error line)` when
    the folder is in use or cannot be created or written."""
    try:
        return OutputDirLock(output_dir).acquire(), None
    except PretrainingError as err:
        return None, str(err)
    except OSError as err:
        return None, f"cannot create or write --output_dir {str(output_dir)!r}: {describe_os_error(err)}."


def os_error_line(err: BaseException, what: str) -> str | None:
    """The one error line a script prints for an exception it did not expect: a write failure (a read-only or full
    folder, a file in the way, also inside torch.save) as `cannot write <what>: <reason>`, another `OSError` by its
    errno and path; None for anything else (a bug: let it raise)."""
    if is_write_failure(err):
        reason = describe_os_error(err) if isinstance(err, OSError) else _first_line(err)
        return f"cannot write {what}: {reason}"
    if isinstance(err, OSError):
        return describe_os_error(err)
    return None


def write_failure_message(err: BaseException, what: str) -> str:
    """`cannot write <what>: <reason>` on one line, for `PretrainingError`."""
    reason = describe_os_error(err) if isinstance(err, OSError) else _first_line(err)
    return f"cannot write {what}: {reason}; free some space or choose a writable folder."


def load_dataset_split(name: str, config_name: str | None, split: str | None, streaming: bool = False):
    """The `split` of a `datasets` dataset given as `--dataset_name`: a folder written by `save_to_disk` (a
    `DatasetDict`, whose split is picked; or a single `Dataset`, which is the split: a `split` that names another
    split is refused instead of ignored), another local folder (`hf_axlstm.data.load_audio_dataset`: an
    `audiofolder` layout or split tables, decoded without torchcodec) or a Hub id (`load_dataset`). `split` None
    means the default, "train". Errors: `PretrainingError` naming the flag."""
    import datasets

    path = Path(name)
    wanted = split or "train"
    try:
        if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            dataset = datasets.load_from_disk(str(path))
            if isinstance(dataset, datasets.DatasetDict):
                if wanted not in dataset:
                    raise PretrainingError(
                        f"--train_split {wanted!r} is not a split of --dataset_name {name!r}; its splits are "
                        f"{sorted(dataset)}."
                    )
                dataset = dataset[wanted]
            elif split is not None and dataset.split is not None and str(dataset.split) != split:
                raise PretrainingError(
                    f"--train_split {split!r}: --dataset_name {name!r} is a single saved Dataset (the split "
                    f"{str(dataset.split)!r}), not a DatasetDict; leave --train_split out, or give the folder of the "
                    "DatasetDict that holds the split."
                )
            elif split is not None and dataset.split is None:
                raise PretrainingError(
                    f"--train_split {split!r}: --dataset_name {name!r} is a single saved Dataset without splits; "
                    "leave --train_split out, or give the folder of a DatasetDict."
                )
            if streaming:
                dataset = dataset.to_iterable_dataset(num_shards=max(1, min(64, len(dataset))))
            return dataset
        if path.is_dir():
            # A local audiofolder or folder of split tables: the package's loader (audio kept undecoded, so no
            # torchcodec is needed, where datasets' own audiofolder builder decodes with it).
            from .data import load_audio_dataset

            splits = load_audio_dataset(str(path), config_name)
            if wanted not in splits:
                raise PretrainingError(
                    f"--train_split {wanted!r} is not a split of --dataset_name {name!r}; its splits are "
                    f"{sorted(splits)}."
                )
            dataset = splits[wanted]
            if streaming:
                dataset = dataset.to_iterable_dataset(num_shards=max(1, min(64, len(dataset))))
            return dataset
        return datasets.load_dataset(name, config_name, split=wanted, streaming=streaming)
    except PretrainingError:
        raise
    except (
        FileNotFoundError,
        ValueError,  # hf_axlstm.data.DatasetInputError too
        datasets.exceptions.DatasetNotFoundError,
        datasets.exceptions.DatasetGenerationError,
    ) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PretrainingError(f"cannot load --dataset_name {name!r}: {first}") from None


# ------------------------------------------------------------------------------------------------- Trainer checkpoints

TRAINER_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _check_torch_zip(path: Path) -> str | None:
    """Why a file written by `torch.save` cannot be read (a zip archive: checked to its last byte), or None."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        return f"its file {path.name!r} is truncated or damaged ({_first_line(err)})"
    if bad is not None:
        return f"its file {path.name!r} is damaged (entry {bad!r} fails its CRC check)"
    return None


def _check_safetensors(path: Path) -> str | None:
    """Why a `.safetensors` file cannot be read (header, and the data extent the header promises), or None."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"its file {path.name!r} is truncated (no header)"
            header_len = int.from_bytes(head, "little")
            if header_len > size - 8:
                return f"its file {path.name!r} is truncated (the header runs past the end of the file)"
            header = json.loads(f.read(header_len))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"its file {path.name!r} is damaged ({_first_line(err)})"
    if not isinstance(header, dict):
        return f"its file {path.name!r} is damaged (the header is not a JSON object)"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if 8 + header_len + max(ends, default=0) > size:
        return f"its file {path.name!r} is truncated (its tensors run past the end of the file)"
    return None


def verify_trainer_checkpoint(path: str | os.PathLike) -> str | None:
    """Why a `transformers.Trainer` checkpoint folder (`checkpoint-<step>`) cannot be resumed, one line naming the
    file, or None when it is complete. The Trainer writes into the folder in place (model, optimizer, scheduler, RNG
    states, then `trainer_state.json` last), so a kill or a full disk during the write leaves a folder that
    `get_last_checkpoint` still picks. Checked: `trainer_state.json` is a JSON object with `global_step`; the model
    weights, `optimizer.pt` and `scheduler.pt` are present and readable to their last byte (safetensors header and
    extent, torch zip archives with their CRCs); RNG states and `config.json` are readable where present."""
    path = Path(path)
    state = path / "trainer_state.json"
    if not state.is_file():
        return "it has no trainer_state.json (the Trainer writes it last: the checkpoint was not finished)"
    try:
        record = json.loads(state.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"its trainer_state.json is truncated or damaged ({_first_line(err)})"
    if not isinstance(record, dict) or not isinstance(record.get("global_step"), int):
        return "its trainer_state.json is damaged (no global_step)"
    config = path / "config.json"
    if config.is_file():
        try:
            json.loads(config.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            return f"its config.json is truncated or damaged ({_first_line(err)})"
    weights = [path / name for name in TRAINER_WEIGHTS if (path / name).is_file()]
    if not weights:
        return f"it has no model weights ({', '.join(TRAINER_WEIGHTS)})"
    for file in weights:
        if file.name == "model.safetensors.index.json":
            try:
                shards = sorted(set(json.loads(file.read_text())["weight_map"].values()))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
                return f"its model.safetensors.index.json is damaged ({_first_line(err)})"
            for shard in shards:
                if not (path / shard).is_file():
                    return f"its weight shard {shard!r} is missing"
                problem = _check_safetensors(path / shard)
                if problem:
                    return problem
        elif file.suffix == ".safetensors":
            problem = _check_safetensors(file)
            if problem:
                return problem
        else:
            problem = _check_torch_zip(file)
            if problem:
                return problem
    for name in ("optimizer.pt", "scheduler.pt"):
        if not (path / name).is_file():
            return f"it has no {name}"
    for file in [path / "optimizer.pt", path / "scheduler.pt", *sorted(path.glob("rng_state*.pth"))]:
        problem = _check_torch_zip(file)
        if problem:
            return problem
    return None


def trainer_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The Trainer's `checkpoint-<step>` folders in `output_dir`, newest first."""
    return list_checkpoints(output_dir)[::-1]


# ------------------------------------------------------------------------------------------------- plots


def plot_training_curve(history: list[dict[str, float]], path: str | os.PathLike) -> None:
    """Training loss (and validation loss where recorded) against the optimizer step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    if train:
        ax.plot(*zip(*train), label="train loss", lw=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss (fixed masks)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("reconstruction MSE")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def reconstruction_examples(model, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Original, masked (masked patches blank) and reconstructed log-mels of a batch, each (B, frames, mels)."""
    output = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"], noise=batch["noise"])
    original = batch["input_values"].float()
    patches = model.patchify(original)  # (B, P, patch_dim)
    masked = patches.masked_fill(output.mask.bool().unsqueeze(-1), float("nan"))
    frames = original.shape[1]
    return {
        "original": original.cpu().numpy(),
        "masked": model.unpatchify(masked, frames).cpu().numpy(),
        "reconstructed": model.unpatchify(output.logits.float(), frames).cpu().numpy(),
    }


def reconstruction_figure(
    examples: dict[str, np.ndarray], max_clips: int = 4, step: int | None = None, hop_seconds: float = 0.01
):
    """A matplotlib figure: a grid of original / masked / reconstructed log-mels (one column per held-out clip,
    masked patches blank), time in seconds on x, mel bin on y, one shared colour scale with its bar, titled with the
    `step`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ("original", "masked", "reconstructed")
    clips = min(max_clips, examples["original"].shape[0])
    frames, mels = examples["original"].shape[1:3]
    fig, axes = plt.subplots(3, clips, figsize=(3 * clips + 1.2, 6.6), squeeze=False, sharex=True, sharey=True)
    lo, hi = np.nanpercentile(examples["original"][:clips], [1, 99])
    extent = (0.0, frames * hop_seconds, 0, mels)
    image = None
    for r, name in enumerate(rows):
        for c in range(clips):
            ax = axes[r, c]
            image = ax.imshow(
                examples[name][c].T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma", extent=extent
            )
            if r == 0:
                ax.set_title(f"clip {c + 1}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{name}\nmel bin")
            if r == len(rows) - 1:
                ax.set_xlabel("time (s)")
    title = "Masked-spectrogram reconstruction of held-out clips (fixed masks)"
    fig.suptitle(title if step is None else f"{title}, step {step}")
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    bar = fig.add_axes((0.915, 0.1, 0.015, 0.78))
    fig.colorbar(image, cax=bar, label="normalised log-mel")
    return fig


def plot_reconstructions(
    examples: dict[str, np.ndarray], path: str | os.PathLike, max_clips: int = 4, step: int | None = None
) -> None:
    """`reconstruction_figure` saved as a PNG."""
    import matplotlib.pyplot as plt

    fig = reconstruction_figure(examples, max_clips=max_clips, step=step)
    fig.savefig(path, dpi=80)
    plt.close(fig)


__all__ = [
    "OPTIMIZERS",
    "adamw_kwargs",
    "ThroughputMeter",
    "format_duration",
    "AudioFileSource",
    "COMPLETE_MARKER",
    "ClipSource",
    "FEATURES_METADATA_FILE",
    "FeatureShardSource",
    "HFAudioSource",
    "NonFiniteClipError",
    "PretrainingCrops",
    "PretrainingError",
    "StreamingCrops",
    "TARGET_SAMPLING_RATE",
    "TrainerState",
    "check_feature_metadata",
    "check_finite_log_mel",
    "check_parquet_shard",
    "check_schedule",
    "clip_generator",
    "clip_log_mel",
    "collate_crops",
    "crop_or_pad",
    "epoch_order",
    "feature_metadata",
    "file_sha256",
    "finalize_checkpoint",
    "list_checkpoints",
    "try_lock_output_dir",
    "load_feature_shards",
    "num_patches",
    "parameter_groups",
    "plot_reconstructions",
    "plot_training_curve",
    "reconstruction_examples",
    "reconstruction_figure",
    "resolve_checkpoint",
    "split_indices",
    "temporary_checkpoint_dir",
    "truncate_log",
    "undecoded_audio_column",
    "verify_checkpoint",
    "verify_trainer_checkpoint",
    "trainer_checkpoints",
    "os_error_line",
    "OutputDirLock",
    "LOCK_FILE",
    "output_dir_entries",
    "describe_os_error",
    "is_write_failure",
    "write_failure_message",
    "load_dataset_split",
    "warmup_cosine_lambda",
    "warmup_cosine_schedule",
]

#!/usr/bin/env python
# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""A small labelled corpus of synthetic sounds, made locally (no downloads): five classes with random parameters.

    python examples/synthetic_audio.py --output_dir synth --clips_per_class 40

Classes: `tone` (a steady sinusoid with a slow tremolo), `chirp` (a sinusoid sweeping up or down), `noise` (a
band-limited noise texture), `harmonic` (a harmonic stack with decaying partials, a "note"), `clicks` (a train of
short clicks at a random rate). Writes `<output_dir>/<split>/<label>/<label>_<n>.<ext>` and `metadata.csv` with
columns `file_name,label,split,sampling_rate,channels`. With `--mixed_formats` a share of the clips is written as
stereo FLAC at 22.05 kHz or OGG/Vorbis at 44.1 kHz, to exercise decoding, down-mixing and resampling.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

CLASSES = ("tone", "chirp", "noise", "harmonic", "clicks")


def _envelope(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    attack = max(1, int(sr * rng.uniform(0.005, 0.05)))
    release = max(1, int(sr * rng.uniform(0.02, 0.2)))
    env = np.ones(n)
    env[:attack] = np.linspace(0, 1, attack)
    env[-release:] = np.minimum(env[-release:], np.linspace(1, 0, release))
    return env


def synthesize(label: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One mono clip of class `label`, float32 in [-1, 1]."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    if label == "tone":
        f = rng.uniform(200, 3000)
        trem = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(1, 6) * t)
        x = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * trem
    elif label == "chirp":
        f0, f1 = rng.uniform(150, 600), rng.uniform(1500, 6000)
        if rng.random() < 0.5:
            f0, f1 = f1, f0
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
        x = np.sin(phase)
    elif label == "noise":
        white = rng.standard_normal(n)
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1 / sr)
        centre, width = rng.uniform(300, 5000), rng.uniform(100, 1500)
        spectrum *= np.exp(-0.5 * ((freqs - centre) / width) ** 2)
        x = np.fft.irfft(spectrum, n)
        x *= 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)
    elif label == "harmonic":
        f = rng.uniform(80, 500)
        decay = rng.uniform(0.5, 2.5)
        x = sum(
            (rng.uniform(0.3, 1.0) / k) * np.sin(2 * np.pi * k * f * t + rng.uniform(0, 6))
            for k in range(1, 9)
            if k * f < sr / 2
        )
        x = x * np.exp(-t / decay)
    elif label == "clicks":
        rate = rng.uniform(3, 20)
        x = np.zeros(n)
        click_len = int(0.003 * sr)
        shape = np.hanning(click_len) * rng.standard_normal(click_len)
        for start in (np.arange(0, seconds, 1 / rate) * sr).astype(int):
            jitter = int(rng.integers(0, max(1, int(0.01 * sr))))
            s = min(n - click_len, start + jitter)
            x[s : s + click_len] += shape
    else:
        raise ValueError(f"unknown class {label!r}; expected one of {CLASSES}.")
    x = x * _envelope(n, sr, rng) + rng.normal(0, 0.003, n)
    x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.3, 0.9)
    return x.astype(np.float32)


def make_corpus(
    output_dir: str | Path,
    clips_per_class: int = 40,
    min_seconds: float = 1.5,
    max_seconds: float = 3.0,
    test_fraction: float = 0.3,
    mixed_formats: bool = False,
    classes: tuple[str, ...] = CLASSES,
    seed: int = 0,
) -> Path:
    """Write the corpus and return the path of `metadata.csv`."""
    import soundfile as sf

    out = Path(output_dir)
    rng = np.random.default_rng(seed)
    rows = []
    for label in classes:
        for i in range(clips_per_class):
            split = "test" if i < round(clips_per_class * test_fraction) else "train"
            seconds = rng.uniform(min_seconds, max_seconds)
            sr, channels, ext, subtype = 16000, 1, "wav", "PCM_16"
            if mixed_formats and i % 4 == 1:
                sr, channels, ext, subtype = 22050, 2, "flac", "PCM_16"
            elif mixed_formats and i % 4 == 3:
                sr, channels, ext, subtype = 44100, 1, "ogg", "VORBIS"
            x = synthesize(label, seconds, sr, rng)
            if channels == 2:
                x = np.stack([x, 0.8 * x], axis=1)
            rel = Path(split) / label / f"{label}_{i:04d}.{ext}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(out / rel, x, sr, subtype=subtype)
            rows.append(
                {
                    "file_name": rel.as_posix(),
                    "label": label,
                    "split": split,
                    "sampling_rate": sr,
                    "channels": channels,
                }
            )
    meta = out / "metadata.csv"
    with open(meta, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return meta


def read_metadata(csv_path: str | Path) -> list[dict[str, str]]:
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--clips_per_class", type=int, default=40)
    parser.add_argument("--min_seconds", type=float, default=1.5)
    parser.add_argument("--max_seconds", type=float, default=3.0)
    parser.add_argument("--test_fraction", type=float, default=0.3)
    parser.add_argument("--mixed_formats", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    meta = make_corpus(
        args.output_dir,
        args.clips_per_class,
        args.min_seconds,
        args.max_seconds,
        args.test_fraction,
        args.mixed_formats,
        seed=args.seed,
    )
    print(f"wrote {meta}")


if __name__ == "__main__":
    main()

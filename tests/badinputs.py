# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""The pieces of the bad-input table (`tests/test_bad_inputs.py`): case types, the shared context, the runners.

Every case is one bad input or fault given to one public entry, with what must come out:
- `Api(id, call, exc, match)`: `call(ctx, tmp_path)` must raise `exc` with a message matching the regex `match`.
- `Cli(id, script, argv, match, code=2)`: the script's in-process entry (`cli(argv)` / `main(argv)`) with
  `argv(ctx, tmp_path)` must exit with `code`, print exactly one `error:` line that matches `match` on stderr, and let
  no exception escape (what a user would see as a traceback).

The cases themselves live in `tests/cases_*.py`, one module per area, each exporting `CASES`.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
FIXTURES = REPO / "tests" / "fixtures"
OFFICIAL_PTH = FIXTURES / "official_parity" / "official_checkpoint.pth"

# Small model flags for the training scripts (fast: 2 blocks of width 32).
TINY_FLAGS = ["--hidden_size", "32", "--num_hidden_layers", "2", "--no_progress_bar"]


@dataclass(frozen=True)
class Api:
    id: str
    call: Callable[[Any, Path], Any]
    exc: type[BaseException] | tuple[type[BaseException], ...]
    match: str


@dataclass(frozen=True)
class Cli:
    id: str
    script: str  # "pretrain", "finetune", "prepare_features", "evaluate_embeddings", "convert_official", "export_onnx"
    argv: Callable[[Any, Path], list[str]]
    match: str
    code: int = 2


@dataclass
class Context:
    """Things many cases need, built once per session (see `tests/test_bad_inputs.py::ctx`)."""

    root: Path
    classifier_dir: Path  # save_pretrained AxLSTMForAudioClassification (tiny, 3 labels) + feature extractor
    pretrain_dir: Path  # save_pretrained AxLSTMForPreTraining (tiny) + feature extractor
    wav_dir: Path  # a few short WAV clips of the synthetic corpus (examples/synthetic_audio.py), with metadata.csv
    official_pth: Path = OFFICIAL_PTH
    cache: dict = field(default_factory=dict)

    def model(self, kind: str = "base"):
        """An in-memory tiny model in eval mode: `base` (AxLSTMModel), `cls`, `pretrain`; built once."""
        if kind not in self.cache:
            import torch

            from hf_axlstm import AxLSTMConfig, AxLSTMForAudioClassification, AxLSTMForPreTraining, AxLSTMModel

            torch.manual_seed(0)
            config = AxLSTMConfig(hidden_size=32, num_hidden_layers=2, id2label={0: "a", 1: "b", 2: "c"})
            cls = {"base": AxLSTMModel, "cls": AxLSTMForAudioClassification, "pretrain": AxLSTMForPreTraining}[kind]
            self.cache[kind] = cls(config).eval()
        return self.cache[kind]


def load_example(name: str):
    """Import `examples/<name>.py` as a module (once)."""
    key = f"_badinputs_example_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def cli_entry(script: str) -> Callable[[list[str]], int]:
    if script == "convert_official":
        from hf_axlstm import convert_official

        return convert_official.main
    if script == "export_onnx":
        from hf_axlstm import export_onnx

        return export_onnx.main
    module = load_example(script)
    return module.cli if hasattr(module, "cli") else module.main


def run_cli(script: str, argv: list[str]) -> int:
    """The exit code of the script's in-process entry (argparse's SystemExit included)."""
    try:
        code = cli_entry(script)(argv)
    except SystemExit as exit_:
        code = exit_.code
    return 0 if code is None else int(code) if isinstance(code, int) else 1


def check_error_output(stderr: str, match: str) -> None:
    error_lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, f"expected exactly one 'error:' line on stderr, got:\n{stderr}"
    assert re.search(match, error_lines[0]), f"{match!r} not in {error_lines[0]!r}"
    assert "Traceback" not in stderr, stderr

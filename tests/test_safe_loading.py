# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""No pickled code from a checkpoint ever runs: payloads in every place a pickle can hide in a `.pth` (both torch
formats), through every entry that accepts a `.pth`. Each crafted file is first shown to be live: a plain
`torch.load(weights_only=False)` (or `pickle.load`) of it runs the payload."""

from __future__ import annotations

import argparse
import io
import pickle
import pickletools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hf_axlstm import hear
from hf_axlstm.convert_official import convert_checkpoint, extract_state_dict, load_official_checkpoint
from hf_axlstm.convert_official import main as convert_main

from .badinputs import OFFICIAL_PTH, load_example

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch's legacy-format magic number
PROTOCOL_VERSION = 1001


class Payload:
    """Unpickles to `value` after writing 'pwned' into `marker`, when the unpickler lets it call `eval`."""

    def __init__(self, marker: Path, value=None):
        self.marker, self.value = str(marker), value

    def __reduce__(self):
        code = f"(__import__('pathlib').Path({self.marker!r}).write_text('pwned'), {self.value!r})[1]"
        return (eval, (code,))


def _clean_checkpoint() -> dict:
    """The official fixture's checkpoint, re-read (inert placeholders replaced by plain values)."""
    checkpoint = load_official_checkpoint(OFFICIAL_PTH)
    return {"model": extract_state_dict(checkpoint), "epoch": 3, "args": {"lr": 6e-4}}


def _pickle_spans(blob: bytes) -> list[tuple[int, int]]:
    """(start, end) of each of the first five pickles of a legacy-format file (magic, protocol, sys info, the
    object, the storage keys), found by walking the opcodes without running them."""
    spans, stream = [], io.BytesIO(blob)
    for _ in range(5):
        start = stream.tell()
        for _op in pickletools.genops(stream):
            pass
        spans.append((start, stream.tell()))
    return spans


def _legacy_with_payload(index: int, marker: Path) -> bytes:
    """A legacy-format checkpoint whose pickle number `index` (0 magic, 1 protocol, 2 sys info, 4 storage keys) is
    replaced by a payload that returns exactly what torch expects there, so an unsafe loader runs it and goes on."""
    buffer = io.BytesIO()
    torch.save(_clean_checkpoint(), buffer, _use_new_zipfile_serialization=False)
    blob = buffer.getvalue()
    start, end = _pickle_spans(blob)[index]
    value = pickle.loads(blob[start:end])  # our own file: ints, a dict of ints, a list of strings
    return blob[:start] + pickle.dumps(Payload(marker, value), protocol=2) + blob[end:]


def _saved(obj, legacy: bool) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


# (id, builder(marker) -> file bytes, outcome: None = converts, else a regex of the ValueError)
PLACES = [
    ("legacy-magic-number", lambda m: _legacy_with_payload(0, m), "cannot be read|not a PyTorch"),
    ("legacy-protocol-version", lambda m: _legacy_with_payload(1, m), "cannot be read"),
    ("legacy-sys-info", lambda m: _legacy_with_payload(2, m), None),
    ("legacy-storage-keys", lambda m: _legacy_with_payload(4, m), "cannot be read"),
    ("legacy-args", lambda m: _saved({**_clean_checkpoint(), "args": Payload(m, {"lr": 1})}, True), None),
    ("zip-args", lambda m: _saved({**_clean_checkpoint(), "args": Payload(m, {"lr": 1})}, False), None),
    (
        "zip-nested-in-optimizer",
        lambda m: _saved({**_clean_checkpoint(), "optimizer": {"state": {0: [Payload(m, 1)]}}}, False),
        None,
    ),
    (
        "zip-nested-in-model",
        lambda m: _saved({"model": {**_clean_checkpoint()["model"], "evil": Payload(m, 0)}}, False),
        "not tensors",
    ),
    (
        "legacy-nested-in-model",
        lambda m: _saved({"model": {**_clean_checkpoint()["model"], "evil": Payload(m, 0)}}, True),
        "not tensors",
    ),
    ("zip-top-level", lambda m: _saved(Payload(m, {"model": {}}), False), "no state dict"),
    ("bare-pickle", lambda m: pickle.dumps(Payload(m, {"model": {}}), protocol=2), "cannot be read"),
    ("bare-pickle-protocol-4", lambda m: pickle.dumps(Payload(m, 0), protocol=4), "cannot be read"),
]


def _finetune_entry(path: Path):
    finetune = load_example("finetune")
    from hf_axlstm.data import LabelSpace

    return finetune.build_model(finetune.ModelArguments(model_name_or_path=str(path)), LabelSpace(["a", "b"], False))


def _convert_cli_entry(path: Path):
    code = convert_main([str(path), str(path.parent / "converted")])
    if code != 0:
        raise ValueError("cannot be read|not a PyTorch|not tensors|no state dict (the CLI's exit 2)")


ENTRIES = {
    "convert_checkpoint": convert_checkpoint,
    "convert_official-cli": _convert_cli_entry,
    "hear.load_model": lambda path: hear.load_model(path, device="cpu"),
    "finetune.build_model": _finetune_entry,
    "evaluate_embeddings.build_embedder": lambda path: load_example("evaluate_embeddings").build_embedder(
        str(path), "time_major", "windows", "cpu"
    ),
}


@pytest.mark.parametrize("place, build, outcome", PLACES, ids=[p[0] for p in PLACES])
def test_the_payload_is_live(place, build, outcome, tmp_path):
    """Control: the plain loaders run each crafted payload (so the tests below would see a hole)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(build(marker))
    loader = "pickle.load(f)" if place.startswith("bare") else "torch.load(f, weights_only=False)"
    subprocess.run(
        [sys.executable, "-c", f"import pickle, torch\nwith open({str(path)!r}, 'rb') as f:\n    {loader}"],
        capture_output=True,
        timeout=120,
    )
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("place, build, outcome", PLACES, ids=[p[0] for p in PLACES])
def test_no_payload_runs_through_any_entry(place, build, outcome, entry, tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(build(marker))
    if outcome is None:
        ENTRIES[entry](path)  # the weights are still usable; the payload became an inert placeholder
    else:
        with pytest.raises(ValueError, match=outcome if entry != "convert_official-cli" else None):
            ENTRIES[entry](path)
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_clean_checkpoints_of_both_formats_convert_identically(legacy, tmp_path):
    """The authors' layout (model, optimizer, epoch, scaler, an argparse.Namespace) in both torch formats."""
    reference = convert_checkpoint(OFFICIAL_PTH).state_dict()
    official = load_official_checkpoint(OFFICIAL_PTH)
    checkpoint = {
        "model": extract_state_dict(official),
        "optimizer": official["optimizer"],
        "epoch": official["epoch"],
        "scaler": official["scaler"],
        "args": argparse.Namespace(lr=6e-4, config={"model": "axlstm"}),
    }
    path = tmp_path / "clean.pth"
    path.write_bytes(_saved(checkpoint, legacy))
    loaded = load_official_checkpoint(path)
    assert repr(loaded["args"]) == "<inert argparse.Namespace>" and loaded["args"].state["lr"] == 6e-4
    converted = convert_checkpoint(path).state_dict()
    assert converted.keys() == reference.keys()
    assert all(torch.equal(converted[k], reference[k]) for k in reference)


def test_the_official_checkpoint_is_read_without_building_its_classes():
    checkpoint = load_official_checkpoint(OFFICIAL_PTH)
    assert repr(checkpoint["args"]) == "<inert argparse.Namespace>"
    config = checkpoint["args"].state["config"]
    assert repr(config).startswith("<inert ml_collections")


def test_a_torchscript_archive_is_refused_not_handed_to_jit_load(tmp_path):
    path = tmp_path / "scripted.pth"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(ValueError, match="TorchScript archive"):
        load_official_checkpoint(path)


def test_the_documented_claim_is_there():
    """README.md and docs/safety.md make the claim these tests hold the package to."""
    root = Path(__file__).resolve().parents[1]
    for page in (root / "README.md", root / "docs" / "safety.md"):
        assert "without executing pickled code" in page.read_text().replace("\n", " "), page

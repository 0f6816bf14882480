import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModel, AutoModelForPreTraining

from hf_axlstm import AxLSTMForPreTraining, AxLSTMModel
from hf_axlstm.convert_official import (
    checkpoint_in_folder,
    convert_checkpoint,
    convert_state_dict,
    extract_state_dict,
    infer_config,
    load_official_checkpoint,
)
from hf_axlstm.convert_official import main as convert_main

from .conftest import rel_err


@pytest.fixture(scope="module")
def converted_dir(official_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    result = subprocess.run(
        [sys.executable, "-m", "hf_axlstm.convert_official", str(official_dir / "official_checkpoint.pth"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "encoder parameters=" in result.stdout
    return out


def test_cli_writes_a_complete_folder(converted_dir):
    names = set(os.listdir(converted_dir))
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    assert not any(n.endswith((".bin", ".pth", ".pt")) for n in names)


def test_converted_folder_reproduces_the_authors_prediction(converted_dir, expected):
    model = AxLSTMForPreTraining.from_pretrained(converted_dir).eval()
    with torch.no_grad():
        out = model(expected["lms"], mask=expected["mask"])
    assert rel_err(out.logits, expected["pred"]) < 1e-5
    assert abs(out.loss.item() - expected["loss_all_patches"].item()) < 1e-5


def test_converted_folder_loads_as_encoder_and_through_auto(converted_dir, expected):
    encoder = AxLSTMModel.from_pretrained(converted_dir).eval()
    auto = AutoModel.from_pretrained(converted_dir).eval()
    pre = AutoModelForPreTraining.from_pretrained(converted_dir).eval()
    assert type(auto) is AxLSTMModel and type(pre) is AxLSTMForPreTraining
    with torch.no_grad():
        a = encoder(expected["lms"]).last_hidden_state
        b = auto(expected["lms"]).last_hidden_state
        c = pre.axlstm(expected["lms"]).last_hidden_state
    assert torch.equal(a, b) and torch.equal(a, c)


def test_config_is_inferred_from_weight_shapes(official_dir):
    state = extract_state_dict(load_official_checkpoint(official_dir / "official_checkpoint.pth"))
    config = infer_config(state)
    assert (config.hidden_size, config.num_hidden_layers, config.expansion_factor) == (64, 2, 2)
    assert (config.num_heads, config.qkv_block_size, config.conv_kernel_size) == (4, 4, 4)
    assert config.patch_size == [4, 16] and config.num_mel_bins == 80 and config.frames_per_window == 200


def test_every_official_weight_is_mapped(official_dir):
    state = extract_state_dict(load_official_checkpoint(official_dir / "official_checkpoint.pth"))
    model = convert_checkpoint(official_dir / "official_checkpoint.pth")
    mapped = convert_state_dict(state, model.config)
    assert set(mapped) == set(model.state_dict())
    # the two official gate linears become the rows of one gate_proj: input gates first
    gate = model.state_dict()["axlstm.layers.1.mixer.gate_proj.weight"]
    assert torch.equal(gate[:4], state["blocks.1.layer.mlstm_cell.igate.weight"])
    assert torch.equal(gate[4:], state["blocks.1.layer.mlstm_cell.fgate.weight"])


def test_checkpoint_metadata_is_inert_not_executed(official_dir):
    checkpoint = load_official_checkpoint(official_dir / "official_checkpoint.pth")
    assert set(checkpoint) == {"model", "optimizer", "epoch", "scaler", "args"}
    assert repr(checkpoint["args"]) == "<inert argparse.Namespace>"
    assert checkpoint["args"].state["lr"] == pytest.approx(6e-4)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_runs_no_code(tmp_path, official_dir):
    marker = tmp_path / "pwned"
    state = extract_state_dict(load_official_checkpoint(official_dir / "official_checkpoint.pth"))
    path = tmp_path / "evil.pth"
    torch.save({"model": state, "args": _Exploit(marker)}, path)
    checkpoint = load_official_checkpoint(path)
    assert not marker.exists()
    assert "system" in repr(checkpoint["args"])
    convert_checkpoint(path)  # the weights are still usable
    assert not marker.exists()


def test_missing_and_unexpected_weights_fail_loudly(official_dir, tmp_path):
    state = extract_state_dict(load_official_checkpoint(official_dir / "official_checkpoint.pth"))
    broken = dict(state)
    broken["blocks.0.layer.extra.weight"] = torch.zeros(3)
    torch.save({"model": broken}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"does not know: \['blocks.0.layer.extra.weight'\]"):
        convert_checkpoint(tmp_path / "extra.pth")
    missing = {k: v for k, v in state.items() if k != "blocks.1.layer.proj_down.weight"}
    torch.save({"model": missing}, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing \['axlstm.layers.1.mixer.proj_down.weight'\]"):
        convert_checkpoint(tmp_path / "missing.pth")
    no_gate = {k: v for k, v in state.items() if k != "blocks.0.layer.mlstm_cell.fgate.bias"}
    torch.save({"model": no_gate}, tmp_path / "nogate.pth")
    with pytest.raises(ValueError, match=r"block 0 is missing gate weights \['fgate.bias'\]"):
        convert_checkpoint(tmp_path / "nogate.pth")


def test_ddp_prefixes_are_stripped(official_dir, tmp_path):
    state = extract_state_dict(load_official_checkpoint(official_dir / "official_checkpoint.pth"))
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ddp.pth")
    model = convert_checkpoint(tmp_path / "ddp.pth")
    assert torch.equal(model.axlstm.embeddings.cls_token, state["cls_token"])


def test_cli_reports_a_bad_checkpoint_in_one_line(tmp_path):
    bad = tmp_path / "not_axlstm.pth"
    torch.save({"model": {"weight": torch.zeros(2)}}, bad)
    result = subprocess.run(
        [sys.executable, "-m", "hf_axlstm.convert_official", str(bad), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "error: checkpoint is missing the weight 'patch_embed.proj.weight'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_refuses_a_folder_with_files_unless_overwrite(official_dir, tmp_path, capsys):
    from hf_axlstm.convert_official import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    (out / "notes.txt").write_text("my notes")
    assert main([str(official_dir / "official_checkpoint.pth"), str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (out / "config.json").read_text() == '{"mine": true}'  # untouched
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "notes.txt"]

    assert main([str(official_dir / "official_checkpoint.pth"), str(out), "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["model_type"] == "axlstm"
    assert (out / "notes.txt").read_text() == "my notes"  # the user's other files are kept
    assert AxLSTMForPreTraining.from_pretrained(out).config.hidden_size == 64
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # no temporary folder left


def test_cli_writes_into_an_empty_existing_folder_and_nothing_on_failure(official_dir, tmp_path):
    from hf_axlstm.convert_official import main

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(official_dir / "official_checkpoint.pth"), str(empty)]) == 0
    assert (empty / "model.safetensors").is_file()
    bad = tmp_path / "bad.pth"
    torch.save({"model": {"weight": torch.zeros(2)}}, bad)
    assert main([str(bad), str(tmp_path / "never")]) == 2
    assert not (tmp_path / "never").exists()


# -------------------------------------------------------------------------- faults: a kill during --overwrite

# Runs the converter with os.rename patched to kill the process (os._exit, no cleanup) at the Nth rename of a staging
# folder, before or after it. In an overwrite the renames are: 1 stage -> ready, 2 old folder -> backup, 3 ready -> target.
_KILLER = """
import os, sys
from hf_axlstm import convert_official
point, when = int(sys.argv[1]), sys.argv[2]
real, count = os.rename, 0
def rename(src, dst):
    global count
    if not any(os.path.basename(str(p)).startswith(".tmp-") for p in (src, dst)):  # the swap's renames only
        return real(src, dst)
    count += 1
    if count == point and when == "before":
        os._exit(99)
    real(src, dst)
    if count == point and when == "after":
        os._exit(99)
os.rename = rename
sys.exit(convert_official.main(sys.argv[3:]))
"""
# name: (rename number, before / after it, what the target holds right after the kill)
_KILL_POINTS = {
    "staged": (1, "before", "old"),
    "marked-ready": (2, "before", "old"),
    "between-the-swap-renames": (3, "before", None),
    "swapped": (3, "after", "new"),
}


def _digest(folder) -> dict[str, str]:
    import hashlib

    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != "notes.txt"
    }


@pytest.fixture(scope="module")
def old_and_new(official_dir, converted_dir, tmp_path_factory):
    """An 'old' converted folder (other weights) and the digests of the old and the new complete sets."""
    from hf_axlstm.convert_official import main

    root = tmp_path_factory.mktemp("old")
    state = extract_state_dict(load_official_checkpoint(official_dir / "official_checkpoint.pth"))
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"] * 2
    torch.save({"model": state}, root / "old.pth")
    assert main([str(root / "old.pth"), str(root / "old")]) == 0
    return root / "old", _digest(root / "old"), _digest(converted_dir)


@pytest.mark.slow
@pytest.mark.parametrize("point", list(_KILL_POINTS))
def test_a_kill_during_overwrite_never_leaves_a_mixed_folder(point, official_dir, old_and_new, tmp_path):
    import shutil

    from hf_axlstm import folder_swap

    old_dir, old_set, new_set = old_and_new
    assert old_set != new_set
    out = tmp_path / "out"
    shutil.copytree(old_dir, out)
    (out / "notes.txt").write_text("my notes")
    number, when, expected = _KILL_POINTS[point]
    ckpt = str(official_dir / "official_checkpoint.pth")
    result = subprocess.run(
        [sys.executable, "-c", _KILLER, str(number), when, ckpt, str(out), "--overwrite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 99, result.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-out-")]
    assert leftovers  # the killed run's staging folder(s)
    if expected is None:  # killed between the two renames: no folder, never a mixed one
        assert not out.exists()
    else:
        assert _digest(out) == (old_set if expected == "old" else new_set)
        assert (out / "notes.txt").read_text() == "my notes"
    # The next run (here its first step alone) restores a missing folder from the complete new set and removes the
    # dead run's staging folders.
    done = folder_swap.clean_stale(out)
    assert len(done) >= len(leftovers) - 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert _digest(out) == (old_set if expected == "old" else new_set)
    assert (out / "notes.txt").read_text() == "my notes"
    AxLSTMForPreTraining.from_pretrained(out)  # a complete folder
    # A whole next run: converts, and leaves nothing behind.
    from hf_axlstm.convert_official import main

    assert main([ckpt, str(out), "--overwrite"]) == 0
    assert _digest(out) == new_set and (out / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_removes_the_converters_old_files_and_keeps_the_users(official_dir, tmp_path):
    from hf_axlstm.convert_official import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "model-00001-of-00002.safetensors").write_bytes(b"an old shard")  # the converter's (an older run's)
    (out / "model.safetensors.index.json").write_text("{}")
    (out / "notes").mkdir()
    (out / "notes" / "a.txt").write_text("mine")
    mode = 0o750
    out.chmod(mode)
    assert main([str(official_dir / "official_checkpoint.pth"), str(out), "--overwrite"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "model-00001-of-00002.safetensors" not in names and "model.safetensors.index.json" not in names
    assert (out / "notes" / "a.txt").read_text() == "mine"
    assert out.stat().st_mode & 0o777 == mode  # the folder keeps its permissions
    assert AxLSTMForPreTraining.from_pretrained(out).config.hidden_size == 64


def test_a_live_runs_staging_folder_is_never_removed(tmp_path):
    from hf_axlstm import folder_swap

    out = tmp_path / "out"
    live = folder_swap.make_stage(out)  # this process: alive
    (live / "model.safetensors").write_bytes(b"being written")
    dead = tmp_path / live.name.replace(f"-{os.getpid()}-", "-999999999-")  # a pid that no process has
    dead.mkdir()
    assert folder_swap.clean_stale(out) == [f"removed {dead.name}, left by a killed run"]
    assert live.is_dir() and not dead.exists()
    (tmp_path / ".tmp-other-folder-123").mkdir()  # not a staging folder of this target: untouched
    folder_swap.clean_stale(out)
    assert (tmp_path / ".tmp-other-folder-123").is_dir()


def test_cli_reports_an_unwritable_output_folder_in_one_line(official_dir, tmp_path, capsys):
    from hf_axlstm.convert_official import main

    parent = tmp_path / "file"
    parent.write_text("not a folder")
    assert main([str(official_dir / "official_checkpoint.pth"), str(parent / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err


def test_overwrite_through_a_symlinked_output_folder_keeps_the_link(official_dir, tmp_path):
    from hf_axlstm.convert_official import main

    real = tmp_path / "real"
    real.mkdir()
    (real / "notes.txt").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert main([str(official_dir / "official_checkpoint.pth"), str(link), "--overwrite"]) == 0
    assert link.is_symlink() and (link / "model.safetensors").is_file() and (link / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_an_authors_run_folder_is_converted_from_the_checkpoint_in_it(official_dir, expected, tmp_path, capsys):
    """The authors publish a folder per run: the converter takes it as downloaded and finds its checkpoint; where the
    run saved several, it converts the highest-numbered one and says so."""
    import shutil

    run = tmp_path / "axlstm_tiny_200_16x4_4x256_fp16_r1"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(official_dir / "official_checkpoint.pth", run / "checkpoints" / "checkpoint_99.pth")
    assert checkpoint_in_folder(run) == run / "checkpoints" / "checkpoint_99.pth"
    assert convert_main([str(run), str(tmp_path / "out")]) == 0
    model = AxLSTMForPreTraining.from_pretrained(tmp_path / "out")
    out = model(expected["lms"][:, 0], mask=expected["mask"])
    assert rel_err(out.logits, expected["pred"]) < 1e-5
    # several checkpoints: the highest epoch number wins (not the name order: 100 > 99), and it is named
    (run / "checkpoints" / "checkpoint_100.pth").write_bytes(b"")
    (run / "notes.txt").write_text("not a checkpoint")
    assert checkpoint_in_folder(run) == run / "checkpoints" / "checkpoint_100.pth"
    assert "checkpoint_100.pth" in capsys.readouterr().out
    # a folder without any checkpoint file is refused by name
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(ValueError, match="empty_run.*is a directory without a checkpoint file"):
        checkpoint_in_folder(tmp_path / "empty_run")

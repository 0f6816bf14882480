import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModel, AutoModelForPreTraining

from hf_axlstm import AxLSTMForPreTraining, AxLSTMModel
from hf_axlstm.convert_official import (
    convert_checkpoint,
    convert_state_dict,
    extract_state_dict,
    infer_config,
    load_official_checkpoint,
)

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

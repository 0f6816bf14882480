# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Every command and snippet that README.md, the example scripts' docstrings and the package's module docstrings show
runs here, as written, the way a newcomer runs them: in order, from a working folder that holds a copy of
`examples/` and `tasks/`. (Usage synopses with placeholders, `MODEL_DIR OUTPUT_DIR [--task ...]`, are not commands.)

README.md's commands share one working folder; each script's docstring gets a folder of its own (with the demo's
output and the converted authors' model linked from the README's). Each folder gets the small data the commands
name: `wavs/` (a folder of clips of any rate and channel count),
`my_dataset/` (an `audiofolder` with labels and splits), `user/audio` (a local stand-in for a Hub dataset id: the
same loader sees a folder) and the authors' checkpoint folder (`axlstm_tiny_200_16x4_4x256_fp16_r1/`, holding the
authors' fixture checkpoint of `tests/fixtures/official_parity`). `python examples/demo.py` runs first, unchanged,
and later commands use what it wrote (`axlstm_demo/`).

Only the training budget is shrunk, by substituting the values of a few budget flags in place (`--max_train_steps`
N -> N / 500 capped at 4, so a continued run still goes further than the run it continues; batch sizes capped at 4;
epochs at 1): every other flag is run as written, and after each command the outputs it promises are checked (a
model folder, checkpoints, metrics that show training happened), so a documented command that silently does nothing
fails here. `pip install` and `python -m pytest` (the set-up commands) are what `.ci/run` runs; a test checks that
the README's install lines and `.ci/run`'s agree.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
AUTHORS_RUN = "axlstm_tiny_200_16x4_4x256_fp16_r1"

# ------------------------------------------------------------------------------------------------ extraction


def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """(language, code, first line number) of every fenced block of a markdown text."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = re.match(r"^```(\w*)\s*$", lines[i])
        if match:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append((match.group(1), "\n".join(body), start + 1))
        i += 1
    return blocks


def shell_commands(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    out, current = [], ""
    for raw in code.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip() and not current:
            continue
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        current += line.strip()
        if current.strip():
            out.append(current.strip())
        current = ""
    return out


def docstring_commands(path: Path) -> list[str]:
    """Commands shown in a script's module docstring: indented lines starting with `python ` or `accelerate `."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    commands, current = [], ""
    for line in doc.splitlines():
        stripped = line.strip()
        if current:
            current += " " + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                commands.append(current)
                current = ""
            continue
        if line.startswith("    ") and stripped.startswith(("python ", "accelerate ")):
            text = stripped.split("  #", 1)[0].strip()
            if text.endswith("\\"):
                current = text.rstrip("\\").strip()
            else:
                commands.append(text)
    return commands


def readme_steps() -> list[tuple[str, str, str]]:
    """(id, kind, text) for every README command and Python snippet, in reading order. The two set-up lines are
    reduced to the command they run after installing (`python examples/demo.py`; the test suite is this run)."""
    steps = []
    for lang, code, line in fenced_blocks(README.read_text()):
        if lang in ("bash", "sh", "shell", "console"):
            for command in shell_commands(code):
                parts = [p.strip() for p in command.split("&&")]
                parts = [p for p in parts if not p.startswith(("pip ", "python -m pip ")) and "pytest" not in p]
                for part in parts:
                    steps.append((f"README.md:{line}: {part[:60]}", "shell", part))
        elif lang == "python":
            steps.append((f"README.md:{line}: python snippet", "python", code))
    return steps


def docstring_steps() -> list[tuple[str, str, str]]:
    """The examples' docstring commands. `python examples/demo.py` runs once, as the README's first command (the
    other folders link its output); every other command runs in its own script's folder, in order."""
    return [
        (f"{path.name}: {command[:60]}", "shell", command)
        for path in EXAMPLES
        for command in docstring_commands(path)
        if command != "python examples/demo.py"
    ]


# ------------------------------------------------------------------------------------------------ the budget

_SHRINK = {
    "--max_train_steps": lambda v: str(min(4, max(1, int(v) // 500))),
    "--per_device_train_batch_size": lambda v: str(min(4, int(v))),
    "--per_device_eval_batch_size": lambda v: str(min(4, int(v))),
    "--num_train_epochs": lambda v: "1",
    "--max_epochs": lambda v: str(min(20, int(v))),
    "--num_proc": lambda v: "1",
    "--num_workers": lambda v: "0",
    "--seeds": None,  # a list: kept as written
}


def shrink(argv: list[str]) -> list[str]:
    """Substitute the budget flags' values in place (see the module docstring); every other token stays."""
    out = list(argv)
    for i, token in enumerate(out[:-1]):
        flag, _, inline = token.partition("=")
        rule = _SHRINK.get(flag)
        if rule is None:
            continue
        if inline:
            out[i] = f"{flag}={rule(inline)}"
        else:
            out[i + 1] = rule(out[i + 1])
    return out


# ------------------------------------------------------------------------------------------------ the folder


def _make_workspace(root: Path) -> None:
    import numpy as np
    import soundfile as sf

    sys.path.insert(0, str(REPO / "examples"))
    try:
        import synthetic_audio
    finally:
        sys.path.pop(0)
    shutil.copytree(REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "tasks", root / "tasks")
    rng = np.random.default_rng(0)
    # wavs/: a folder of unlabelled audio of mixed rates, channels and formats
    (root / "wavs" / "more").mkdir(parents=True)
    for i, label in enumerate(synthetic_audio.CLASSES * 2):
        sr = (16000, 22050, 44100)[i % 3]
        x = synthetic_audio.synthesize(label, 2.5, sr, rng)
        if i % 4 == 1:
            x = np.stack([x, 0.5 * x], axis=1)
        folder = root / "wavs" / ("more" if i % 2 else "")
        sf.write(folder / f"{label}_{i}.{'flac' if i % 5 == 3 else 'wav'}", x, sr)
    # clip.wav: one clip to classify, at 44.1 kHz stereo (the pipeline resamples and downmixes)
    x = synthetic_audio.synthesize("chirp", 3.0, 44100, rng)
    sf.write(root / "clip.wav", np.stack([x, x], axis=1), 44100)
    # my_dataset/ and user/audio: labelled audiofolders with train / test splits
    synthetic_audio.make_corpus(root / "my_dataset", clips_per_class=4, min_seconds=1.0, max_seconds=2.5, seed=1)
    synthetic_audio.make_corpus(root / "user" / "audio", clips_per_class=3, min_seconds=1.0, max_seconds=2.5, seed=2)
    # the authors' run folder as downloaded from their Google Drive (here: the fixture checkpoint of their code)
    (root / AUTHORS_RUN).mkdir()
    shutil.copy(REPO / "tests" / "fixtures" / "official_parity" / "official_checkpoint.pth", root / AUTHORS_RUN)


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    """One working folder per source (README.md, each example script), each with the test data. The README's runs
    first; the examples' folders link the demo's output and the converted authors' model from it, so each script's
    docstring runs in order in a folder of its own, as a reader of that script would."""
    base = tmp_path_factory.mktemp("data")
    _make_workspace(base)
    folders: dict[str, Path] = {}

    def get(source: str) -> Path:
        if source not in folders:
            root = tmp_path_factory.mktemp(source.replace(".", "_"))
            shutil.rmtree(root)
            shutil.copytree(base, root, symlinks=True)
            if source not in ("README.md", "demo.py"):  # the demo's own folder writes its own axlstm_demo/
                readme = get("README.md")
                for shared in ("axlstm_demo", "axlstm-tiny"):
                    if (readme / shared).exists():
                        (root / shared).symlink_to(readme / shared)
            folders[source] = root
        return folders[source]

    return get


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    env["HF_HUB_OFFLINE"] = "1"
    env["MPLBACKEND"] = "Agg"
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _run(root: Path, argv: list[str], timeout: int = 1200) -> subprocess.CompletedProcess:
    if argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    elif argv[0] == "accelerate":
        argv = [sys.executable, "-m", "accelerate.commands.launch", *argv[2:]] if argv[1] == "launch" else argv
    result = subprocess.run(argv, cwd=root, env=_env(root), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{shlex.join(argv)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
        f"--- stderr\n{result.stderr[-6000:]}"
    )
    return result


def _flag(argv: list[str], name: str) -> str | None:
    for i, token in enumerate(argv):
        if token == name and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    return None


def check_outputs(root: Path, argv: list[str], result: subprocess.CompletedProcess) -> None:
    """What each documented command promises, beyond exiting 0."""
    script = next((Path(a).name for a in argv if a.endswith(".py")), "")
    module = argv[argv.index("-m") + 1] if "-m" in argv else ""
    out = _flag(argv, "--output_dir")
    if script == "demo.py":
        assert (root / "axlstm_demo" / "classifier" / "model.safetensors").is_file()
        assert "linear probe" in result.stdout
    elif script == "pretrain.py":
        out = root / out
        assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
        log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
        steps = [row["step"] for row in log if "loss" in row]
        assert steps and steps[-1] == int(_flag(argv, "--max_train_steps") or steps[-1]), steps
        assert len(steps) == len(set(steps)), "a step was logged twice"
        assert sorted((out / "checkpoints").glob("*")), f"no checkpoint under {out / 'checkpoints'}"
    elif script == "finetune.py":
        out = root / out
        results = json.loads((out / "all_results.json").read_text())
        if ("--do_eval" in argv or "--do_predict" in argv) and "--do_train" not in argv:  # evaluation only
            assert not (out / "model.safetensors").exists() and "train_loss" not in results
            assert any(key.startswith(("eval_", "test_")) for key in results), sorted(results)
        else:
            assert (out / "model.safetensors").is_file(), "finetune.py saved no model"
            assert "train_loss" in results, f"finetune.py did not train: {sorted(results)}"
    elif script == "prepare_features.py":
        assert (root / out / "axlstm_features.json").is_file()
    elif script == "evaluate_embeddings.py":
        assert (root / out / "results.md").is_file() and (root / out / "results.csv").is_file()
    elif script == "compare_architectures.py":
        assert any((root / out).rglob("*.md")), f"no report under {out}"
    elif module == "hf_axlstm.export_onnx":
        target = root / argv[argv.index("-m") + 3]
        assert (target / "model.onnx").is_file() and (target / "config.json").is_file()
        if "--quantize" in argv:
            assert (target / "model_int8.onnx").is_file()
    elif module == "hf_axlstm.convert_official":
        target = root / argv[argv.index("-m") + 3]
        assert (target / "config.json").is_file() and (target / "model.safetensors").is_file()


def run_step(root: Path, kind: str, text: str) -> None:
    if kind == "python":
        snippet = root / "snippet.py"
        snippet.write_text(text + "\n")
        out = _run(root, ["python", str(snippet)]).stdout
        if "print(" in text:  # what it prints is what the docs promise
            assert out.strip(), "the snippet printed nothing"
        if 'pipeline("audio-classification"' in text:  # a file classified: labels with scores
            assert "'label':" in out and "'score':" in out, out
        if "last_hidden_state.shape" in text:
            assert "torch.Size([2, 256," in out, out  # 1 + 51 * 5 tokens for 32000 samples
        return
    argv = shrink(shlex.split(text))
    result = _run(root, argv)
    check_outputs(root, argv, result)


# ------------------------------------------------------------------------------------------------ the tests


def test_readme_has_two_setup_commands_and_ci_installs_the_same():
    blocks = fenced_blocks(README.read_text())
    assert README.read_text().startswith("# "), "the README starts with its title"
    lang, code, _ = blocks[0]
    commands = shell_commands(code)
    assert lang == "bash" and len(commands) == 2, commands
    assert commands[0].endswith("python examples/demo.py"), commands[0]
    assert commands[1].endswith("python -m pytest"), commands[1]
    ci = (REPO / ".ci" / "run").read_text()
    for command in commands:
        for part in command.split("&&"):
            part = part.strip()
            if part.startswith("pip install"):
                extras = re.findall(r'"(\.\[[^]]*\])"', part)
                assert "pip install -q torch==2.13.0" in ci or "torch==2.13.0" not in part
                for extra in extras:
                    wanted = set(extra[2:-1].split(","))
                    ci_extras = re.findall(r'-e "\.\[([^]]*)\]"', ci)
                    assert any(wanted <= set(e.split(",")) for e in ci_extras), (extra, ci_extras)
    assert "python -m pytest" in ci


def test_readme_fits_on_a_page():
    lines = README.read_text().splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; depth belongs in docs/"


def test_extraction_finds_the_documented_commands():
    steps = readme_steps()
    texts = [t for _, _, t in steps]
    assert texts[0] == "python examples/demo.py"
    assert any("examples/pretrain.py" in t for t in texts) and any("examples/finetune.py" in t for t in texts)
    assert any(kind == "python" for _, kind, _ in steps)
    assert shell_commands("a \\\n  --b 1  # note\n# comment\n\nc") == ["a --b 1", "c"]
    assert shrink(["x", "--max_train_steps", "1000", "--num_train_epochs=10", "--seed", "3"]) == [
        "x",
        "--max_train_steps",
        "2",
        "--num_train_epochs=1",
        "--seed",
        "3",
    ]


def test_doc_links_resolve():
    """Every relative link of README.md and docs/*.md points at a file of the repo."""
    pages = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO)} -> {target}")
    assert not missing, missing


def test_task_specs_parse():
    """The task JSONs the docs use are valid specs of examples/evaluate_embeddings.py."""
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import evaluate_embeddings
    finally:
        sys.path.pop(0)
    specs = sorted((REPO / "tasks").glob("*.json"))
    assert specs
    for spec in specs:
        task = evaluate_embeddings.Task.from_file(spec)
        assert task.name == json.loads(spec.read_text()).get("name", spec.stem)


def package_snippets() -> list[tuple[str, str, str]]:
    """The usage snippets of the package's module docstrings (an indented block that imports): they run in the
    README's folder after its commands, whose outputs they use (`axlstm-tiny`, `exported/`)."""
    steps = []
    for path in sorted((REPO / "src" / "hf_axlstm").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        block: list[str] = []
        for line in [*doc.splitlines(), ""]:
            if line.startswith("    ") or (block and not line.strip()):
                block.append(line[4:])
                continue
            code = "\n".join(block).strip()
            if re.search(r"^(from|import) ", code, re.M) and not code.startswith("python "):
                steps.append((f"README.md: {path.name} snippet", "python", code))
            block = []
    return steps


STEPS = readme_steps() + package_snippets() + docstring_steps()


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS, ids=[s[0] for s in STEPS])
def test_documented_step_runs_as_written(workspaces, step):
    name, kind, text = step
    run_step(workspaces(name.split(":")[0]), kind, text)


def test_the_documented_bad_input_count_is_the_tables():
    """docs/safety.md states how many cases the bad-input table holds; the number must stay true."""
    import importlib

    total = sum(len(importlib.import_module(f"tests.{name}").CASES) for name in CASE_FILES)
    stated = re.search(r"`tests/test_bad_inputs.py`, (\d+) cases", (REPO / "docs" / "safety.md").read_text())
    assert stated, "docs/safety.md no longer states the table's size"
    assert int(stated.group(1)) == total, f"docs/safety.md says {stated.group(1)} cases; the table has {total}"


CASE_FILES = sorted(p.stem for p in (REPO / "tests").glob("cases_*.py"))

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""The fused CPU kernel of the chunkwise mLSTM cell (hf_axlstm.cpu_kernels, csrc/cpu_kernels.cpp): the same
function and gradients as `_ChunkwiseMLSTM` and the float64 formula, the routing (float32 CPU training only), the
states it keeps, and the fall-back when it cannot be built. The tests that build it are slow (about a minute for
the first build, then torch's extension cache)."""

import logging
import re
import shutil
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hf_axlstm import cpu_kernels
from hf_axlstm import mixers_axlstm as mixers
from hf_axlstm.configuration_axlstm import AxLSTMConfig
from hf_axlstm.kernels_axlstm import mlstm
from hf_axlstm.mixers_axlstm import _CausalDepthwiseConv, _MixerOutput
from hf_axlstm.modeling_axlstm import AxLSTMBlock, AxLSTMForPreTraining

from .conftest import rel_err
from .test_kernels_axlstm import CHUNKWISE_TRAINING_CASES, chunkwise_training_case, close, random_inputs


@pytest.fixture(scope="module")
def fused_ops():
    if shutil.which("ninja") is None or shutil.which("c++") is None:
        pytest.skip("the fused CPU cell needs a C++ compiler and ninja")
    return cpu_kernels.build()


@pytest.fixture
def fused(fused_ops, monkeypatch):
    """The fused kernels of one test, `fused.kernels` (also what the "fused_cpu" mixer implementation runs during the
    test); each call of the cell's forward is recorded (its input's shape), and the names of the other fused ops
    called in `fused.used`."""

    class Calls(list):
        used: list

    calls = Calls()
    calls.used = []

    class Recording:
        @staticmethod
        def forward(*args):
            calls.append(tuple(args[0].shape))
            return fused_ops.forward(*args)

        def __getattr__(self, name):
            op = getattr(fused_ops, name)

            def run(*args):
                calls.used.append(name)
                return op(*args)

            return run

    calls.kernels = cpu_kernels.FusedCPUKernels(Recording())
    monkeypatch.setattr(cpu_kernels, "_kernels", calls.kernels)
    return calls


def record_fused_steps(monkeypatch) -> list[str]:
    """The names of the `FusedCPUKernels` steps (conv_silu, heads, cell, tail) called from now on, in order."""
    calls = []
    for name in ("conv_silu", "heads", "cell", "tail"):
        step = getattr(cpu_kernels.FusedCPUKernels, name)
        monkeypatch.setattr(
            cpu_kernels.FusedCPUKernels, name, lambda self, *a, _n=name, _s=step: calls.append(_n) or _s(self, *a)
        )
    return calls


def graph_node(out: torch.Tensor, name: str):
    nodes = [out.grad_fn]
    while nodes:
        node = nodes.pop()
        if type(node).__name__ == name:
            return node
        nodes.extend(fn for fn, _ in node.next_functions if fn is not None)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("seq, head_dim, value_dim, igate_shift", CHUNKWISE_TRAINING_CASES)
def test_fused_cell_matches_the_eager_cell_and_the_reference(fused, seq, head_dim, value_dim, igate_shift):
    inputs, grad_out, expected, expected_grads = chunkwise_training_case(seq, head_dim, value_dim, igate_shift)
    out = mlstm(*inputs, backend="chunkwise", chunk_size=16, fused=fused.kernels)
    assert graph_node(out, "_FusedChunkwiseMLSTMBackward") is not None
    grads = torch.autograd.grad(out, inputs, grad_out)
    assert fused == [(6, -(-seq // 16), 16, head_dim)]  # (B * NH, NC, L, D): one call, on whole chunks
    eager = mlstm(*inputs, backend="chunkwise", chunk_size=16)
    assert graph_node(eager, "_ChunkwiseMLSTMBackward") is not None
    eager_grads = torch.autograd.grad(eager, inputs, grad_out)

    assert out.shape == (2, 3, seq, value_dim)
    # Both float32 kernels against the float64 formula: the fused one (another summation order) within 1e-4 and at
    # most twice the eager one's error, and the two within 1e-5 of each other; with large input gates (+5) the
    # normaliser's cancellation costs every float32 path 1e-5-3e-4, so there only the first and the 2x bound hold.
    pairs = [("h", out, eager, expected)] + list(zip("q k v igate fgate".split(), grads, eager_grads, expected_grads))
    for name, fused_value, eager_value, reference in pairs:
        fused_err, eager_err = rel_err(fused_value, reference), rel_err(eager_value, reference)
        tol = 1e-4 if igate_shift < 5 else 3e-4
        assert close(fused_value, reference, tol=tol) and fused_err <= max(2 * eager_err, 1e-5), (
            name,
            fused_err,
            eager_err,
        )
        if igate_shift < 5:
            assert close(fused_value, eager_value), (name, rel_err(fused_value, eager_value))


@pytest.mark.slow
@pytest.mark.parametrize("head_dim, value_dim", [(24, 24), (25, 25), (40, 28)])
def test_fused_cell_keeps_the_states_only_for_narrow_heads(fused, head_dim, value_dim):
    """Between the passes: the (D x DV) state per chunk only for heads up to 1.5 chunks (else recomputed), and no
    S x S tensor but the decay and the decay-weighted scores."""
    batch, heads, seq, chunk = 2, 3, 64, 16
    q, k, _, igate, fgate = random_inputs(batch, heads, seq, head_dim, seed=3)
    v = torch.randn(batch, heads, seq, value_dim, generator=torch.Generator().manual_seed(4))
    inputs = [t.detach().requires_grad_() for t in (q, k, v, igate, fgate)]
    out = mlstm(*inputs, backend="chunkwise", chunk_size=chunk, fused=fused.kernels)
    shapes = [tuple(t.shape) for t in graph_node(out, "_FusedChunkwiseMLSTMBackward").saved_tensors]
    flat, num_chunks = batch * heads, seq // chunk
    assert ((flat, num_chunks, head_dim, value_dim) in shapes) == (2 * head_dim <= 3 * chunk), shapes
    assert shapes.count((flat, num_chunks, chunk, chunk)) == 2, shapes
    out.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in inputs)


@pytest.mark.slow
def test_fused_cell_runs_only_for_float32_cpu_training(fused):
    """Inference, 16-bit inputs and autocast keep their own paths; float32 training takes the fused kernel."""
    inputs = random_inputs(1, 2, 40, 8, requires_grad=True)
    kernels = fused.kernels
    with torch.no_grad():
        mlstm(*inputs, backend="chunkwise", chunk_size=16, fused=kernels)
    bf16 = [t.detach().bfloat16().requires_grad_() for t in inputs[:3]] + inputs[3:]
    mlstm(*bf16, backend="chunkwise", chunk_size=16, fused=kernels).float().sum().backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mlstm(*inputs, backend="chunkwise", chunk_size=16, fused=kernels).float().sum().backward()
    mlstm(*inputs, backend="chunkwise", chunk_size=16, fused=kernels, recompute=False).sum().backward()
    assert fused == []
    mlstm(*inputs, backend="chunkwise", chunk_size=16, fused=kernels).sum().backward()
    assert fused == [(2, 3, 16, 8)]


@pytest.mark.slow
def test_pretraining_step_with_the_fused_cell_matches_the_eager_one(fused):
    """A whole pretraining step (loss and every parameter's gradient) through the "fused_cpu" implementation equals
    the folded eager one's and the paper-shaped "plain" one's."""
    config = AxLSTMConfig.from_preset(
        "tiny", num_hidden_layers=2, hidden_size=48, num_heads=2, mlstm_backend="chunkwise", chunk_size=16
    )
    config.mixer_implementation = "fused_cpu"
    torch.manual_seed(0)
    model = AxLSTMForPreTraining(config).train()
    inputs = torch.randn(2, 200, config.num_mel_bins)
    noise = torch.rand(2, 250)

    def step():
        model.zero_grad(set_to_none=True)
        loss = model(input_values=inputs, noise=noise).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss, grads = step()
    assert len(fused) == config.num_hidden_layers
    per_block = ["conv_forward", "heads_forward", "tail_forward"]
    backward = ["tail_backward", "backward", "heads_backward", "conv_backward"]
    assert fused.used == per_block * config.num_hidden_layers + backward * config.num_hidden_layers, fused.used
    model.set_mixer_implementation("folded")
    eager_loss, eager_grads = step()
    model.set_mixer_implementation("plain")
    plain_loss, plain_grads = step()
    assert torch.allclose(loss, eager_loss, rtol=1e-6), (loss, eager_loss)
    assert torch.allclose(loss, plain_loss, rtol=1e-6), (loss, plain_loss)
    assert grads.keys() == eager_grads.keys() == plain_grads.keys()
    for name, grad in grads.items():
        assert close(grad, eager_grads[name]), (name, rel_err(grad, eager_grads[name]))
        assert close(grad, plain_grads[name], tol=1e-4), (name, rel_err(grad, plain_grads[name]))


@pytest.mark.slow
def test_fused_mixer_tail_matches_the_eager_tail(fused_ops):
    """The mixer's tail, (headnorm(h) (1 + w) + skip c) silu(z), through the fused kernel: output and every gradient
    equal the eager `_MixerOutput`'s, with z a strided half of the up-projection's output as in the mixer."""
    batch, heads, seq, head_dim = 2, 3, 37, 8
    inner = heads * head_dim
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(batch, heads, seq, head_dim, generator=gen).requires_grad_()
    weight = (0.3 * torch.randn(inner, generator=gen)).requires_grad_()
    conv = torch.randn(batch, seq, inner, generator=gen).requires_grad_()
    skip = torch.randn(inner, generator=gen).requires_grad_()
    up = torch.randn(batch, seq, 2 * inner, generator=gen).requires_grad_()
    grad_out = torch.randn(batch, seq, inner, generator=gen)
    leaves = (h, weight, conv, skip, up)

    def tail():
        z = up.chunk(2, dim=-1)[1]  # (B, S, I), row stride 2I
        out = _MixerOutput.apply(h, weight, conv, skip, z, 1e-6)
        return [out, *torch.autograd.grad(out, leaves, grad_out)]

    def fused_tail():
        z = up.chunk(2, dim=-1)[1]
        out = cpu_kernels.FusedCPUKernels(fused_ops).tail(h, weight, conv, skip, z, 1e-6)
        return [out, *torch.autograd.grad(out, leaves, grad_out)]

    eager, fused = tail(), fused_tail()
    for name, a, b in zip(["out", "h", "weight", "conv", "skip", "up"], fused, eager):
        assert close(a, b), (name, rel_err(a, b))
    assert eager[-1][..., :inner].abs().max() == 0  # the other half of the up-projection gets no gradient here


@pytest.mark.slow
@pytest.mark.parametrize("seq", [1, 3, 37, 70])  # shorter than the kernel, one block, block edges (32 rows)
def test_fused_conv_silu_matches_the_eager_conv_and_float64(fused_ops, seq):
    """silu(causal depthwise conv(x)) through the fused kernel, x the strided first half of the up-projection as in
    the mixer: output and the gradients of x, the weight and the bias against the eager `_CausalDepthwiseConv` +
    SiLU and against a float64 `F.conv1d` (left padding k - 1)."""
    batch, channels, kernel = 2, 24, 4
    gen = torch.Generator().manual_seed(1)
    up = torch.randn(batch, seq, 2 * channels, generator=gen).requires_grad_()
    weight = (0.5 * torch.randn(channels, 1, kernel, generator=gen)).requires_grad_()
    bias = (0.3 * torch.randn(channels, generator=gen)).requires_grad_()
    grad_out = torch.randn(batch, seq, channels, generator=gen)
    leaves = (up, weight, bias)

    def float64():
        x, w, b = (t.detach().double().requires_grad_() for t in leaves)
        padded = F.pad(x[..., :channels].transpose(1, 2), (kernel - 1, 0))
        out = F.silu(F.conv1d(padded, w, b, groups=channels)).transpose(1, 2)
        return [out, *torch.autograd.grad(out, (x, w, b), grad_out.double())]

    def eager():
        out = F.silu(_CausalDepthwiseConv.apply(up[..., :channels], weight, bias))
        return [out, *torch.autograd.grad(out, leaves, grad_out)]

    def fused():
        out = cpu_kernels.FusedCPUKernels(fused_ops).conv_silu(up[..., :channels], weight, bias)
        assert out.is_contiguous() and out.shape == (batch, seq, channels)
        return [out, *torch.autograd.grad(out, leaves, grad_out)]

    for name, a, b, reference in zip(["out", "x", "weight", "bias"], fused(), eager(), float64()):
        assert close(a, reference, tol=1e-6) and close(a, b, tol=1e-6), (name, rel_err(a, reference), rel_err(a, b))
    assert fused()[1][..., channels:].abs().max() == 0  # the up-projection's other half gets no gradient here


@pytest.mark.slow
@pytest.mark.parametrize(
    "inner, heads, block, width",
    # 16-wide tiles (the AVX2 path) within heads and straddling two; 8-wide tiles (the generic path), likewise
    [(64, 2, 4, 16), (48, 2, 4, 16), (40, 5, 2, 8), (24, 2, 2, 8)],
)
def test_fused_heads_match_the_eager_projections(fused_ops, inner, heads, block, width):
    """q = tiles(Wk^T Wq) c, k = c, v = tiles(Wv) x_mlstm in the cell's head layout, through the fused kernel: the
    outputs and the gradients of c, x_mlstm (a strided half of the up-projection) and both tile sets against the
    eager `_tiled_matmul` + `_tiles_to_heads` / `_rows_to_heads`, in float32 and float64."""
    batch, seq = 2, 19
    gen = torch.Generator().manual_seed(2)
    blocks = lambda: torch.randn(inner // block, block, block, generator=gen)  # noqa: E731
    qk_tiles, v_tiles = (mixers.block_tiles(blocks()).requires_grad_() for _ in range(2))
    assert qk_tiles.shape == (inner // width, width, width)
    conv = torch.randn(batch, seq, inner, generator=gen).requires_grad_()
    up = torch.randn(batch, seq, 2 * inner, generator=gen).requires_grad_()
    grads_out = [torch.randn(batch, heads, seq, inner // heads, generator=gen) for _ in range(3)]
    leaves = (conv, up, qk_tiles, v_tiles)

    def eager(dtype):
        c, u, qk, vt = (t.detach().to(dtype).requires_grad_() for t in leaves)
        x = u[..., :inner]
        q = mixers._tiles_to_heads(mixers._tiled_matmul(c, qk), batch, seq, heads)
        k = mixers._rows_to_heads(c.reshape(-1, inner), batch, seq, heads)
        v = mixers._tiles_to_heads(mixers._tiled_matmul(x, vt), batch, seq, heads)
        grads = torch.autograd.grad((q, k, v), (c, u, qk, vt), [g.to(dtype) for g in grads_out])
        return [q, k, v, *grads]

    q, k, v = cpu_kernels.FusedCPUKernels(fused_ops).heads(conv, up[..., :inner], qk_tiles, v_tiles, heads)
    fused = [q, k, v, *torch.autograd.grad((q, k, v), leaves, grads_out)]
    names = ["q", "k", "v", "conv", "up", "qk_tiles", "v_tiles"]
    for name, a, b, reference in zip(names, fused, eager(torch.float32), eager(torch.float64)):
        assert a.shape == reference.shape and a.is_contiguous(), (name, a.shape)
        assert close(a, reference, tol=1e-6) and close(a, b, tol=1e-6), (name, rel_err(a, reference), rel_err(a, b))


@pytest.mark.slow
def test_the_mixer_runs_the_fused_conv_and_heads_only_for_float32_cpu_training(fused):
    """Under "fused_cpu", inference, autocast and a float64 model keep the eager conv and projections; float32
    training takes the fused ones (and the fused cell and tail)."""
    config = AxLSTMConfig.from_preset("tiny", num_hidden_layers=1, hidden_size=48, num_heads=2, chunk_size=16)
    config.mixer_implementation = "fused_cpu"
    block = AxLSTMBlock(config, layer_idx=0).train()
    x = torch.randn(2, 40, 48)
    with torch.no_grad():
        block(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        block(x).float().sum().backward()
    block.double()(x.double().requires_grad_()).sum().backward()
    assert fused.used == [] and fused == []
    block.float()(x.requires_grad_()).sum().backward()
    assert fused.used[:2] == ["conv_forward", "heads_forward"] and {"conv_backward", "heads_backward"} <= set(
        fused.used
    ), fused.used


def test_a_failed_build_warns_and_leaves_the_model_on_the_folded_forms(monkeypatch, caplog):
    """`enable_fused_cpu_kernels` warns with the reason and leaves the model as it was; a model told to run
    "fused_cpu" anyway (its config) fails its first training step with that reason, not silently."""

    def no_compiler(verbose=False):
        raise RuntimeError("the fused CPU kernel needs 'c++' on PATH (a C++ compiler and ninja)")

    monkeypatch.setattr(cpu_kernels, "build", no_compiler)
    monkeypatch.setattr(cpu_kernels, "_kernels", None)
    config = AxLSTMConfig.from_preset("tiny", num_hidden_layers=1, hidden_size=48, num_heads=2, chunk_size=16)
    model = AxLSTMForPreTraining(config)
    with caplog.at_level(logging.WARNING, logger="hf_axlstm.cpu_kernels"):
        assert cpu_kernels.enable_fused_cpu_kernels(model) is False
    assert model.config.mixer_implementation == "auto"
    assert (
        "fused CPU kernels unavailable, training runs the eager forms: the fused CPU kernels are unavailable: the "
        "fused CPU kernel needs 'c++'" in caplog.text
    )
    with pytest.raises(RuntimeError, match="fused CPU kernels are unavailable: the fused CPU kernel needs 'c.."):
        model.set_mixer_implementation("fused_cpu")
    model.config.mixer_implementation = "fused_cpu"
    inputs = torch.randn(1, 40, 80)
    with torch.no_grad():  # inference never needs them
        model(inputs)
    with pytest.raises(RuntimeError, match="fused CPU kernels are unavailable"):
        model(inputs)


def test_the_build_is_named_for_the_torch_version_the_cpu_capability_and_the_source_hash(tmp_path, monkeypatch):
    """A cache shared by machines or torch versions never loads a build made for another one, nor a build of
    another source."""
    name, flags = cpu_kernels._build_flags()
    capability = torch.backends.cpu.get_cpu_capability()
    digest = re.fullmatch(r"hf_axlstm_cpu_kernels_.*_" + capability + r"_([0-9a-f]{16})", name)
    assert digest is not None, name
    assert torch.__version__.split("+")[0].replace(".", "_") in name
    assert "-fopenmp" in flags and ("-mavx2" in flags) == (capability in ("AVX2", "AVX512"))
    edited = tmp_path / "cpu_kernels.cpp"
    edited.write_bytes(Path(cpu_kernels.SOURCE).read_bytes() + b"\n// one more line\n")
    monkeypatch.setattr(cpu_kernels, "SOURCE", str(edited))
    other, _ = cpu_kernels._build_flags()
    assert other != name and other.rsplit("_", 1)[0] == name.rsplit("_", 1)[0]  # only the hash differs
    monkeypatch.setattr(cpu_kernels, "LDFLAGS", ["-fopenmp", "-lm"])
    assert cpu_kernels._build_flags()[0] not in (name, other)  # the flags are hashed too


# ------------------------------------------------------------------- the cache: locks, permissions, warnings
# These run `build` against a fake `cpp_extension.load` (it writes the library file as torch's would and counts the
# calls), so no compiler runs.


@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    from torch.utils import cpp_extension

    cache = tmp_path / "cache"
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(cache))
    monkeypatch.setattr(cpu_kernels, "_ops", None)
    monkeypatch.setattr(cpu_kernels, "_extension", cpu_kernels._extension)  # the custom ops' target, restored after
    monkeypatch.setattr(cpu_kernels.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    calls = []

    def load(name, sources, extra_cflags, extra_ldflags, build_directory, verbose):
        folder = Path(build_directory)
        assert not (folder / "lock").exists(), "torch would wait for ever on its stale lock file"
        library = folder / f"{name}.so"
        if not library.exists():
            library.write_bytes(b"a freshly built library")
        calls.append(name)
        return types.SimpleNamespace(name=name)

    monkeypatch.setattr(cpp_extension, "load", load)
    folder = cache / cpu_kernels._build_flags()[0]
    return types.SimpleNamespace(cache=cache, folder=folder, calls=calls)


def _build_fresh(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "_ops", None)  # as a new process
    return cpu_kernels.build()


def test_the_building_warning_appears_only_when_it_builds(fake_build, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="hf_axlstm.cpu_kernels"):
        _build_fresh(monkeypatch)
    assert "building the fused CPU kernels (once; about a minute, then cached in" in caplog.text
    assert "fused CPU kernels built" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hf_axlstm.cpu_kernels"):
        _build_fresh(monkeypatch)
        monkeypatch.setattr(cpu_kernels, "_kernels", None)
        assert isinstance(cpu_kernels.fused_kernels(), cpu_kernels.FusedCPUKernels)
    assert "building" not in caplog.text and "fused CPU kernels loaded" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(fake_build.calls) == 2


def test_a_replaced_or_torn_library_is_rebuilt_not_loaded(fake_build, monkeypatch, caplog):
    _build_fresh(monkeypatch)
    library = fake_build.folder / f"{fake_build.calls[0]}.so"
    library.write_bytes(b"planted, or cut short by a kill")
    with caplog.at_level(logging.WARNING, logger="hf_axlstm.cpu_kernels"):
        _build_fresh(monkeypatch)
    assert "building the fused CPU kernels" in caplog.text
    assert library.read_bytes() == b"a freshly built library"


def test_a_stale_lock_of_a_killed_build_is_removed(fake_build, monkeypatch, caplog):
    fake_build.folder.mkdir(parents=True, mode=0o700)
    (fake_build.folder / "lock").write_text("")  # torch's lock file, left by a build killed after 3 s
    (fake_build.folder / cpu_kernels.LOCK_FILE).write_text("999999999")  # ours, naming the dead process
    with caplog.at_level(logging.WARNING, logger="hf_axlstm.cpu_kernels"):
        assert _build_fresh(monkeypatch).name == fake_build.folder.name
    assert f"removed the lock file {fake_build.folder / 'lock'}, left by a build that was killed" in caplog.text
    assert not (fake_build.folder / "lock").exists()


_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("holding", flush=True)
time.sleep(60)
"""


def test_a_live_build_is_waited_for_at_most_build_wait_seconds(fake_build, monkeypatch):
    import subprocess
    import sys

    fake_build.folder.mkdir(parents=True, mode=0o700)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(fake_build.folder / cpu_kernels.LOCK_FILE)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline() == b"holding\n"
        monkeypatch.setattr(cpu_kernels, "BUILD_WAIT_SECONDS", 0.5)
        with pytest.raises(
            RuntimeError,
            match=f"waited 0.5 s for process {holder.pid}, which is building .*"
            f"{re.escape(str(fake_build.folder))}.*delete that folder",
        ):
            _build_fresh(monkeypatch)
        assert fake_build.calls == []
    finally:
        holder.kill()
        holder.wait()
    assert _build_fresh(monkeypatch).name == fake_build.folder.name  # its holder gone: the lock is free


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757], ids=["world-writable", "group-writable", "other-writable"])
@pytest.mark.parametrize("where", ["cache", "build-folder"])
def test_a_cache_others_can_write_to_is_refused(fake_build, monkeypatch, mode, where):
    fake_build.folder.mkdir(parents=True, mode=0o700)
    folder = fake_build.cache if where == "cache" else fake_build.folder
    folder.chmod(mode)
    with pytest.raises(RuntimeError, match=f"cache '{re.escape(str(folder))}' is writable by other users.*chmod go-w"):
        _build_fresh(monkeypatch)
    assert fake_build.calls == []


def test_a_cache_of_another_user_is_refused(fake_build, monkeypatch):
    import os

    fake_build.cache.mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(fake_build.cache).st_uid + 1)
    with pytest.raises(RuntimeError, match="belongs to another user.*TORCH_EXTENSIONS_DIR"):
        _build_fresh(monkeypatch)
    assert fake_build.calls == []


def test_a_refused_cache_leaves_training_on_the_eager_kernels(fake_build, monkeypatch, caplog):
    fake_build.cache.mkdir(mode=0o777)
    fake_build.cache.chmod(0o777)
    monkeypatch.setattr(cpu_kernels, "_kernels", None)
    model = AxLSTMForPreTraining(AxLSTMConfig.from_preset("tiny", num_hidden_layers=1))
    with caplog.at_level(logging.WARNING, logger="hf_axlstm.cpu_kernels"):
        assert cpu_kernels.enable_fused_cpu_kernels(model) is False
    assert (
        "training runs the eager forms: the fused CPU kernels are unavailable: the fused-kernel cache" in caplog.text
    )
    assert model.config.mixer_implementation == "auto"


# ------------------------------------------------------------------- the custom ops (torch.library) and torch.compile
# `build` registers the kernels as `hf_axlstm::*` custom ops with fake implementations; `opcheck` checks each one's
# schema, its fake implementation against the real outputs (shapes, strides, dtypes), that no output aliases an
# input, and that AOT autograd traces it with dynamic shapes.


def cell_inputs(flat=3, num_chunks=3, chunk=8, head_dim=8, value_dim=6, seed=0):
    """The fused cell's inputs as its caller forms them (contiguous): q, k (BH, NC, L, D), v (BH, NC, L, DV), the
    log gates b and row max (BH, NC, L) (the decay is formed from them), the state weight w, the floor, the key
    weight (BH, NC, L) and the per-chunk keep factor (BH, NC)."""
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(flat, num_chunks, chunk, head_dim, generator=gen) for _ in range(2))
    v = torch.randn(flat, num_chunks, chunk, value_dim, generator=gen)
    b = -torch.rand(flat, num_chunks, chunk, generator=gen).cumsum(-1)
    row_max = b.cummax(-1).values + 0.1 * torch.rand(flat, num_chunks, chunk, generator=gen)
    gates = [torch.rand(flat, num_chunks, chunk, generator=gen) + 0.5 for _ in range(3)]  # w, floor, key weight
    keep = torch.rand(flat, num_chunks, generator=gen)
    return q, k, v, b, row_max, gates[0], gates[1], keep, gates[2]


def cell_decay(b, row_max):
    """exp(b_j - row_max_i) on and below the diagonal, 0 above: (BH, NC, L, L), the decay the cell kernel takes."""
    lower = torch.ones(b.shape[-1], b.shape[-1]).tril()
    return (b.unsqueeze(-2) - row_max.unsqueeze(-1)).mul(lower).exp().mul(lower)


def mixer_inputs(batch=2, heads=3, seq=21, head_dim=8, seed=0):
    """h (B, NH, S, DH); the norm weight and skip (I,); conv_act (B, S, I); the up-projection (B, S, 2I), whose
    halves are strided (B, S, I) rows as in the mixer; the depthwise conv's taps (I, 4) and bias (I,)."""
    inner = heads * head_dim
    gen = torch.Generator().manual_seed(seed)
    return types.SimpleNamespace(
        h=torch.randn(batch, heads, seq, head_dim, generator=gen),
        norm_weight=0.3 * torch.randn(inner, generator=gen),
        skip=torch.randn(inner, generator=gen),
        conv=torch.randn(batch, seq, inner, generator=gen),
        up=torch.randn(batch, seq, 2 * inner, generator=gen),
        taps=0.5 * torch.randn(inner, 4, generator=gen),
        bias=0.3 * torch.randn(inner, generator=gen),
        inner=inner,
        heads=heads,
    )


OP_NAMES = [
    "cell_forward",
    "cell_backward",
    "tail_forward",
    "tail_backward",
    "conv_silu_forward",
    "conv_silu_backward",
    "heads_forward",
    "heads_backward",
]


def op_cases(fused_ops):
    """(op name, arguments) for each custom op, with realistic inputs (the backward ops get their forward's
    outputs); the cell with and without the states kept."""
    cases = []
    for keep_states in (True, False):
        q, k, v, b, row_max, w, floor, keep, key_weight = cell_inputs(seed=int(keep_states))
        decay = cell_decay(b, row_max)
        args = (q, k, v, decay, w, floor, keep, key_weight, 1e-6, keep_states)
        h, weighted, n_raw, normaliser, c_in, n_in = fused_ops.forward(*args)
        cases.append(("cell_forward", args))
        grad_h = torch.randn_like(h)
        back = (grad_h, q, k, v, decay, weighted, w, floor, keep, key_weight, n_raw, normaliser, h, c_in, n_in, 1e-6)
        cases.append(("cell_backward", back))
    m = mixer_inputs()
    x, z = m.up[..., : m.inner], m.up[..., m.inner :]  # strided rows
    silu_z = F.silu(z).contiguous()
    out, mean, rstd = fused_ops.tail_forward(m.h, m.norm_weight, m.conv, m.skip, silu_z, 1e-6)
    cases.append(("tail_forward", (m.h, m.norm_weight, m.conv, m.skip, silu_z, 1e-6)))
    tail_back = (
        torch.randn_like(out),
        m.h,
        mean,
        rstd,
        m.norm_weight,
        m.conv,
        m.skip,
        z,
        torch.sigmoid(z).contiguous(),
    )
    cases.append(("tail_backward", tail_back))
    act = fused_ops.conv_forward(x, m.taps, m.bias)
    cases.append(("conv_silu_forward", (x, m.taps, m.bias)))
    cases.append(("conv_silu_backward", (torch.randn_like(act), x, m.taps, m.bias)))
    tiles = [0.3 * torch.randn(m.inner // 8, 8, 8, generator=torch.Generator().manual_seed(s)) for s in (5, 6)]
    q, k, v = fused_ops.heads_forward(act, x, *tiles, m.heads)
    cases.append(("heads_forward", (act, x, *tiles, m.heads)))
    grads = [torch.randn_like(t) for t in (q, k, v)]
    cases.append(("heads_backward", (*grads, act, x, *tiles)))
    return cases


@pytest.mark.slow
def test_the_kernels_are_custom_ops_that_pass_opcheck(fused_ops):
    """Each of the 8 kernels is a `hf_axlstm::*` custom op whose schema, fake implementation (shapes, strides and
    dtypes of every output) and aliasing (none) opcheck accepts, and which AOT autograd traces with dynamic
    shapes."""
    cases = op_cases(fused_ops)
    assert sorted({name for name, _ in cases}) == sorted(OP_NAMES)
    for name, args in cases:
        op = getattr(torch.ops.hf_axlstm, name)
        schema = op.default._schema
        assert not any(a.alias_info for a in schema.arguments) and not any(r.alias_info for r in schema.returns)
        result = torch.library.opcheck(op, args)
        assert set(result.values()) == {"SUCCESS"}, (name, result)


@pytest.mark.slow
@pytest.mark.parametrize("keep_states", [True, False])
def test_the_cell_op_has_a_fixed_arity_and_takes_empty_states_back(fused_ops, keep_states):
    """`forward` always returns 6 tensors: the states entering each chunk, c_in (BH, NC, D, DV) and n_in (BH, NC, D),
    only when kept, else two empty ones, which `backward` takes back (it recomputes the states); both give the same
    gradients, and the outputs are fresh tensors (no input's storage)."""
    q, k, v, b, row_max, w, floor, keep, key_weight = cell_inputs(head_dim=8, value_dim=6)
    decay = cell_decay(b, row_max)
    args = (q, k, v, decay, w, floor, keep, key_weight, 1e-6)
    out = fused_ops.forward(*args, keep_states)
    assert len(out) == 6
    h, weighted, n_raw, normaliser, c_in, n_in = out
    assert h.shape == v.shape and weighted.shape == decay.shape and n_raw.shape == normaliser.shape == w.shape
    if keep_states:
        assert c_in.shape == (3, 3, 8, 6) and n_in.shape == (3, 3, 8)
    else:
        assert c_in.shape == n_in.shape == (0,)
    inputs = {t.untyped_storage().data_ptr() for t in (q, k, v, decay, w, floor, keep, key_weight)}
    assert not inputs & {t.untyped_storage().data_ptr() for t in out if t.numel()}
    grad_h = torch.randn_like(h)
    saved = (q, k, v, decay, weighted, w, floor, keep, key_weight, n_raw, normaliser, h)
    grads = fused_ops.backward(grad_h, *saved, c_in, n_in, 1e-6)
    recomputed = fused_ops.backward(grad_h, *saved, q.new_empty(0), q.new_empty(0), 1e-6)
    assert len(grads) == 9
    for grad, again, like in zip(grads, recomputed, (q, k, v, w, w, w, w, keep, key_weight)):
        assert grad.shape == like.shape and torch.isfinite(grad).all()
        assert close(grad, again, tol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_autograd_functions_keep_the_fused_ops(fused_ops, backend):
    """torch.compile(fullgraph=True) traces the autograd.Functions of `FusedCPUKernels` (what the "fused_cpu" mixer
    runs: conv + SiLU, heads, tail, the cell with and without kept states) without a graph break, keeps the ops in
    the graph, and gives the eager outputs and gradients."""
    m = mixer_inputs(seq=19)
    cell = cell_inputs(chunk=8, head_dim=8, value_dim=8)
    tiles = [0.3 * torch.randn(m.inner // 8, 8, 8, generator=torch.Generator().manual_seed(s)) for s in (5, 6)]
    head_shape = m.h.shape
    weight = m.taps.unsqueeze(1).clone()  # (I, 1, 4), as nn.Conv1d stores it
    leaves = [t.requires_grad_() for t in (m.up, weight, m.bias, m.norm_weight, m.skip, *tiles, *cell)]
    kernels = cpu_kernels.FusedCPUKernels(fused_ops)

    def step(up, weight, bias, norm_weight, skip, qk_tiles, v_tiles, q, k, v, b, row_max, w, floor, keep, key_weight):
        x, z = up[..., : m.inner], up[..., m.inner :]
        act = kernels.conv_silu(x, weight, bias)  # (B, S, I)
        heads = kernels.heads(act, x, qk_tiles, v_tiles, m.heads)  # 3 x (B, NH, S, DH)
        h = act.view(head_shape[0], head_shape[2], head_shape[1], head_shape[3]).transpose(1, 2).contiguous()
        out = kernels.tail(h, norm_weight, act, skip, z, 1e-6)
        terms = [t.unsqueeze(0) for t in (q, k, v, b, row_max, w, floor, keep, key_weight)]  # batch 1, BH heads
        kept = kernels.cell(*terms, 1e-6, 1.0, True)
        recomputed = kernels.cell(*terms, 1e-6, 1.0, False)
        return out, *heads, kept, recomputed

    def run(fn):
        outs = fn(*leaves)
        loss = sum((o * torch.linspace(-1, 1, o.numel()).view(o.shape)).sum() for o in outs)
        return [*outs, *torch.autograd.grad(loss, leaves)]

    traced = []

    def recording(gm, example_inputs):  # the ops called in the graph and its subgraphs (the autograd.Functions')
        graphs = [mod.graph for mod in gm.modules() if isinstance(mod, torch.fx.GraphModule)]
        traced.append({str(node.target) for graph in graphs for node in graph.nodes if node.op == "call_function"})
        return torch._dynamo.backends.registry.lookup_backend(backend)(gm, example_inputs)

    torch._dynamo.reset()
    try:
        compiled = run(torch.compile(step, fullgraph=True, backend=recording))
    finally:
        torch._dynamo.reset()
    eager = run(step)
    assert len(traced) == 1, traced  # one graph
    assert {f"hf_axlstm.{name}" for name in OP_NAMES} <= traced[0], traced
    names = ["out", "heads q", "heads k", "heads v", "cell kept", "cell recomputed", "up", "weight", "bias"]
    names += ["norm_weight", "skip", "qk_tiles", "v_tiles"]
    names += ["q", "k", "v", "b", "row_max", "w", "floor", "keep", "key_weight"]
    assert len(compiled) == len(eager) == len(names)
    for name, a, b in zip(names, compiled, eager):
        assert a.shape == b.shape and close(a, b, tol=1e-6), (name, rel_err(a, b))
    assert all(torch.isfinite(a).all() and a.abs().sum() > 0 for a in compiled), "an all-zero or non-finite gradient"


@pytest.mark.slow
def test_a_compiled_pretraining_step_keeps_the_fused_kernels(fused_ops, monkeypatch):
    """torch.compile of a model running "fused_cpu" traces the fused conv, heads, cell and tail (custom ops; before
    they were switched off under compile) and gives the eager step's loss and gradients."""
    config = AxLSTMConfig.from_preset(
        "tiny", num_hidden_layers=2, hidden_size=48, num_heads=2, chunk_size=16, mlstm_backend="chunkwise"
    )
    torch.manual_seed(0)
    model = AxLSTMForPreTraining(config).train()
    with torch.no_grad():
        for mixer in (layer.mixer for layer in model.axlstm.layers):
            mixer.gate_proj.weight.normal_(0, 0.1)  # gates that depend on the input
    model.set_mixer_implementation("fused_cpu")
    calls = record_fused_steps(monkeypatch)
    inputs, noise = torch.randn(2, 200, 80), torch.rand(2, 250)

    def step(net):
        net.zero_grad(set_to_none=True)
        loss = net(input_values=inputs, noise=noise).loss
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    eager_loss, eager_grads = step(model)
    calls.clear()
    torch._dynamo.reset()
    try:
        loss, grads = step(torch.compile(model))
    finally:
        torch._dynamo.reset()
    assert set(calls) == {"conv_silu", "heads", "cell", "tail"}, calls  # traced into the graph
    assert torch.allclose(loss, eager_loss, rtol=1e-6), (loss, eager_loss)
    for (name, _), got, want in zip(model.named_parameters(), grads, eager_grads):
        assert close(got, want), (name, rel_err(got, want))

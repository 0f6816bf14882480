"""The mLSTM kernels and the fused mixer compute the authors' function: every backend against a plain float64
reference of the formula (forward and gradients), at awkward lengths, through the model in both directions, with and
without padding, and on the official fixture checkpoint."""

import math

import pytest
import torch
import torch.nn.functional as F

from hf_axlstm import kernels_axlstm
from hf_axlstm.configuration_axlstm import AxLSTMConfig
from hf_axlstm.kernels_axlstm import mlstm, mlstm_chunkwise_graph, resolve_cell, select_backend, select_chunk_size
from hf_axlstm.mixers_axlstm import _CausalDepthwiseConv, _MixerOutput
from hf_axlstm.modeling_axlstm import AxLSTMMixer, AxLSTMModel

from .conftest import rel_err


def reference_mlstm(q, k, v, igate, fgate, eps=1e-6):
    """The formula as written, in float64: log D from a lower-triangular sum, stabiliser = row max, then normalise."""
    q, k, v, igate, fgate = (t.double() for t in (q, k, v, igate, fgate))
    seq = q.shape[-2]
    lower = torch.ones(seq, seq, dtype=torch.float64).tril()  # lower[i, t] = 1 for t <= i
    log_f = F.logsigmoid(fgate)  # (B, NH, S)
    upto = log_f @ lower.T  # upto[i] = sum_{t <= i} log f_t
    log_d = upto.unsqueeze(-1) - upto.unsqueeze(-2) + igate.unsqueeze(-2)  # sum_{t=j+1..i} log f_t + i_j
    log_d = log_d.masked_fill(lower == 0, -math.inf)
    m = log_d.max(dim=-1, keepdim=True).values
    c = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1]) * torch.exp(log_d - m)
    n = torch.maximum(c.sum(dim=-1, keepdim=True).abs(), torch.exp(-m))
    return (c @ v) / (n + eps)


def random_inputs(batch, heads, seq, head_dim, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, seq, head_dim, generator=gen) for _ in range(3))
    igate = torch.randn(batch, heads, seq, generator=gen)
    fgate = torch.randn(batch, heads, seq, generator=gen) * 2 + torch.linspace(3, 6, heads)[None, :, None]
    tensors = [q, k, v, igate, fgate]
    return [t.requires_grad_(requires_grad) for t in tensors]


def close(actual, expected, tol=1e-5):
    """Relative error in norm, with an absolute floor for tensors that are (almost) zero, e.g. d/df at S = 1."""
    diff = (actual.double() - expected.double()).norm().item()
    return diff <= tol * expected.double().norm().item() + 1e-9


@pytest.mark.parametrize("backend", ["parallel", "chunkwise", "auto"])
@pytest.mark.parametrize("seq", [1, 5, 16, 17, 40, 64])
def test_kernel_matches_reference_forward_and_backward(backend, seq):
    inputs = random_inputs(2, 3, seq, 8, seed=seq, requires_grad=True)
    expected = reference_mlstm(*inputs)
    grad_out = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected_grads = torch.autograd.grad(expected, inputs, grad_out)
    out = mlstm(*inputs, backend=backend, chunk_size=16)  # 1, 5 < chunk; 17, 40 not multiples; 16, 64 multiples
    grads = torch.autograd.grad(out, inputs, grad_out.float())
    assert out.dtype == torch.float32
    assert close(out, expected), rel_err(out, expected)
    for name, g, eg in zip("q k v igate fgate".split(), grads, expected_grads):
        assert close(g, eg), (name, rel_err(g, eg))


@pytest.mark.parametrize("backend", ["parallel", "chunkwise"])
def test_kernel_gradients_where_the_normaliser_floor_exp_minus_m_wins(backend):
    q, k, v, igate, fgate = random_inputs(2, 2, 40, 8, seed=11)
    igate = (igate - 12.0).detach().requires_grad_()  # tiny input gates: max(|n|, exp(-m)) takes exp(-m)
    inputs = [t.detach().requires_grad_() for t in (q, k, v)] + [igate, fgate.detach().requires_grad_()]
    expected = reference_mlstm(*inputs)
    expected_grads = torch.autograd.grad(expected.sum(), inputs)
    out = mlstm(*inputs, backend=backend, chunk_size=16)
    for g, eg in zip(torch.autograd.grad(out.sum(), inputs), expected_grads):
        assert close(g, eg), rel_err(g, eg)


@pytest.mark.parametrize("backend", ["parallel", "chunkwise", "graph"])
def test_kernels_where_the_forget_gates_erase_the_past(monkeypatch, backend):
    """Forget gates near -4 (log f = -4 per step) and input gates spread over +-40: most of the decay matrix lies
    below exp(-87), where the kernels clamp the exponent (`_DECAY_LOG_FLOOR`, against torch's slow exp path). The
    output and gradients equal those without the clamp, and the float64 formula's (which underflows to exact zeros
    there) within float32's cancellation error for such gates."""
    q, k, v, igate, fgate = random_inputs(2, 2, 90, 8, seed=12)
    igate, fgate = igate * 40.0, fgate - fgate.mean() - 4.0
    inputs = [t.detach().requires_grad_() for t in (q, k, v, igate, fgate)]
    lower = torch.ones(90, 90).tril().bool()
    log_f = F.logsigmoid(fgate.double()).cumsum(-1)
    log_d = log_f.unsqueeze(-1) - log_f.unsqueeze(-2) + igate.double().unsqueeze(-2)
    log_d = log_d.masked_fill(~lower, -math.inf)
    below = (log_d - log_d.amax(dim=-1, keepdim=True))[..., lower] < -87
    assert below.double().mean() > 0.5  # most entries are in the clamped range

    def run():
        if backend == "graph":
            out = mlstm_chunkwise_graph(*inputs, chunk_size=16)
        else:
            out = mlstm(*inputs, backend=backend, chunk_size=16)
        return [out, *torch.autograd.grad(out.sum(), inputs)]

    clamped = run()
    monkeypatch.setattr(kernels_axlstm, "_DECAY_LOG_FLOOR", -math.inf)
    unclamped = run()
    expected = reference_mlstm(*inputs)
    reference = [expected, *torch.autograd.grad(expected.sum(), inputs)]
    for name, a, b, r in zip("h q k v igate fgate".split(), clamped, unclamped, reference):
        assert close(a, b, tol=1e-6) and close(a, r, tol=1e-3), (name, rel_err(a, b), rel_err(a, r))


@pytest.mark.parametrize("seq", [1, 5, 16, 17, 40, 64, 200])
def test_loop_free_chunkwise_form_matches_reference(seq):
    """The form the ONNX export records (no loop over the chunks): same function, with and without `aligned`."""
    inputs = random_inputs(2, 3, seq, 8, seed=seq)
    expected = reference_mlstm(*inputs)
    out = mlstm_chunkwise_graph(*inputs, chunk_size=16)
    assert out.shape == expected.shape and out.dtype == torch.float32
    assert close(out, expected), rel_err(out, expected)
    pad = -seq % 16
    padded = [F.pad(t, (0, 0, 0, pad)) if t.ndim == 4 else F.pad(t, (0, pad)) for t in inputs]
    aligned = mlstm_chunkwise_graph(*padded, chunk_size=16, aligned=True)[:, :, :seq]
    assert close(aligned, expected), rel_err(aligned, expected)


def test_chunkwise_long_sequence_matches_reference():
    inputs = random_inputs(1, 2, 300, 16, seed=3)
    expected = reference_mlstm(*inputs)
    for chunk in (32, 64, 100):
        assert close(mlstm(*inputs, backend="chunkwise", chunk_size=chunk), expected), chunk


@pytest.mark.parametrize("backend", ["parallel", "chunkwise"])
def test_kernel_padding_after_real_positions_changes_nothing(backend):
    q, k, v, igate, fgate = random_inputs(1, 2, 37, 8, seed=5)
    garbage = random_inputs(1, 2, 11, 8, seed=6)
    padded = [torch.cat([t, g * 100], dim=2) for t, g in zip((q, k, v, igate, fgate), garbage)]
    alone = mlstm(q, k, v, igate, fgate, backend=backend, chunk_size=16)
    together = mlstm(*padded, backend=backend, chunk_size=16)[:, :, :37]
    assert close(together, alone, 1e-6)


def test_kernel_keeps_gate_math_in_float32_under_autocast():
    inputs = random_inputs(1, 2, 70, 16, seed=7)
    expected = reference_mlstm(*inputs)
    low = [t.bfloat16() for t in inputs[:3]] + inputs[3:]
    for backend in ("parallel", "chunkwise"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = mlstm(*low, backend=backend, chunk_size=32)
        assert out.dtype == torch.bfloat16
        assert rel_err(out, expected) < 3e-2, backend


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("head_dim", [8, 40])  # chunk 16: states kept / recomputed on the float32 path
def test_chunkwise_training_under_autocast_of_float32_inputs(dtype, head_dim):
    """A float32 model's chunkwise training under autocast (16-bit products of float32 tensors) runs forward and
    backward and stays close to the float64 formula; the float32-only hand-written backward does not take it (it
    crashed on mixed dtypes once)."""
    inputs = random_inputs(2, 2, 70, head_dim, seed=11, requires_grad=True)
    grad_out = torch.randn(2, 2, 70, head_dim, generator=torch.Generator().manual_seed(12))
    expected = reference_mlstm(*inputs)
    expected_grads = torch.autograd.grad(expected, inputs, grad_out.double())
    with torch.autocast("cpu", dtype=dtype):
        out = mlstm(*inputs, backend="chunkwise", chunk_size=16)
    grads = torch.autograd.grad(out, inputs, grad_out)
    assert out.dtype == torch.float32 and rel_err(out, expected) < 3e-2
    for name, got, want in zip("q k v igate fgate".split(), grads, expected_grads):
        assert got.dtype == torch.float32 and rel_err(got, want) < 5e-2, (name, rel_err(got, want))


def test_auto_switches_to_chunkwise_for_long_sequences():
    assert select_backend(251, 384, 64) == "parallel"
    assert select_backend(251, 96, 64) == "chunkwise"
    assert select_backend(251, 96, 64, training=True) == "chunkwise"
    assert select_backend(251, 384, 64, training=True) == "parallel"
    assert select_backend(5001, 96, 64, cuda=True, batch_heads=4) == "parallel"
    assert select_backend(30_000, 96, 64, cuda=True, batch_heads=4) == "chunkwise"
    assert select_backend(10_000, 96, 64) == "chunkwise"


def cell_spec(seq, head_dim, chunk, training=False, device="cpu", dtype=torch.float32, fused=None, batch_heads=8):
    """What `resolve_cell` decides for an `auto` call of these sizes."""
    return resolve_cell("auto", chunk, seq, head_dim, batch_heads, device, dtype, training, True, fused)


def test_auto_crosses_to_chunkwise_earlier_for_training_with_the_fused_cpu_cell():
    """With the fused CPU kernels in the spec, float32 CPU training takes the chunkwise form from 0.72 x (head_dim +
    chunk) positions (AUTO_CHUNKWISE_FACTOR_FUSED): small's 2 s crops (head_dim 192, 251 positions) train chunkwise,
    base's (384) keep the parallel form; inference, 16-bit training, autocast and CUDA keep their own rules, and the
    kernels are dropped from the spec wherever they do not apply."""
    kernels = object()  # resolve_cell only passes them on
    small, base = (251, 192, 64), (251, 384, 64)
    assert select_backend(*small, training=True) == "parallel"  # eager: 1.15 x 256 = 294
    assert select_backend(*small, training=True, fused=True) == "chunkwise"
    assert select_backend(*base, training=True, fused=True) == "parallel"  # 0.72 x 448 = 323
    assert select_backend(160, 192, 64, training=True, fused=True) == "parallel"  # 184
    assert select_backend(192, 192, 64, training=True, fused=True) == "chunkwise"
    spec = cell_spec(*small, training=True, fused=kernels)
    assert spec.form == "chunkwise" and spec.fused is kernels
    assert cell_spec(*base, training=True, fused=kernels)[:2] == ("parallel", 64)
    assert cell_spec(*base, training=True, fused=kernels).fused is None  # the parallel form has no fused cell
    assert cell_spec(*small, fused=kernels)[:2] == ("parallel", 64)  # inference
    assert cell_spec(*small, training=True, dtype=torch.bfloat16, fused=kernels).form == "parallel"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cell_spec(*small, training=True, fused=kernels).form == "parallel"
    assert cell_spec(*small, training=True, device="cuda", fused=kernels, batch_heads=128).form == "parallel"
    assert resolve_cell("auto", 64, 251, 192, 8, "cpu", torch.float32, True, False, kernels).form == "parallel"


def test_auto_training_chunk_follows_the_head_width_on_cpu():
    # The presets' head dims at 10 s (1251 tokens): 64 / 128 / 256; 2 s crops of tiny keep 64.
    assert [select_chunk_size(1251, d, 64, True) for d in (96, 192, 384)] == [64, 128, 256]
    assert select_chunk_size(251, 96, 64, True) == 64
    # A longer chunk that pads the sequence by more than 15% is passed over for the next shorter one.
    assert select_chunk_size(640, 384, 64, True) == 128  # 256 would pad 640 to 768
    assert select_chunk_size(320, 192, 64, True) == 64  # 128 would pad 320 to 384
    assert select_chunk_size(448, 192, 64, True) == 128  # 512: 14% padding
    assert select_chunk_size(1251, 95, 64, True) == 64  # heads up to 1.5 chunks keep the configured chunk
    assert select_chunk_size(1251, 96, 32, True) == 64  # relative to the configured chunk
    # Only hand-written CPU training: inference, CUDA, 16-bit, autocast and autograd training keep the configured one.
    assert cell_spec(1251, 384, 64, training=True)[:2] == ("chunkwise", 256)
    assert cell_spec(1251, 384, 64)[:2] == ("chunkwise", 64)
    assert cell_spec(1251, 384, 64, training=True, device="cuda", batch_heads=1 << 20)[:2] == ("chunkwise", 64)
    assert cell_spec(1251, 384, 64, training=True, dtype=torch.bfloat16)[:2] == ("chunkwise", 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cell_spec(1251, 384, 64, training=True)[:2] == ("chunkwise", 64)
    assert resolve_cell("auto", 64, 1251, 384, 8, "cpu", torch.float32, True, False)[:2] == ("chunkwise", 64)


def test_model_trains_auto_chunkwise_with_the_wider_chunk_and_the_same_function(monkeypatch):
    """Under `auto`, a training step on a CPU runs the chunkwise form with `select_chunk_size`'s chunk (padded to it)
    and computes the same function as the configured chunk (both against a float64 parallel-form copy); inference
    and autocast training keep the configured chunk."""
    import copy

    from hf_axlstm import mixers_axlstm

    # head_dim 48 (hidden 48, 2 heads, expansion 2): chunk 16 x 2 = 32 satisfies 3 x 32 <= 2 x 48.
    config = AxLSTMConfig(hidden_size=48, num_heads=2, num_hidden_layers=2, chunk_size=16)
    torch.manual_seed(0)
    model = AxLSTMModel(config).train()
    frames = torch.randn(2, 160, 80)  # 40 time patches x 5 + CLS = 201 tokens: 224 in chunks of 32, 208 of 16
    calls = []
    kernel = mixers_axlstm.run_cell

    def spy(q, k, v, igate, fgate, spec, eps):
        calls.append((spec.form, spec.chunk_size, q.shape[2]))
        return kernel(q, k, v, igate, fgate, spec, eps)

    monkeypatch.setattr(mixers_axlstm, "run_cell", spy)

    def step(net, backend, values):
        net.config.mlstm_backend = backend
        net.zero_grad(set_to_none=True)
        out = net(values).last_hidden_state
        out.square().mean().backward()
        return out.detach().double(), [p.grad.double() for p in net.parameters() if p.grad is not None]

    reference = copy.deepcopy(model).double()
    expected, expected_grads = step(reference, "parallel", frames.double())
    calls.clear()
    results = {name: step(model, name, frames) for name in ("auto", "chunkwise")}  # "chunkwise": config's chunk
    assert calls == [("chunkwise", 32, 224)] * 2 + [("chunkwise", 16, 208)] * 2, calls
    for name, (out, grads) in results.items():
        assert rel_err(out, expected) < 1e-5, name
        # float32 rounding reaches a few 1e-3 on the gate parameters, whose gradients are ~1e-8 at init (both chunks
        # alike); a wrong padding or chunk boundary would be O(1).
        errors = [rel_err(got, want) for got, want in zip(grads, expected_grads)]
        assert len(grads) == len(expected_grads) and max(errors) < 1e-2, (name, max(errors))
    calls.clear()
    model.config.mlstm_backend = "auto"
    with torch.no_grad():
        model(frames)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # 16-bit training keeps the configured chunk too
        model(frames)
    assert [c[1] for c in calls] == [16] * 4, calls


def test_invalid_backend_raises_with_message():
    inputs = random_inputs(1, 1, 4, 4)
    with pytest.raises(ValueError, match="not a known mLSTM backend"):
        mlstm(*inputs, backend="flash")
    with pytest.raises(ValueError, match="triton"):
        mlstm(*inputs, backend="triton")  # CPU tensors (and usually no mlstm_kernels): a clear error


# --------------------------------------------------------------------------------------------------- the mixer


def reference_mixer(mixer: AxLSTMMixer, x: torch.Tensor) -> torch.Tensor:
    """The authors' formulation from the same parameters: per-block einsums, concat(q, k, v) into the gate linear,
    padded Conv1d, the quadratic kernel."""
    inner = mixer.learnable_skip.shape[0]
    x_mlstm, z = mixer.proj_up(x).chunk(2, dim=-1)
    conv = mixer.conv.conv
    conv_act = F.silu(conv(F.pad(x_mlstm.transpose(1, 2), (conv.kernel_size[0] - 1, 0))).transpose(1, 2))

    def block_diag(proj, t):
        return torch.einsum("...bi,boi->...bo", t.unflatten(-1, (-1, proj.block_size)), proj.weight).flatten(-2)

    q, k, v = block_diag(mixer.q_proj, conv_act), block_diag(mixer.k_proj, conv_act), block_diag(mixer.v_proj, x_mlstm)
    igate, fgate = mixer.gate_proj(torch.cat([q, k, v], dim=-1)).transpose(1, 2).chunk(2, dim=1)
    heads = mixer.num_heads

    def split(t):
        return t.view(t.shape[0], t.shape[1], heads, inner // heads).transpose(1, 2)

    h = reference_mlstm(split(q), split(k), split(v), igate, fgate, eps=mixer.config.mlstm_eps).float()
    h = F.layer_norm(h.transpose(1, 2), (inner // heads,), eps=mixer.out_norm.eps).flatten(2)
    h = h * (1 + mixer.out_norm.weight)
    return mixer.proj_down((h + mixer.learnable_skip * conv_act) * F.silu(z))


@pytest.mark.parametrize("hidden_size,qkv_block_size", [(32, 4), (24, 4), (36, 3)])
def test_mixer_implementations_match_authors_formulation(hidden_size, qkv_block_size):
    # (24, 4): head_dim 12 is not a multiple of the 16-channel tile; (36, 3): blocks of 3 (tiles of 30 channels).
    config = AxLSTMConfig(hidden_size=hidden_size, num_hidden_layers=1, qkv_block_size=qkv_block_size, chunk_size=8)
    torch.manual_seed(0)
    mixer = AxLSTMMixer(config)
    with torch.no_grad():
        for p in mixer.parameters():
            p.normal_(0, 0.3)
        mixer.gate_proj.bias[config.num_heads :] += 3.0
    x = torch.randn(2, 21, hidden_size)
    expected = reference_mixer(mixer, x)
    expected_grads = torch.autograd.grad(expected.square().sum(), list(mixer.parameters()))
    for implementation, backend in (("folded", "parallel"), ("folded", "chunkwise"), ("plain", "parallel")):
        config.mixer_implementation, config.mlstm_backend = implementation, backend
        out = mixer(x)
        assert rel_err(out, expected) < 1e-5, (implementation, backend)
        grads = torch.autograd.grad(out.square().sum(), list(mixer.parameters()))
        for g, eg in zip(grads, expected_grads):
            assert rel_err(g, eg) < 1e-4, (implementation, backend)
        with torch.no_grad():  # the inference path: cached derived weights, in-place tail
            assert rel_err(mixer(x), expected) < 1e-5, (implementation, backend)
            assert rel_err(mixer(x), expected) < 1e-5, (implementation, backend)  # served from the cache


def test_mixer_inference_cache_follows_parameter_updates():
    config = AxLSTMConfig(hidden_size=32, num_hidden_layers=1, chunk_size=8)
    torch.manual_seed(0)
    mixer = AxLSTMMixer(config)
    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        mixer(x)  # fills the cache
        for p in (mixer.q_proj.weight, mixer.k_proj.weight, mixer.v_proj.weight, mixer.gate_proj.weight):
            p.normal_(0, 0.3)  # in place: same storage, new version
        mixer.proj_up.weight = torch.nn.Parameter(torch.randn_like(mixer.proj_up.weight))  # new storage
        assert rel_err(mixer(x), reference_mixer(mixer, x)) < 1e-5


@pytest.mark.parametrize("onednn", [True, False], ids=["conv2d-rows", "shifted"])
@pytest.mark.parametrize("seq", [1, 2, 3, 4, 9])
def test_causal_conv_matches_padded_conv1d_forward_and_backward(monkeypatch, seq, onednn):
    # Both computations: the channels-last conv2d on the rows (CPU) and the shifted multiply-adds (CUDA).
    from hf_axlstm import mixers_axlstm

    monkeypatch.setattr(mixers_axlstm, "_onednn_rows", lambda t: onednn)
    torch.manual_seed(seq)
    x = torch.randn(2, seq, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 1, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)
    expected = F.conv1d(F.pad(x.transpose(1, 2), (3, 0)), weight, bias, groups=5).transpose(1, 2)
    torch.testing.assert_close(_CausalDepthwiseConv.apply(x, weight, bias), expected)
    assert torch.autograd.gradcheck(_CausalDepthwiseConv.apply, (x, weight, bias))
    with torch.no_grad():
        torch.testing.assert_close(_CausalDepthwiseConv.apply(x, weight, bias), expected)


# --------------------------------------------------------------------------------------------------- the model


def small_model(**overrides) -> AxLSTMModel:
    config = AxLSTMConfig(hidden_size=32, num_hidden_layers=2, chunk_size=16, **overrides)
    torch.manual_seed(0)
    return AxLSTMModel(config).eval()


def test_model_chunkwise_equals_parallel_both_directions_padded_and_unpadded():
    model = small_model()
    frames = torch.randn(2, 44, 80)  # 11 time patches x 5 + CLS = 56 tokens: 3.5 chunks of 16
    attention_mask = torch.ones(2, 44, dtype=torch.long)
    attention_mask[1, 25:] = 0
    outputs = {}
    for backend in ("parallel", "chunkwise"):
        model.config.mlstm_backend = backend
        with torch.no_grad():
            outputs[backend] = (
                model(frames).last_hidden_state,
                model(frames, attention_mask=attention_mask).last_hidden_state,
                model(frames[1:, :25]).last_hidden_state,
            )
    for a, b in zip(outputs["parallel"], outputs["chunkwise"]):
        assert rel_err(b, a) < 1e-5
    # The padded clip (reversed blocks included) gets exactly what it gets alone.
    real = outputs["chunkwise"][2].shape[1]
    assert rel_err(outputs["chunkwise"][1][1:, :real], outputs["chunkwise"][2]) < 1e-5


def test_fixture_parity_for_every_backend(official_dir, expected):
    from hf_axlstm.convert_official import convert_checkpoint

    model = convert_checkpoint(official_dir / "official_checkpoint.pth")
    inputs = expected["lms"][:, 0]
    for implementation in ("plain", "folded", "auto"):
        model.set_mixer_implementation(implementation)
        for backend, chunk in (("parallel", 64), ("chunkwise", 64), ("chunkwise", 16), ("auto", 64)):
            model.config.mlstm_backend = backend
            model.config.chunk_size = chunk
            with torch.no_grad():
                out = model(inputs, mask=expected["mask"])
            assert rel_err(out.logits, expected["pred"]) < 1e-5, (implementation, backend, chunk)


@pytest.mark.parametrize("backend", ["parallel", "chunkwise"])
def test_every_mixer_implementation_computes_the_plain_function(backend, monkeypatch):
    """The registered implementations against the paper-shaped `plain_forward`, in float64 (outputs and every
    parameter's gradient of a pretraining loss, a padded batch, both directions) and in float32 inference; and each
    name runs its own code (only "plain" calls `plain_forward`)."""
    from hf_axlstm import AxLSTMForPreTraining
    from hf_axlstm.mixers_axlstm import ALL_MIXER_IMPLEMENTATIONS

    plain_calls = []
    plain_forward = AxLSTMMixer.plain_forward
    monkeypatch.setattr(
        AxLSTMMixer, "plain_forward", lambda self, *a: plain_calls.append(1) or plain_forward(self, *a)
    )

    config = AxLSTMConfig(hidden_size=32, num_hidden_layers=2, chunk_size=16, mlstm_backend=backend)
    torch.manual_seed(0)
    model = AxLSTMForPreTraining(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))  # gates, norms and skips away from their initial values
    frames = torch.randn(2, 44, 80)
    attention_mask = torch.ones(2, 44, dtype=torch.long)
    attention_mask[1, 25:] = 0
    noise = torch.rand(2, 55)

    def run(net, dtype, grad):
        net.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(grad):
            out = net(frames.to(dtype), attention_mask=attention_mask, noise=noise)
        if grad:
            out.loss.backward()
        real = out.logits.detach()[out.patch_mask]  # padded patches hold unspecified values
        return [out.loss.detach(), real] + ([p.grad for p in net.parameters()] if grad else [])

    results = {}
    for name in ALL_MIXER_IMPLEMENTATIONS.names():  # auto, plain, folded, fused_cpu (outside float32 training: folded)
        config.mixer_implementation = name  # (the setter would build the fused kernels, which no call here runs)
        plain_calls.clear()
        results[name] = run(model.double(), torch.float64, True), run(model.float(), torch.float32, False)
        assert len(plain_calls) == (4 if name == "plain" else 0), (name, len(plain_calls))  # 2 blocks x 2 runs
    assert {"plain", "folded"} <= results.keys()
    plain64, plain32 = results.pop("plain")
    for name, (got64, got32) in results.items():
        assert len(got64) == len(plain64) == 2 + len(list(model.parameters()))
        # The chunkwise cell sums the gates in float32 even for a float64 model (kernels_axlstm, "Precision"), so
        # there gate pre-activations equal to float64 rounding can round apart in float32: 1e-8 level, not 1e-15.
        tol = 1e-10 if backend == "parallel" else 1e-6
        for index, (got, want) in enumerate(zip(got64, plain64)):
            assert rel_err(got, want) < tol, (name, index, rel_err(got, want))
        for got, want in zip(got32, plain32):
            assert rel_err(got, want) < 1e-5, (name, rel_err(got, want))


def test_mixer_output_function_gradients_match_autograd_of_the_formula():
    torch.manual_seed(0)
    batch, heads, seq, head_dim = 2, 3, 5, 4
    inner = heads * head_dim
    h = torch.randn(batch, heads, seq, head_dim, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(inner, dtype=torch.float64, requires_grad=True)
    conv_act = torch.randn(batch, seq, inner, dtype=torch.float64, requires_grad=True)
    skip = torch.randn(inner, dtype=torch.float64, requires_grad=True)
    up = torch.randn(batch, seq, 2 * inner, dtype=torch.float64, requires_grad=True)  # z is a strided half of it

    def tail(h, weight, conv_act, skip, up):
        return _MixerOutput.apply(h, weight, conv_act, skip, up[..., inner:], 1e-5)

    normed = F.layer_norm(h.transpose(1, 2), (head_dim,), eps=1e-5).flatten(2) * (1 + weight)
    expected = (normed + skip * conv_act) * F.silu(up[..., inner:])
    torch.testing.assert_close(tail(h, weight, conv_act, skip, up), expected)
    assert torch.autograd.gradcheck(tail, (h, weight, conv_act, skip, up))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_recomputing_backward_under_autocast_matches_autograd(monkeypatch, dtype):
    """Under autocast the recomputing parallel backward keeps the autograd path's precision (16-bit products, float32
    decay / C / normaliser) and agrees with it and with the float64 reference."""

    inputs = random_inputs(2, 3, 40, 16, seed=3, requires_grad=True)
    grad_out = torch.randn(2, 3, 40, 16, generator=torch.Generator().manual_seed(4))
    expected = reference_mlstm(*inputs)
    expected_grads = torch.autograd.grad(expected, inputs, grad_out.double())
    results = {}
    for recompute in (False, True):
        with torch.autocast("cpu", dtype=dtype):
            out = mlstm(*inputs, backend="parallel", recompute=recompute)
        results[recompute] = out, torch.autograd.grad(out, inputs, grad_out)
    (out_a, grads_a), (out_b, grads_b) = results[False], results[True]
    assert out_b.dtype == out_a.dtype == torch.float32  # the dtype of v, as on the autograd path
    assert rel_err(out_b, expected) < 3e-2 and rel_err(out_b, out_a) < 1e-2
    for name, ga, gb, ge in zip("q k v igate fgate".split(), grads_a, grads_b, expected_grads):
        assert gb.dtype == ga.dtype, name
        assert rel_err(gb, ge) < 5e-2 and rel_err(gb, ga) < 3e-2, (name, rel_err(gb, ge), rel_err(gb, ga))


# (seq, head_dim, value_dim, igate_shift) for chunk 16: partial chunks, a value dim unlike the head dim, gates where the
# exp(-m) floor wins (very negative input gates) or the states dominate, heads wide enough that the states are
# recomputed in the backward (25, 40 > 1.5 chunks). At +5 the normaliser's cancellation leaves every float32 path
# 1e-5-3e-4 off the float64 formula.
CHUNKWISE_TRAINING_CASES = [
    (17, 8, 8, 0.0),
    (64, 8, 12, 0.0),
    (100, 8, 8, -30.0),
    (37, 8, 8, 5.0),
    (48, 8, 5, -12.0),
    (37, 25, 25, 0.0),
    (64, 40, 28, -30.0),
    (100, 40, 40, 2.0),
]


def chunkwise_training_case(seq, head_dim, value_dim, igate_shift):
    """Leaf inputs (q, k, v, igate, fgate), an upstream gradient, and the float64 formula's output and gradients."""
    q, k, _, igate, fgate = random_inputs(2, 3, seq, head_dim, seed=seq)
    v = torch.randn(2, 3, seq, value_dim, generator=torch.Generator().manual_seed(seq + 1))
    inputs = [t.detach().requires_grad_() for t in (q, k, v, igate + igate_shift, fgate)]
    grad_out = torch.randn(2, 3, seq, value_dim, generator=torch.Generator().manual_seed(seq + 2))
    expected = reference_mlstm(*inputs)
    return inputs, grad_out, expected, torch.autograd.grad(expected, inputs, grad_out.double())


@pytest.mark.parametrize("seq, head_dim, value_dim, igate_shift", CHUNKWISE_TRAINING_CASES)
def test_chunkwise_hand_written_backward_matches_autograd_and_the_reference(
    monkeypatch, seq, head_dim, value_dim, igate_shift
):
    """float32 training of the chunkwise form goes through `_ChunkwiseMLSTM`: its gradients equal autograd's through
    the chunk loop and the float64 formula's, for partial chunks, a value dim unlike the head dim, gates where the
    exp(-m) floor wins (very negative input gates) or the states dominate, and heads wide enough that the states are
    recomputed instead of kept."""
    from hf_axlstm import kernels_axlstm

    inputs, grad_out, expected, expected_grads = chunkwise_training_case(seq, head_dim, value_dim, igate_shift)
    calls = []
    apply = kernels_axlstm._ChunkwiseMLSTM.apply
    monkeypatch.setattr(kernels_axlstm._ChunkwiseMLSTM, "apply", lambda *a: calls.append(1) or apply(*a))
    results = {}
    for recompute in (False, True):
        out = mlstm(*inputs, backend="chunkwise", chunk_size=16, recompute=recompute)
        results[recompute] = out, torch.autograd.grad(out, inputs, grad_out)
    assert calls == [1]  # only the hand-written path ran it
    (out_a, grads_a), (out_b, grads_b) = results[False], results[True]
    assert out_b.shape == (2, 3, seq, value_dim)
    # Against the autograd path to 1e-5; against float64 to 1e-4 (large input gates, +5, cost both float32 paths
    # alike 3e-5 in the output).
    assert close(out_b, out_a) and close(out_b, expected, tol=1e-4), (rel_err(out_b, out_a), rel_err(out_b, expected))
    for name, ga, gb, ge in zip("q k v igate fgate".split(), grads_a, grads_b, expected_grads):
        assert close(gb, ga) and close(gb, ge, tol=1e-4), (name, rel_err(gb, ga), rel_err(gb, ge))


def test_chunkwise_hand_written_backward_routes_float32_training_and_keeps_states_for_narrow_heads(monkeypatch):
    """Every float32 chunkwise training call runs `_ChunkwiseMLSTM`: heads up to 1.5 chunks keep their states between
    the passes, wider ones recompute them; inference keeps its in-place path."""
    from hf_axlstm import kernels_axlstm

    calls = []
    apply = kernels_axlstm._ChunkwiseMLSTM.apply
    monkeypatch.setattr(
        kernels_axlstm._ChunkwiseMLSTM, "apply", lambda *a: calls.append((a[0].shape[-1], a[-1])) or apply(*a)
    )
    for head_dim in (24, 25):  # 1.5 x chunk 16 = 24
        inputs = random_inputs(1, 1, 40, head_dim, requires_grad=True)
        mlstm(*inputs, backend="chunkwise", chunk_size=16).sum().backward()
    with torch.no_grad():
        mlstm(*random_inputs(1, 1, 40, 8), backend="chunkwise", chunk_size=16)
    assert calls == [(24, True), (25, False)]


@pytest.mark.parametrize("head_dim, value_dim", [(24, 24), (40, 40), (40, 28)])
def test_chunkwise_hand_written_backward_keeps_the_states_only_for_narrow_heads(head_dim, value_dim):
    """What the chunkwise training form keeps for the backward: the (D x DV) state per chunk only where the head dim
    is at most 1.5 chunks; never q C_in, never the weighted keys."""
    batch, heads, seq, chunk = 2, 3, 64, 16
    q, k, _, igate, fgate = random_inputs(batch, heads, seq, head_dim, seed=3)
    v = torch.randn(batch, heads, seq, value_dim, generator=torch.Generator().manual_seed(4))
    inputs = [t.detach().requires_grad_() for t in (q, k, v, igate, fgate)]
    out = mlstm(*inputs, backend="chunkwise", chunk_size=chunk)
    nodes, node = [out.grad_fn], None
    while nodes and node is None:  # find the Function's node in the graph
        current = nodes.pop()
        if type(current).__name__ == "_ChunkwiseMLSTMBackward":
            node = current
        nodes.extend(fn for fn, _ in current.next_functions if fn is not None)
    shapes = [tuple(t.shape) for t in node.saved_tensors]
    num_chunks = seq // chunk
    state = (batch, heads, num_chunks, head_dim, value_dim)
    assert (state in shapes) == (2 * head_dim <= 3 * chunk), shapes
    # q, k, and (of the value width) v and h: nothing else of a chunk's (L x D) size.
    rows = (batch, heads, num_chunks, chunk)
    assert shapes.count(rows + (head_dim,)) == (2 if head_dim != value_dim else 4), shapes
    assert shapes.count(rows + (value_dim,)) == (2 if head_dim != value_dim else 4), shapes
    out.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in inputs)


@pytest.mark.parametrize("head_dim, padded", [(96, 128), (48, 64), (160, 192), (64, 64), (32, 32), (384, 384)])
def test_triton_head_dim_padding_is_exact(head_dim, padded):
    """NX-AI's kernel tiles head dims in blocks of min(64, next power of 2): 96 (tiny) read out of bounds. The wrapper
    zero-pads such dims; q . k with the kernel's 1 / sqrt(padded) scale and C v must equal the unpadded products."""
    from hf_axlstm.kernels_axlstm import _pad_head_dims

    q, k, v, _, _ = random_inputs(1, 2, 7, head_dim, seed=head_dim)
    qp, kp, vp = _pad_head_dims(q, k, v)
    assert qp.shape[-1] == kp.shape[-1] == vp.shape[-1] == padded
    scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)
    torch.testing.assert_close(qp @ kp.transpose(-2, -1) / math.sqrt(padded), scores)
    assert torch.equal(vp[..., :head_dim], v) and not vp[..., head_dim:].any()
    # with the sequence padded to whole chunks in the same pad: zero rows after the real ones
    qs, ks, vs = _pad_head_dims(q, k, v, seq_pad=3)
    assert qs.shape[-2:] == ks.shape[-2:] == vs.shape[-2:] == (10, padded)
    assert torch.equal(qs[..., :7, :], qp) and torch.equal(ks[..., :7, :], kp) and torch.equal(vs[..., :7, :], vp)
    assert not (qs[..., 7:, :].any() or ks[..., 7:, :].any() or vs[..., 7:, :].any())

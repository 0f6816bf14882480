"""CUDA paths: the model on a GPU computes the same function as on the CPU, for every backend, forward and backward,
with padding; bf16 / fp16 autocast stays within the stated error with finite gradients; the optional Triton backend
(NX-AI `mlstm_kernels`) agrees in inference.

Skipped where there is no GPU (CI has none); the sessions with a lent GPU run `python -m pytest tests/test_cuda.py`.
"""

import pytest
import torch

from hf_axlstm import AxLSTMConfig, AxLSTMForPreTraining, AxLSTMModel
from hf_axlstm.kernels_axlstm import _triton_chunkwise, mlstm

from .conftest import rel_err
from .test_kernels_axlstm import close, random_inputs, reference_mlstm
from .test_modeling_axlstm import perturbed, small_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def no_tf32():
    """float32 on CUDA means float32 here: TF32 matmuls (10-bit mantissa) would hide real errors."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def config(**overrides) -> AxLSTMConfig:
    # width 64, chunks of 16 so that 300 frames (376 tokens) cross many chunks; 4 blocks, two reversed
    return small_config(**{"hidden_size": 64, "chunk_size": 16, **overrides})


def padded_batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 300, 80, generator=gen)
    mask = torch.ones(2, 300, dtype=torch.long)
    mask[1, 180:] = 0
    return x, mask


@pytest.mark.parametrize("backend", ["parallel", "chunkwise"])
@pytest.mark.parametrize("seq", [17, 300])
def test_kernels_on_cuda_match_reference_forward_and_backward(backend, seq):
    inputs = [t.cuda().requires_grad_() for t in random_inputs(2, 3, seq, 32, seed=seq)]
    expected = reference_mlstm(*[t.detach().cpu() for t in inputs])
    cpu_inputs = [t.detach().cpu().double().requires_grad_() for t in inputs]
    grad_out = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected_grads = torch.autograd.grad(reference_mlstm(*cpu_inputs), cpu_inputs, grad_out)
    out = mlstm(*inputs, backend=backend, chunk_size=16)
    grads = torch.autograd.grad(out, inputs, grad_out.float().cuda())
    assert out.is_cuda and out.dtype == torch.float32
    assert close(out.cpu(), expected), rel_err(out.cpu(), expected)
    for name, g, eg in zip("q k v igate fgate".split(), grads, expected_grads):
        assert close(g.cpu(), eg, tol=1e-4), (name, rel_err(g.cpu(), eg))


@pytest.mark.parametrize("backend", ["parallel", "chunkwise", "auto"])
def test_model_on_cuda_matches_cpu_forward_and_backward(backend):
    torch.manual_seed(0)
    cpu_model = perturbed(AxLSTMForPreTraining(config(mlstm_backend=backend)))
    gpu_model = AxLSTMForPreTraining(config(mlstm_backend=backend)).cuda()
    gpu_model.load_state_dict(cpu_model.state_dict())
    x, mask = padded_batch()
    noise = torch.rand(2, 75 * 5, generator=torch.Generator().manual_seed(2))
    cpu_out = cpu_model(x, attention_mask=mask, noise=noise, output_hidden_states=True)
    gpu_out = gpu_model(x.cuda(), attention_mask=mask.cuda(), noise=noise.cuda(), output_hidden_states=True)
    assert torch.equal(gpu_out.mask.cpu(), cpu_out.mask)
    assert rel_err(gpu_out.hidden_states[-1].cpu(), cpu_out.hidden_states[-1]) < 1e-5
    assert rel_err(gpu_out.logits.cpu(), cpu_out.logits) < 1e-5
    cpu_out.loss.backward()
    gpu_out.loss.backward()
    for (name, p_cpu), p_gpu in zip(cpu_model.named_parameters(), gpu_model.parameters()):
        if p_cpu.grad is not None and p_cpu.grad.norm() > 0:
            assert rel_err(p_gpu.grad.cpu(), p_cpu.grad) < 1e-4, name


def test_padded_clip_on_cuda_equals_the_clip_alone():
    model = perturbed(AxLSTMModel(config())).cuda()
    x, mask = padded_batch()
    with torch.no_grad():
        together = model(x.cuda(), attention_mask=mask.cuda()).last_hidden_state
        alone = model(x[1:, :180].cuda()).last_hidden_state
    tokens = alone.shape[1]
    assert rel_err(together[1, :tokens], alone[0]) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("backend", ["parallel", "chunkwise"])
def test_autocast_on_cuda_stays_close_with_finite_gradients(dtype, backend):
    torch.manual_seed(0)
    model = perturbed(AxLSTMModel(config(mlstm_backend=backend))).cuda()
    x, mask = (t.cuda() for t in padded_batch())
    with torch.no_grad():
        expected = model(x, attention_mask=mask).last_hidden_state
    with torch.autocast("cuda", dtype=dtype):
        low = model(x, attention_mask=mask).last_hidden_state  # float32: CUDA autocast runs layer_norm in float32
    assert 1e-5 < rel_err(low.float(), expected) < 3e-2  # 16-bit products happened, and stayed close
    low.float().square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name


def test_recomputing_backward_saves_memory_under_bf16_autocast():
    model = perturbed(AxLSTMModel(config(mlstm_backend="parallel"))).cuda()
    x = torch.randn(8, 300, 80, device="cuda")
    peaks = {}
    for recompute in (False, True):  # "plain" trains through autograd, "folded" through the recomputing backward
        model.set_mixer_implementation("folded" if recompute else "plain")
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(x).last_hidden_state.float().square().mean()
        loss.backward()
        torch.cuda.synchronize()
        peaks[recompute] = torch.cuda.max_memory_allocated() - base
        model.zero_grad(set_to_none=True)
    # autograd keeps the S x S decay, scores and C of every block; the recomputing backward keeps O(S) per block
    assert peaks[True] < 0.6 * peaks[False], peaks


@pytest.mark.skipif(_triton_chunkwise is None, reason="needs mlstm_kernels with triton")
def test_triton_backend_agrees_with_ours_in_inference():
    torch.manual_seed(0)
    model = perturbed(AxLSTMModel(config(chunk_size=64))).cuda()
    x, mask = (t.cuda() for t in padded_batch())
    with torch.no_grad():
        ours = model(x, attention_mask=mask).last_hidden_state
        model.config.mlstm_backend = "triton"
        theirs = model(x, attention_mask=mask).last_hidden_state
    # Their kernel clamps the within-chunk stabiliser and runs its float32 dots in TF32 (see kernels_axlstm).
    assert rel_err(theirs, ours) < 1e-2

import math

import pytest
import torch
import torch.nn.functional as F

from hf_axlstm import (
    AxLSTMConfig,
    AxLSTMForAudioClassification,
    AxLSTMForPreTraining,
    AxLSTMModel,
)
from hf_axlstm.convert_official import convert_checkpoint, extract_state_dict, load_official_checkpoint
from hf_axlstm.modeling_axlstm import sincos_position_embedding

from .conftest import rel_err


def small_config(**overrides) -> AxLSTMConfig:
    # 4 blocks so that two of them run reversed; width 32 keeps the tests fast.
    kwargs = {"hidden_size": 32, "num_hidden_layers": 4}
    kwargs.update(overrides)
    return AxLSTMConfig(**kwargs)


def perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Add noise to every weight so zero/one-initialised parts that are wired wrongly cannot hide."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.fixture(scope="module")
def official_model(official_dir):
    return convert_checkpoint(official_dir / "official_checkpoint.pth")


# ------------------------------------------------------------------------------------------------ fixture parity


def test_pretraining_prediction_matches_authors(official_model, expected):
    with torch.no_grad():
        out = official_model(expected["lms"], mask=expected["mask"])
    assert out.logits.shape == (2, 250, 64)
    assert rel_err(out.logits, expected["pred"]) < 1e-5
    assert torch.equal(out.mask, expected["mask"])


def test_target_is_the_patchified_input(official_model, expected):
    assert torch.equal(official_model.patchify(expected["lms"]), expected["target"])


@pytest.mark.parametrize(("loss_on", "key"), [("all", "loss_all_patches"), ("masked", "loss_masked_patches")])
def test_losses_match_authors(official_model, expected, loss_on, key):
    official_model.config.loss_on = loss_on
    try:
        with torch.no_grad():
            loss = official_model(expected["lms"], mask=expected["mask"]).loss
    finally:
        official_model.config.loss_on = "all"
    assert abs(loss.item() - expected[key].item()) / expected[key].item() < 1e-5


def test_encoder_features_match_authors_in_their_layout(official_model, expected):
    with torch.no_grad():
        tokens = official_model.axlstm(expected["lms"]).last_hidden_state[:, 1:]  # (B, 250, D)
    batch, _, dim = tokens.shape
    # The authors' quirk: time-major tokens re-arranged as if they were frequency-major, "(f t) d -> t (f d)".
    official_layout = tokens.reshape(batch, 5, 50, dim).permute(0, 2, 1, 3).reshape(batch, 50, 5 * dim)
    assert rel_err(official_layout, expected["forward_features"]) < 1e-5
    time_major = tokens.reshape(batch, 50, 5 * dim)
    assert rel_err(time_major, expected["forward_features"]) > 0.1


def test_position_table_equals_the_checkpoint_table(official_dir):
    state = extract_state_dict(load_official_checkpoint(official_dir / "official_checkpoint.pth"))
    table = sincos_position_embedding(64, 50, 5)
    assert torch.allclose(table, state["pos_embed"][0, 1:], atol=1e-6)
    assert torch.count_nonzero(state["pos_embed"][0, 0]) == 0  # CLS has a zero position


def test_position_table_extends_exactly_to_longer_grids():
    short = sincos_position_embedding(64, 50, 5)
    long = sincos_position_embedding(64, 250, 5)
    assert torch.equal(long[:250], short)


# ------------------------------------------------------------------------------------------------ shapes & padding


def test_outputs_have_documented_shapes():
    config = small_config()
    model = AxLSTMModel(config).eval()
    out = model(torch.randn(3, 200, 80), output_hidden_states=True)
    assert out.last_hidden_state.shape == (3, 251, 32)
    assert out.pooler_output.shape == (3, 32)
    assert out.token_mask.shape == (3, 251) and bool(out.token_mask.all())
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    # pooler = mean of the final-normed patch tokens (CLS excluded)
    assert torch.allclose(out.pooler_output, out.last_hidden_state[:, 1:].mean(1), atol=1e-6)


def test_any_number_of_frames_is_one_sequence():
    model = AxLSTMModel(small_config()).eval()
    with torch.no_grad():
        ten_seconds = model(torch.randn(1, 1000, 80)).last_hidden_state
        odd = model(torch.randn(1, 203, 80)).last_hidden_state  # padded to 204 frames -> 51 x 5 patches
    assert ten_seconds.shape == (1, 1 + 250 * 5, 32)
    assert odd.shape == (1, 1 + 51 * 5, 32)


def test_padded_batch_gives_every_clip_its_own_result():
    torch.manual_seed(0)
    model = perturbed(AxLSTMModel(small_config()))
    lengths = [200, 137, 61, 3]
    clips = [torch.randn(n, 80) for n in lengths]
    batch = torch.full((len(clips), max(lengths), 80), 123.0)  # garbage in the padding must not matter
    attention_mask = torch.zeros(len(clips), max(lengths), dtype=torch.long)
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
        attention_mask[i, : len(clip)] = 1
    with torch.no_grad():
        together = model(batch, attention_mask=attention_mask)
        for i, clip in enumerate(clips):
            alone = model(clip[None])
            real = together.token_mask[i]
            assert real.sum() == alone.last_hidden_state.shape[1] == 1 + math.ceil(len(clip) / 4) * 5
            assert rel_err(together.last_hidden_state[i, real], alone.last_hidden_state[0]) < 1e-5
            assert rel_err(together.pooler_output[i], alone.pooler_output[0]) < 1e-5


def test_padding_invariance_holds_for_classification_logits():
    model = perturbed(AxLSTMForAudioClassification(small_config(num_labels=3)))
    a, b = torch.randn(1, 80, 80), torch.randn(1, 200, 80)
    batch = torch.cat([F.pad(a, (0, 0, 0, 120)), b])
    mask = torch.ones(2, 200, dtype=torch.long)
    mask[0, 80:] = 0
    with torch.no_grad():
        together = model(batch, attention_mask=mask).logits
        assert rel_err(together[0], model(a).logits[0]) < 1e-5
        assert rel_err(together[1], model(b).logits[0]) < 1e-5


def test_authors_four_dim_layout_is_accepted():
    model = AxLSTMModel(small_config()).eval()
    x = torch.randn(2, 200, 80)
    with torch.no_grad():
        assert torch.equal(model(x).last_hidden_state, model(x[:, None]).last_hidden_state)


# ---------------------------------------------------------------------------------------------------- pretraining


def test_patchify_unpatchify_round_trip():
    model = AxLSTMForPreTraining(small_config())
    x = torch.randn(2, 203, 80)
    patches = model.patchify(x)
    assert patches.shape == (2, 51 * 5, 64)
    # patch (t=1, f=2) holds frames 4..7 and bins 32..47, flattened time-first
    assert torch.equal(patches[0, 1 * 5 + 2], x[0, 4:8, 32:48].reshape(-1))
    assert torch.equal(model.unpatchify(patches, num_frames=203), x)


def test_random_mask_masks_the_ratio_of_real_patches_only():
    model = AxLSTMForPreTraining(small_config())
    x = torch.randn(2, 200, 80)
    attention_mask = torch.ones(2, 200, dtype=torch.long)
    attention_mask[1, 100:] = 0  # second clip: 25 time patches = 125 real patches
    out = model(x, attention_mask=attention_mask)
    assert out.mask.shape == (2, 250)
    assert out.mask[0].sum() == 125
    assert out.mask[1].sum() == 125 - int(125 * 0.5)  # MAE convention: keep int(P * (1 - ratio))
    assert out.mask[1, 125:].sum() == 0 and bool(out.patch_mask[1, :125].all()) and not out.patch_mask[1, 125:].any()


def test_noise_makes_the_mask_reproducible_and_picks_the_smallest():
    model = AxLSTMForPreTraining(small_config())
    noise = torch.rand(1, 250)
    out = model(torch.randn(1, 200, 80), noise=noise)
    expected = torch.zeros(250)
    expected[noise[0].argsort()[:125]] = 1
    assert torch.equal(out.mask[0], expected)


def test_masked_loss_ignores_visible_patches():
    torch.manual_seed(0)
    model = perturbed(AxLSTMForPreTraining(small_config(loss_on="masked")))
    x = torch.randn(1, 200, 80)
    mask = torch.zeros(1, 250)
    mask[0, :100] = 1
    out = model(x, mask=mask)
    per_patch = (out.logits - model.patchify(x)).pow(2).mean(-1)
    assert torch.allclose(out.loss, per_patch[0, :100].mean(), rtol=1e-5)


def test_pretraining_loss_decreases_with_training():
    torch.manual_seed(0)
    model = AxLSTMForPreTraining(small_config(num_hidden_layers=2)).train()
    t, f = torch.arange(200.0)[:, None], torch.arange(80.0)[None]
    x = torch.stack([torch.sin(t / 7 + f / 5), torch.cos(t / 3 - f / 9), torch.sin(t / 11) * torch.cos(f / 4)])
    x = (x - x.mean()) / x.std()  # structured spectrograms a model can learn to fill in
    noise = torch.rand(3, 250)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = model(x, noise=noise).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ------------------------------------------------------------------------------------------------- classification


def test_single_label_loss_is_cross_entropy():
    model = perturbed(AxLSTMForAudioClassification(small_config(num_labels=4)))
    labels = torch.tensor([0, 3])
    out = model(torch.randn(2, 200, 80), labels=labels)
    assert out.logits.shape == (2, 4)
    assert torch.allclose(out.loss, F.cross_entropy(out.logits, labels))


def test_multi_label_loss_is_bce():
    model = perturbed(AxLSTMForAudioClassification(small_config(num_labels=3)))
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = model(torch.randn(2, 200, 80), labels=labels)
    assert model.config.problem_type == "multi_label_classification"
    assert torch.allclose(out.loss, F.binary_cross_entropy_with_logits(out.logits, labels))


def test_regression_loss_is_mse():
    model = perturbed(AxLSTMForAudioClassification(small_config(num_labels=1)))
    labels = torch.tensor([0.5, -1.0])
    out = model(torch.randn(2, 200, 80), labels=labels)
    assert torch.allclose(out.loss, F.mse_loss(out.logits.squeeze(-1), labels))


def test_cls_pooling_reads_the_cls_token():
    model = perturbed(AxLSTMForAudioClassification(small_config(num_labels=2, classifier_pooling="cls")))
    x = torch.randn(2, 200, 80)
    with torch.no_grad():
        cls = model.axlstm(x).last_hidden_state[:, 0]
        assert torch.allclose(model(x).logits, model.classifier(cls), atol=1e-6)


# --------------------------------------------------------------------------------------------------- init & grads


def test_initialisation_follows_the_authors():
    config = small_config()
    model = AxLSTMModel(config)
    mixer = model.layers[0].mixer
    nh = config.num_heads
    assert torch.count_nonzero(mixer.gate_proj.weight) == 0
    assert torch.allclose(mixer.gate_proj.bias[nh:], torch.linspace(3.0, 6.0, nh))
    assert 0 < mixer.gate_proj.bias[:nh].abs().max() < 1.0
    assert torch.equal(mixer.learnable_skip, torch.ones_like(mixer.learnable_skip))
    assert torch.count_nonzero(model.layers[0].norm.weight) == 0
    assert torch.count_nonzero(mixer.out_norm.weight) == 0
    assert torch.count_nonzero(model.embeddings.patch_embeddings.projection.bias) == 0
    std_up = math.sqrt(2 / (5 * 32))
    assert abs(mixer.proj_up.weight.std().item() - std_up) < 0.2 * std_up
    assert abs(mixer.proj_down.weight.std().item() - 2 / math.sqrt(32)) < 0.1 * 2 / math.sqrt(32)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = perturbed(AxLSTMForPreTraining(small_config())).train()
    x = torch.randn(2, 120, 80)
    noise = torch.rand(2, 150)

    def grads():
        model.zero_grad()
        model(x, noise=noise).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = grads()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.axlstm.layers)
    checkpointed = grads()
    assert plain.keys() == checkpointed.keys() and len(plain) > 0
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], rtol=1e-5, atol=1e-7), name


# ----------------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((200, 80), r"input_values has shape \(200, 80\); expected \(batch, frames, 80\).*unsqueeze\(0\)"),
        ((1, 2, 200, 80), r"input_values has shape \(1, 2, 200, 80\)"),
        ((1, 200, 128), r"input_values has 128 mel bins .* config.num_mel_bins=80"),
        ((1, 0, 80), r"input_values has 0 frames"),
    ],
)
def test_bad_input_shapes_raise_value_error(shape, message):
    model = AxLSTMModel(small_config(num_hidden_layers=1))
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_bad_masks_raise_value_error():
    model = AxLSTMForPreTraining(small_config(num_hidden_layers=1))
    x = torch.randn(2, 200, 80)
    with pytest.raises(
        ValueError, match=r"attention_mask has shape \(2, 100\); expected \(batch, frames\) = \(2, 200\)"
    ):
        model(x, attention_mask=torch.ones(2, 100))
    with pytest.raises(ValueError, match=r"attention_mask has a clip with no real frame"):
        model(x, attention_mask=torch.zeros(2, 200))
    left_padded = torch.ones(2, 200)
    left_padded[0, :10] = 0
    with pytest.raises(
        ValueError, match=r"attention_mask has padding before real frames; AxLSTM expects right padding"
    ):
        model(x, attention_mask=left_padded)
    with pytest.raises(ValueError, match=r"mask has shape \(2, 10\); expected \(batch, num_patches\) = \(2, 250\)"):
        model(x, mask=torch.zeros(2, 10))
    with pytest.raises(ValueError, match=r"noise has shape \(2, 10\)"):
        model(x, noise=torch.rand(2, 10))
    with pytest.raises(TypeError, match=r"input_values must be a torch.Tensor"):
        model(x.numpy())


# ------------------------------------------------------------------------------------------- compile and autocast


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["parallel", "chunkwise"])
def test_model_traces_without_graph_breaks(backend):
    # The value checks, the inference caches and the custom autograd Functions are all skipped while dynamo traces.
    model = perturbed(AxLSTMModel(small_config(num_hidden_layers=2, chunk_size=16, mlstm_backend=backend)))
    x = torch.randn(2, 200, 80)
    mask = torch.ones(2, 200, dtype=torch.long)
    mask[1, 150:] = 0
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(x, attention_mask=mask)
    assert explained.graph_break_count == 0, [str(b.reason) for b in explained.break_reasons]
    model.train()
    torch._dynamo.reset()
    explained = torch._dynamo.explain(lambda t: model(t).last_hidden_state.square().mean())(x)
    assert explained.graph_break_count == 0, [str(b.reason) for b in explained.break_reasons]


@pytest.mark.slow
def test_compile_with_dynamic_shapes_serves_every_length_from_one_graph():
    """`torch.compile(model, dynamic=True)`: clips of 200, 333 and 401 frames (an aligned, an unaligned and an odd
    number of mLSTM chunks) run from the first graph with no recompile, and give the eager outputs and gradients. The
    chunkwise form's Python loop over the chunks would pin their number; under compile the loop-free form runs."""
    import torch._dynamo

    model = perturbed(AxLSTMModel(small_config(num_hidden_layers=2, chunk_size=16, mlstm_backend="chunkwise")))
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", dynamic=True)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for frames in (200, 333, 401):
            x = torch.randn(2, frames, 80, requires_grad=True)
            mask = torch.ones(2, frames, dtype=torch.long)
            mask[1, frames // 2 :] = 0
            out = compiled(x, attention_mask=mask)
            (grad,) = torch.autograd.grad(out.pooler_output.square().sum(), x)
            x_ref = x.detach().requires_grad_()
            ref = model(x_ref, attention_mask=mask)
            (grad_ref,) = torch.autograd.grad(ref.pooler_output.square().sum(), x_ref)
            assert out.last_hidden_state.shape == (2, 1 + -(-frames // 4) * 5, 32)
            assert rel_err(out.last_hidden_state, ref.last_hidden_state) < 1e-5, frames
            assert rel_err(grad, grad_ref) < 1e-4, frames
    torch._dynamo.reset()


@pytest.mark.slow
def test_heads_with_their_checked_inputs_trace_without_graph_breaks():
    """The value checks of labels, masks and noise are skipped while dynamo traces, as the input checks are."""
    config = small_config(num_hidden_layers=2, num_labels=3)
    x = torch.randn(2, 200, 80)
    frames = torch.ones(2, 200, dtype=torch.long)
    frames[1, 150:] = 0
    pretraining = perturbed(AxLSTMForPreTraining(config)).train()
    mask = (torch.rand(2, 250) < 0.5).float()
    for kwargs in ({"mask": mask}, {"noise": torch.rand(2, 250)}):
        torch._dynamo.reset()
        explained = torch._dynamo.explain(lambda t, kw=kwargs: pretraining(t, attention_mask=frames, **kw).loss)(x)
        assert explained.graph_break_count == 0, [str(b.reason) for b in explained.break_reasons]
    classifier = perturbed(AxLSTMForAudioClassification(config)).train()
    for labels in (torch.tensor([0, 2]), torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])):
        classifier.config.problem_type = None
        torch._dynamo.reset()
        explained = torch._dynamo.explain(lambda t, y=labels: classifier(t, attention_mask=frames, labels=y).loss)(x)
        assert explained.graph_break_count == 0, [str(b.reason) for b in explained.break_reasons]


def test_bf16_autocast_embeddings_stay_close_to_float32():
    model = perturbed(AxLSTMModel(small_config(chunk_size=16)))
    x = torch.randn(2, 300, 80)
    with torch.no_grad():
        expected = model(x).last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x).last_hidden_state
    assert low.dtype == torch.bfloat16
    assert rel_err(low.float(), expected) < 3e-2


# ------------------------------------------------------------------------------------------------------- dtypes


def _signals() -> dict:
    import numpy as np

    sr, rng = 16000, np.random.default_rng(0)
    t = np.arange(2 * sr) / sr
    return {
        "silence": np.zeros(2 * sr, dtype=np.float32),
        "clipping": np.clip(3.0 * np.sin(2 * np.pi * 440 * t), -1, 1).astype(np.float32),
        "dc": np.full(2 * sr, 0.5, dtype=np.float32),
        "noise": (0.3 * rng.standard_normal(2 * sr)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def signal_features():
    from hf_axlstm import AxLSTMFeatureExtractor

    signals = _signals()
    features = AxLSTMFeatureExtractor()(list(signals.values()), sampling_rate=16000, return_tensors="pt")
    return list(signals), features


def _copy_as(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    clone = type(model)(model.config).eval()
    clone.load_state_dict(model.state_dict())
    return clone.to(dtype)


@pytest.mark.parametrize("backend", ["parallel", "chunkwise"])
def test_float64_matches_float32(official_model, signal_features, backend):
    _, features = signal_features
    official_model.config.mlstm_backend = backend
    try:
        encoder = official_model.axlstm
        double = _copy_as(encoder, torch.float64)
        with torch.no_grad():
            ref = encoder(**features).last_hidden_state
            out = double(**features).last_hidden_state
    finally:
        official_model.config.mlstm_backend = "auto"
    assert out.dtype == torch.float64
    assert rel_err(out, ref) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("backend", ["parallel", "chunkwise"])
def test_16bit_models_are_finite_and_close_to_float32(official_model, signal_features, dtype, backend):
    names, features = signal_features
    official_model.config.mlstm_backend = backend
    try:
        encoder = official_model.axlstm
        low = _copy_as(encoder, dtype)
        with torch.no_grad():
            ref = encoder(**features)
            out = low(**features)
    finally:
        official_model.config.mlstm_backend = "auto"
    assert out.last_hidden_state.dtype == dtype and out.pooler_output.dtype == dtype
    for i, name in enumerate(names):
        assert torch.isfinite(out.last_hidden_state[i]).all(), name
        assert rel_err(out.last_hidden_state[i], ref.last_hidden_state[i]) < 3e-2, name
        assert rel_err(out.pooler_output[i], ref.pooler_output[i]) < 3e-2, name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64], ids=["bf16", "fp16", "fp64"])
def test_from_pretrained_dtype_runs_and_trains(tmp_path, dtype):
    from transformers import AutoModelForAudioClassification

    torch.manual_seed(0)
    AxLSTMForAudioClassification(small_config(num_labels=3)).save_pretrained(tmp_path)
    model = AutoModelForAudioClassification.from_pretrained(tmp_path, dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {dtype}
    x = torch.randn(2, 203, 80)
    mask = torch.ones(2, 203, dtype=torch.long)
    mask[1, 120:] = 0
    out = model(x, attention_mask=mask, labels=torch.tensor([0, 2]))
    assert out.logits.dtype == dtype and torch.isfinite(out.logits).all()
    out.loss.backward()
    unused = {name for name, p in model.named_parameters() if p.grad is None}
    assert unused == {"axlstm.embeddings.mask_token"}  # only pretraining masks patches
    assert all(
        p.grad.dtype == dtype and torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None
    )


def test_dtype_casts_after_a_forward_use_fresh_derived_weights():
    """The inference cache of derived weights is dropped by .half() / .bfloat16() / .double() / .float()."""
    torch.manual_seed(0)
    model = perturbed(AxLSTMModel(small_config()))
    x = torch.randn(1, 200, 80)
    with torch.no_grad():
        ref = model(x).last_hidden_state
        for cast, dtype, tol in (("half", torch.float16, 3e-2), ("bfloat16", torch.bfloat16, 3e-2)):
            getattr(model, cast)()
            out = model(x).last_hidden_state
            assert out.dtype == dtype and rel_err(out, ref) < tol, cast
        model.double()
        assert rel_err(model(x).last_hidden_state, ref) < 1e-2  # from bf16-rounded weights
        model.float()
        assert model(x).last_hidden_state.dtype == torch.float32


def test_pretraining_in_bfloat16_keeps_a_float32_loss():
    torch.manual_seed(0)
    model = AxLSTMForPreTraining(small_config()).to(torch.bfloat16)
    out = model(torch.randn(2, 200, 80))
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    assert out.logits.dtype == torch.bfloat16
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_finite_input_whose_sum_overflows_is_accepted():
    """The value check sums the input; a finite input whose float32 sum overflows must not be called non-finite."""
    model = AxLSTMModel(small_config(num_hidden_layers=1)).eval()
    x = torch.full((1, 200, 80), 3e37)
    mask = torch.ones(1, 200, dtype=torch.long)
    with torch.no_grad():
        assert model(x, attention_mask=mask).last_hidden_state.shape == (1, 251, 32)
    x[0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"input_values has NaN or infinite values \(in clips \[0\]\)"):
        model(x)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_class_indices_of_any_integer_dtype_give_the_int64_loss(dtype):
    """int32 class ids (numpy's default on some platforms, pandas' int32 columns) failed inside torch's cross-entropy;
    every integer dtype of shape (batch,) is single-label class indices, with the int64 loss."""
    model = perturbed(AxLSTMForAudioClassification(small_config(num_hidden_layers=1, num_labels=3))).eval()
    x = torch.randn(3, 60, 80)
    expected = model(x, labels=torch.tensor([0, 2, 1])).loss
    model.config.problem_type = None  # the first call above recorded it; start from the same state
    loss = model(x, labels=torch.tensor([0, 2, 1], dtype=dtype)).loss
    assert model.config.problem_type == "single_label_classification"
    assert torch.equal(loss, expected)

# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Bad inputs to the models (AxLSTMModel, AxLSTMForPreTraining, AxLSTMForAudioClassification) and the kernels."""

from __future__ import annotations

from .badinputs import Api


def _x(batch: int = 2, frames: int = 200):
    import torch

    return torch.randn(batch, frames, 80, generator=torch.Generator().manual_seed(0))


def _ones(*shape, dtype=None):
    import torch

    return torch.ones(*shape, dtype=dtype or torch.long)


def _run(kind: str, **kwargs):
    def call(ctx, tmp):
        import torch

        values = {k: (v() if callable(v) else v) for k, v in kwargs.items()}
        with torch.no_grad():
            return ctx.model(kind)(**values)

    return call


def _labels(values, dtype="long"):
    def make():
        import torch

        return torch.tensor(values, dtype=getattr(torch, dtype))

    return make


def _mask_with(value):
    def make():
        import torch

        mask = torch.zeros(2, 250)
        mask[0, :10] = value
        return mask

    return make


def _attention_with(value, dtype="float32"):
    def make():
        import torch

        mask = torch.ones(2, 200, dtype=getattr(torch, dtype))
        mask[1, 150:] = value
        return mask

    return make


def _left_padded():
    mask = _ones(2, 200)
    mask[0, :10] = 0
    return mask


def _nan_input():
    x = _x()
    x[1, 17, 3] = float("nan")
    return x


def _inf_input():
    x = _x()
    x[0, 0, 0] = float("inf")
    return x


def _kernel(**overrides):
    def call(ctx, tmp):
        import torch

        from hf_axlstm.kernels_axlstm import mlstm

        q = k = v = torch.randn(1, 2, 16, 8)
        gates = torch.randn(1, 2, 16)
        args = {"q": q, "k": k, "v": v, "igate": gates, "fgate": gates, **overrides}
        return mlstm(**{key: (value() if callable(value) else value) for key, value in args.items()})

    return call


def _model_with(**overrides):
    def call(ctx, tmp):
        from hf_axlstm import AxLSTMConfig, AxLSTMModel

        return AxLSTMModel(AxLSTMConfig(hidden_size=32, num_hidden_layers=1, **overrides))

    return call


def _register_mixer(name):
    def call(ctx, tmp):
        from hf_axlstm.mixers_axlstm import ALL_MIXER_IMPLEMENTATIONS, MixerImplementation, folded_mixer_forward

        ALL_MIXER_IMPLEMENTATIONS.register(name, MixerImplementation(folded_mixer_forward, recompute=True))

    return call


def _patchify(value):
    return lambda ctx, tmp: ctx.model("pretrain").patchify(value())


def _unpatchify(value):
    return lambda ctx, tmp: ctx.model("pretrain").unpatchify(value())


def _random_mask(**kwargs):
    return lambda ctx, tmp: ctx.model("pretrain").random_mask(_ones(2, 250, dtype=__import__("torch").bool), **kwargs)


def _shape(*shape):
    return lambda: __import__("torch").randn(*shape)


CASES = [
    # input_values
    Api(
        "model-input-numpy",
        _run("base", input_values=lambda: _x().numpy()),
        TypeError,
        "input_values must be a torch.Tensor.*ndarray",
    ),
    Api(
        "model-input-list",
        _run("base", input_values=[[0.0] * 80]),
        TypeError,
        "input_values must be a torch.Tensor.*list",
    ),
    Api(
        "model-input-int-dtype",
        _run("base", input_values=lambda: _x().long()),
        TypeError,
        "input_values has dtype torch.int64",
    ),
    Api(
        "model-input-rank-2",
        _run("base", input_values=_shape(200, 80)),
        ValueError,
        r"input_values has shape \(200, 80\).*unsqueeze",
    ),
    Api(
        "model-input-mels-first",
        _run("base", input_values=_shape(1, 80, 200)),
        ValueError,
        "input_values has 200 mel bins.*num_mel_bins=80",
    ),
    Api(
        "model-input-empty-batch",
        _run("base", input_values=_shape(0, 200, 80)),
        ValueError,
        "input_values has an empty batch",
    ),
    Api("model-input-no-frames", _run("base", input_values=_shape(1, 0, 80)), ValueError, "input_values has 0 frames"),
    Api(
        "model-input-nan",
        _run("base", input_values=_nan_input),
        ValueError,
        r"input_values has NaN or infinite values \(in clips \[1\]\)",
    ),
    Api(
        "model-input-inf",
        _run("cls", input_values=_inf_input),
        ValueError,
        r"NaN or infinite values \(in clips \[0\]\)",
    ),
    # attention_mask
    Api(
        "model-attention-mask-numpy",
        _run("base", input_values=_x, attention_mask=lambda: _ones(2, 200).numpy()),
        TypeError,
        "attention_mask must be a torch.Tensor.*ndarray",
    ),
    Api(
        "model-attention-mask-list",
        _run("base", input_values=_x, attention_mask=[[1] * 200] * 2),
        TypeError,
        "attention_mask must be a torch.Tensor.*list",
    ),
    Api(
        "model-attention-mask-value-2",
        _run("base", input_values=_x, attention_mask=_attention_with(2, "long")),
        ValueError,
        r"attention_mask has values other than 0 and 1 \(found \[2\]\)",
    ),
    Api(
        "model-attention-mask-negative",
        _run("base", input_values=_x, attention_mask=_attention_with(-1, "long")),
        ValueError,
        r"attention_mask has values other than 0 and 1 \(found \[-1\]\)",
    ),
    Api(
        "model-attention-mask-nan",
        _run("base", input_values=_x, attention_mask=_attention_with(float("nan"))),
        ValueError,
        r"attention_mask has values other than 0 and 1 \(found \[nan\]\)",
    ),
    Api(
        "model-attention-mask-half",
        _run("cls", input_values=_x, attention_mask=_attention_with(0.5)),
        ValueError,
        r"attention_mask has values other than 0 and 1 \(found \[0.5\]\)",
    ),
    Api(
        "model-attention-mask-shape",
        _run("base", input_values=_x, attention_mask=lambda: _ones(2, 100)),
        ValueError,
        r"attention_mask has shape \(2, 100\); expected \(batch, frames\) = \(2, 200\)",
    ),
    Api(
        "model-attention-mask-all-padding",
        _run("base", input_values=_x, attention_mask=lambda: _ones(2, 200) * 0),
        ValueError,
        "attention_mask has a clip with no real frame",
    ),
    Api(
        "model-attention-mask-left-padding",
        _run(
            "base",
            input_values=_x,
            attention_mask=_left_padded,
        ),
        ValueError,
        "padding before real frames",
    ),
    # keyword arguments
    Api(
        "model-typo-attention-masks",
        _run("base", input_values=_x, attention_masks=lambda: _ones(2, 200)),
        TypeError,
        "unexpected keyword argument 'attention_masks'",
    ),
    Api(
        "model-typo-labels-on-encoder",
        _run("base", input_values=_x, labels=_labels([0, 1])),
        TypeError,
        "unexpected keyword argument 'labels'",
    ),
    Api(
        "model-typo-label",
        _run("cls", input_values=_x, label=_labels([0, 1])),
        TypeError,
        "unexpected keyword argument 'label'",
    ),
    Api(
        "model-output-attentions",
        _run("base", input_values=_x, output_attentions=True),
        ValueError,
        "output_attentions=True is not supported: AxLSTM has no attention maps",
    ),
    Api(
        "model-output-attentions-classifier",
        _run("cls", input_values=_x, output_attentions=True),
        ValueError,
        "no attention maps",
    ),
    Api(
        "model-output-attentions-pretraining",
        _run("pretrain", input_values=_x, output_attentions=True),
        ValueError,
        "no attention maps",
    ),
    # pretraining mask and noise
    Api(
        "model-pretraining-mask-minus-one",
        _run("pretrain", input_values=_x, mask=_mask_with(-1.0)),
        ValueError,
        r"mask has values other than 0 and 1 \(found \[-1.0\]\)",
    ),
    Api(
        "model-pretraining-mask-two",
        _run("pretrain", input_values=_x, mask=_mask_with(2.0)),
        ValueError,
        r"mask has values other than 0 and 1 \(found \[2.0\]\)",
    ),
    Api(
        "model-pretraining-mask-nan",
        _run("pretrain", input_values=_x, mask=_mask_with(float("nan"))),
        ValueError,
        r"mask has values other than 0 and 1 \(found \[nan\]\)",
    ),
    Api(
        "model-pretraining-mask-shape",
        _run("pretrain", input_values=_x, mask=lambda: _ones(2, 10)),
        ValueError,
        r"mask has shape \(2, 10\); expected \(batch, num_patches\) = \(2, 250\)",
    ),
    Api(
        "model-pretraining-mask-numpy",
        _run("pretrain", input_values=_x, mask=lambda: _ones(2, 250).numpy()),
        TypeError,
        "mask must be a torch.Tensor",
    ),
    Api(
        "model-pretraining-mask-and-noise",
        _run("pretrain", input_values=_x, mask=lambda: _ones(2, 250) * 0, noise=_shape(2, 250)),
        ValueError,
        "either mask .* or noise",
    ),
    Api(
        "model-pretraining-noise-shape",
        _run("pretrain", input_values=_x, noise=_shape(2, 10)),
        ValueError,
        r"noise has shape \(2, 10\)",
    ),
    Api(
        "model-pretraining-noise-nan",
        _run("pretrain", input_values=_x, noise=lambda: _shape(2, 250)() * float("nan")),
        ValueError,
        "noise must hold finite floating-point values",
    ),
    Api(
        "model-pretraining-noise-list",
        _run("pretrain", input_values=_x, noise=[0.1] * 250),
        TypeError,
        "noise must be a torch.Tensor",
    ),
    Api(
        "model-pretraining-random-mask-ratio-1", _random_mask(mask_ratio=1.0), ValueError, "mask_ratio=1.0 is invalid"
    ),
    Api(
        "model-pretraining-random-mask-ratio-nan",
        _random_mask(mask_ratio=float("nan")),
        ValueError,
        "mask_ratio=nan is invalid",
    ),
    Api(
        "model-pretraining-patchify-rank-2",
        _patchify(_shape(200, 80)),
        ValueError,
        r"patchify expects input_values of shape \(batch, frames, mels\), got \(200, 80\)",
    ),
    Api("model-pretraining-patchify-mels", _patchify(_shape(1, 200, 64)), ValueError, "patchify got 64 mel bins"),
    Api(
        "model-pretraining-unpatchify-patch-dim",
        _unpatchify(_shape(1, 250, 60)),
        ValueError,
        r"unpatchify expects patches of shape \(batch, num_patches, 64\).*got \(1, 250, 60\)",
    ),
    Api(
        "model-pretraining-unpatchify-count",
        _unpatchify(_shape(1, 251, 64)),
        ValueError,
        "num_patches a multiple of 5",
    ),
    # classifier labels (3 labels)
    Api(
        "classifier-label-out-of-range",
        _run("cls", input_values=_x, labels=_labels([0, 3])),
        ValueError,
        r"class indices \[3\] outside \[0, num_labels\) = \[0, 3\)",
    ),
    Api(
        "classifier-label-negative",
        _run("cls", input_values=_x, labels=_labels([-2, 1])),
        ValueError,
        r"class indices \[-2\] outside",
    ),
    Api(
        "classifier-label-shape",
        _run("cls", input_values=_x, labels=_labels([0, 1, 2])),
        ValueError,
        r"labels has shape \(3,\); single-label classification expects class indices of shape \(batch,\) = \(2,\)",
    ),
    Api(
        "classifier-label-bool",
        _run("cls", input_values=_x, labels=_labels([True, False], "bool")),
        ValueError,
        r"labels has shape \(2,\) and dtype torch.bool; multi-label",
    ),
    Api(
        "classifier-label-float-vector",
        _run("cls", input_values=_x, labels=_labels([0.0, 1.0], "float32")),
        ValueError,
        r"labels has shape \(2,\) and dtype torch.float32; multi-label classification expects \(batch, num_labels\) = \(2, 3\)",
    ),
    Api(
        "classifier-multilabel-out-of-unit",
        _run("cls", input_values=_x, labels=_labels([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]], "float32")),
        ValueError,
        r"multi-label targets outside \[0, 1\]",
    ),
    Api(
        "classifier-multilabel-nan",
        _run("cls", input_values=_x, labels=_labels([[0.0, float("nan"), 0.0], [1.0, 0.0, 0.0]], "float32")),
        ValueError,
        r"outside \[0, 1\] \(or NaN\)",
    ),
    Api(
        "classifier-labels-list",
        _run("cls", input_values=_x, labels=[0, 1]),
        TypeError,
        "labels must be a torch.Tensor, got list",
    ),
    # kernels
    Api("kernel-unknown-backend", _kernel(backend="fast"), ValueError, "backend='fast' is not a known mLSTM backend"),
    Api(
        "kernel-q-rank",
        _kernel(q=_shape(2, 16, 8)),
        ValueError,
        r"q has shape \(2, 16, 8\); expected \(batch, heads, seq, head_dim\)",
    ),
    Api(
        "kernel-k-mismatch",
        _kernel(k=_shape(1, 2, 15, 8)),
        ValueError,
        r"k has shape \(1, 2, 15, 8\); expected .* matching q's \(1, 2, 16, 8\)",
    ),
    Api("kernel-v-seq-mismatch", _kernel(v=_shape(1, 2, 12, 8)), ValueError, r"v has shape \(1, 2, 12, 8\)"),
    Api(
        "kernel-gate-shape",
        _kernel(fgate=_shape(1, 2, 16, 1)),
        ValueError,
        r"fgate has shape \(1, 2, 16, 1\); expected \(batch, heads, seq\) = \(1, 2, 16\)",
    ),
    Api(
        "kernel-igate-numpy",
        _kernel(igate=lambda: _shape(1, 2, 16)().numpy()),
        TypeError,
        "igate must be a torch.Tensor, got ndarray",
    ),
    Api("kernel-chunk-size-zero", _kernel(chunk_size=0, backend="chunkwise"), ValueError, "chunk_size=0 is invalid"),
    # mixer implementations
    Api(
        "mixer-implementation-unregistered",
        _model_with(mixer_implementation="palin"),
        ValueError,
        r"mixer_implementation='palin' is not registered; expected one of \['auto', 'plain', 'folded', 'fused_cpu'",
    ),
    Api(
        "mixer-implementation-not-a-name",
        _model_with(mixer_implementation=3),
        ValueError,
        "mixer_implementation=3 is invalid; expected a name such as 'auto', 'plain'",
    ),
    Api(
        "set-mixer-implementation-unregistered",
        lambda ctx, tmp: ctx.model("base").set_mixer_implementation("flash"),
        ValueError,
        "mixer_implementation='flash' is not registered",
    ),
    Api(
        "mixer-registry-auto",
        _register_mixer("auto"),
        ValueError,
        "name='auto' is invalid; expected an identifier other than 'auto'",
    ),
]

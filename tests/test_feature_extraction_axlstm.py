import json
import logging

import numpy as np
import pytest
import torch
from transformers import BatchFeature

from hf_axlstm.feature_extraction_axlstm import AxLSTMFeatureExtractor

from .conftest import rel_err

SR = 16000


@pytest.fixture(scope="module")
def fe():
    return AxLSTMFeatureExtractor()


def _clip(num_samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / SR
    tone = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t)
    return (tone + 0.05 * rng.standard_normal(num_samples)).astype(np.float32)


def _frames(num_samples: int) -> int:
    return 1 + num_samples // 160


# ---------------------------------------------------------------- parity with the authors' log-mel


@pytest.mark.parametrize("i", [0, 1, 2])
def test_fixture_parity(fe, expected, i):
    wav = expected[f"wav{i}"]  # (1, N)
    ref = expected[f"wav{i}_logmel"][:, 0]  # (1, T, 80)
    out = fe(wav[0].numpy(), sampling_rate=SR, return_tensors="pt")
    assert out["input_values"].shape == ref.shape == (1, _frames(wav.shape[1]), 80)
    assert out["input_values"].dtype == torch.float32
    assert rel_err(out["input_values"], ref) < 1e-4
    assert out["attention_mask"].shape == ref.shape[:2]
    assert bool((out["attention_mask"] == 1).all())


@pytest.mark.parametrize("i", [0, 1, 2])
def test_helpers_parity(fe, expected, i):
    wav = expected[f"wav{i}"]
    ref = expected[f"wav{i}_logmel"][:, 0]
    raw = fe.log_mel(wav)
    assert raw.shape == ref.shape and raw.dtype == torch.float32
    assert rel_err(fe.normalize(raw), ref) < 1e-4
    # torch tensor input to __call__ (1-D) gives the same
    out = fe(wav[0], sampling_rate=SR, return_tensors="pt")["input_values"]
    assert rel_err(out, ref) < 1e-4


def test_log_mel_batched_equals_single(fe):
    batch = torch.from_numpy(np.stack([_clip(5000, s) for s in range(3)]))
    together = fe.log_mel(batch)
    assert together.shape == (3, _frames(5000), 80)
    for b in range(3):
        assert torch.allclose(together[b], fe.log_mel(batch[b : b + 1])[0], atol=1e-5, rtol=1e-6)
    # leading dims are kept
    assert fe.log_mel(batch[0]).shape == (_frames(5000), 80)
    assert fe.log_mel(batch.double()).dtype == torch.float64


def test_normalize_with_num_frames(fe):
    raw = fe.log_mel(torch.from_numpy(np.stack([_clip(8000, 1), _clip(8000, 2)])))
    num_frames = [30, raw.shape[1]]
    out = fe.normalize(raw, num_frames)
    alone = fe.normalize(raw[0:1, :30])
    assert torch.allclose(out[0, :30], alone[0], atol=1e-5)
    assert bool((out[0, 30:] == fe.padding_value).all())
    assert torch.allclose(out[1], fe.normalize(raw[1:2])[0], atol=1e-5)
    with pytest.raises(ValueError, match="num_frames"):
        fe.normalize(raw, [0, 10])
    with pytest.raises(ValueError, match="num_frames"):
        fe.normalize(raw, [10])


# ---------------------------------------------------------------- batching


def test_batch_of_different_lengths_equals_single(fe):
    lengths = [12000, 4000, 8160]
    clips = [_clip(n, s) for s, n in enumerate(lengths)]
    out = fe(clips, sampling_rate=SR, return_tensors="pt")
    frames = [_frames(n) for n in lengths]
    longest = max(frames)
    assert out["input_values"].shape == (3, longest, 80)
    assert out["attention_mask"].shape == (3, longest)
    for b, (clip, t) in enumerate(zip(clips, frames)):
        alone = fe(clip, sampling_rate=SR, return_tensors="pt")["input_values"][0]
        assert alone.shape == (t, 80)
        assert torch.allclose(out["input_values"][b, :t], alone, atol=1e-6, rtol=0)
        assert out["attention_mask"][b].tolist() == [1] * t + [0] * (longest - t)
        assert bool((out["input_values"][b, t:] == 0.0).all())


def test_2d_array_is_batch_of_equal_clips(fe):
    clips = [_clip(6400, s) for s in range(3)]
    from_array = fe(np.stack(clips), sampling_rate=SR, return_tensors="np")["input_values"]
    from_list = fe(clips, sampling_rate=SR, return_tensors="np")["input_values"]
    assert from_array.shape == (3, _frames(6400), 80)
    np.testing.assert_allclose(from_array, from_list, atol=1e-6, rtol=0)


def test_padding_value_and_left_padding():
    clips = [_clip(4000, 0), _clip(8000, 1)]
    fe = AxLSTMFeatureExtractor(padding_value=-5.0, padding_side="left")
    out = fe(clips, sampling_rate=SR, return_tensors="pt")
    t0, t1 = _frames(4000), _frames(8000)
    assert out["attention_mask"][0].tolist() == [0] * (t1 - t0) + [1] * t0
    assert bool((out["input_values"][0, : t1 - t0] == -5.0).all())
    alone = fe(clips[0], sampling_rate=SR, return_tensors="pt")["input_values"][0]
    assert torch.allclose(out["input_values"][0, t1 - t0 :], alone, atol=1e-6)


# ---------------------------------------------------------------- input types


def test_int_pcm_equals_float(fe):
    rng = np.random.default_rng(0)
    pcm16 = (rng.standard_normal(6000) * 3000).clip(-32768, 32767).astype(np.int16)
    ref = fe(pcm16.astype(np.float32) / 32768.0, sampling_rate=SR, return_tensors="np")["input_values"]
    out16 = fe(pcm16, sampling_rate=SR, return_tensors="np")["input_values"]
    np.testing.assert_allclose(out16, ref, atol=1e-6, rtol=0)
    out16_torch = fe(torch.from_numpy(pcm16), sampling_rate=SR, return_tensors="np")["input_values"]
    np.testing.assert_allclose(out16_torch, ref, atol=1e-6, rtol=0)
    pcm32 = pcm16.astype(np.int32) * 65536
    np.testing.assert_allclose(fe(pcm32, sampling_rate=SR, return_tensors="np")["input_values"], ref, atol=1e-5)
    u8 = (rng.integers(0, 256, 6000)).astype(np.uint8)
    ref8 = fe((u8.astype(np.float32) - 128) / 128, sampling_rate=SR, return_tensors="np")["input_values"]
    np.testing.assert_allclose(fe(u8, sampling_rate=SR, return_tensors="np")["input_values"], ref8, atol=1e-6)
    u8_torch = fe(torch.from_numpy(u8), sampling_rate=SR, return_tensors="np")["input_values"]
    np.testing.assert_allclose(u8_torch, ref8, atol=1e-6)
    # float64 and a plain list of floats are used as is
    clip = _clip(6000, 3)
    ref_f = fe(clip, sampling_rate=SR, return_tensors="np")["input_values"]
    np.testing.assert_allclose(
        fe(clip.astype(np.float64), sampling_rate=SR, return_tensors="np")["input_values"], ref_f
    )
    np.testing.assert_allclose(fe(clip.tolist(), sampling_rate=SR, return_tensors="np")["input_values"], ref_f)


def test_multichannel_averaging(fe):
    left, right = _clip(7000, 1), _clip(7000, 2)
    mono = (left + right) / 2
    ref = fe(mono, sampling_rate=SR, return_tensors="np")["input_values"]
    samples_first = np.stack([left, right], axis=1)  # soundfile: (samples, channels)
    channels_first = torch.from_numpy(np.stack([left, right]))  # torch: (channels, samples)
    for clip in (samples_first, channels_first):
        out = fe([clip], sampling_rate=SR, return_tensors="np")["input_values"]
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
    # 3-D: a batch of multi-channel clips (batch, channels, samples)
    batch = np.stack([np.stack([left, right]), np.stack([right, right])])
    out = fe(batch, sampling_rate=SR, return_tensors="np")["input_values"]
    np.testing.assert_allclose(out[0], ref[0], atol=1e-5, rtol=0)
    ref_right = fe(right, sampling_rate=SR, return_tensors="np")["input_values"][0]
    np.testing.assert_allclose(out[1], ref_right, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- padding / truncation / return types


def test_padding_truncation_shapes(fe):
    clips = [_clip(16000, 0), _clip(4000, 1)]  # 101 and 26 frames
    out = fe(clips, sampling_rate=SR, padding="max_length", max_frames=128, return_tensors="pt")
    assert out["input_values"].shape == (2, 128, 80)
    assert out["attention_mask"].sum(1).tolist() == [101, 26]

    out = fe(clips, sampling_rate=SR, padding=True, pad_to_multiple_of=50, return_tensors="pt")
    assert out["input_values"].shape == (2, 150, 80)
    assert out["attention_mask"].sum(1).tolist() == [101, 26]

    out = fe(clips, sampling_rate=SR, padding="max_length", max_frames=70, pad_to_multiple_of=32, truncation=True)
    assert [x.shape for x in out["input_values"]] == [(96, 80), (96, 80)]
    assert [int(m.sum()) for m in out["attention_mask"]] == [70, 26]

    # truncation keeps the whole clip's normalisation: the kept frames equal the untruncated prefix
    full = fe(clips[0], sampling_rate=SR, return_tensors="pt")["input_values"]
    cut = fe(clips[0], sampling_rate=SR, truncation=True, max_frames=40, padding="longest", return_tensors="pt")
    assert cut["input_values"].shape == (1, 40, 80)
    assert torch.equal(cut["input_values"], full[:, :40])

    # no padding: list of per-clip arrays
    out = fe(clips, sampling_rate=SR, padding=False)
    assert [x.shape for x in out["input_values"]] == [(101, 80), (26, 80)]
    assert [x.tolist() for x in out["attention_mask"]] == [[1] * 101, [1] * 26]
    out = fe(clips, sampling_rate=SR, padding="do_not_pad", truncation=True, max_frames=26, return_tensors="np")
    assert out["input_values"].shape == (2, 26, 80)


def test_max_length_counts_samples_as_in_transformers_audio_extractors(fe):
    # Wav2Vec2 / Whisper count max_length in samples of raw audio; so does this extractor: 32000 samples (2 s at
    # 16 kHz) -> the 1 + 32000 // 160 = 201 frames a 2 s clip gives, never 32000 frames.
    clips = [_clip(32000, 0), _clip(8000, 1)]
    out = fe(clips, sampling_rate=SR, padding="max_length", max_length=32000, return_tensors="pt")
    assert out["input_values"].shape == (2, 201, 80)
    assert out["attention_mask"].sum(1).tolist() == [201, 51]
    # the same limit in frames, and truncation by samples: a 2 s clip cut at 1 s keeps the frames of 1 s
    by_frames = fe(clips, sampling_rate=SR, padding="max_length", max_frames=201, return_tensors="pt")
    assert torch.equal(by_frames["input_values"], out["input_values"])
    cut = fe(clips[0], sampling_rate=SR, truncation=True, max_length=16000, return_tensors="pt")
    assert cut["input_values"].shape == (1, 101, 80) == (1, fe.num_frames(16000), 80)
    # a frame count passed as max_length is caught: it is shorter than the shortest clip in samples
    with pytest.raises(ValueError, match=r"`max_length`=200 counts samples .* pass `max_frames=200` instead"):
        fe(clips, sampling_rate=SR, padding="max_length", max_length=200)
    with pytest.raises(ValueError, match=r"either `max_length` \(samples\) or `max_frames` \(frames\), not both"):
        fe(clips, sampling_rate=SR, padding="max_length", max_length=32000, max_frames=201)
    with pytest.raises(ValueError, match=r"Clip 0 of `raw_speech` has 201 frames, more than max_length=16000 samples"):
        fe(clips, sampling_rate=SR, padding="max_length", max_length=16000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"padding": "max_length", "max_length": 10**10}, r"`max_length`=10000000000 samples is too large: at most "),
        ({"padding": "max_length", "max_frames": 10**9}, r"`max_frames`=1000000000 is too large: at most 360001"),
        ({"pad_to_multiple_of": 10**9}, r"`pad_to_multiple_of`=1000000000 is too large: at most 360001"),
    ],
)
def test_output_lengths_are_bounded(fe, kwargs, message):
    # 10**10 samples would pad every clip to 62.5 M frames (20 GB each): refused before anything is allocated.
    with pytest.raises(ValueError, match=message):
        fe(_clip(4000), sampling_rate=SR, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_fft": 2**22, "win_length": 400}, r"`n_fft`=4194304 is too large: at most 32768"),
        ({"feature_size": 10**7}, r"`feature_size`=10000000 is too large: at most 512"),
        ({"hop_length": 10**6}, r"`hop_length`=1000000 is too large: at most 32768"),
        ({"sampling_rate": 10**8, "f_max": 8000.0}, r"`sampling_rate`=100000000 is too large: at most 768000"),
    ],
)
def test_constructor_sizes_are_bounded(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AxLSTMFeatureExtractor(**kwargs)


def test_a_crafted_preprocessor_config_is_refused_on_load(tmp_path):
    AxLSTMFeatureExtractor().save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "n_fft": 2**22, "win_length": 2**22}))
    with pytest.raises(ValueError, match=r"`n_fft`=4194304 is too large"):
        AxLSTMFeatureExtractor.from_pretrained(tmp_path)


def test_return_tensors(fe):
    clips = [_clip(3200, 0), _clip(4800, 1)]
    pt = fe(clips, sampling_rate=SR, return_tensors="pt")
    assert isinstance(pt, BatchFeature)
    assert isinstance(pt["input_values"], torch.Tensor) and pt["input_values"].dtype == torch.float32
    assert isinstance(pt["attention_mask"], torch.Tensor) and pt["attention_mask"].dtype == torch.int64
    np_out = fe(clips, sampling_rate=SR, return_tensors="np")
    assert isinstance(np_out["input_values"], np.ndarray) and np_out["input_values"].shape == (2, 31, 80)
    assert isinstance(np_out["attention_mask"], np.ndarray)
    lists = fe(clips, sampling_rate=SR)
    assert isinstance(lists["input_values"], list) and len(lists["input_values"]) == 2
    assert all(isinstance(x, np.ndarray) and x.shape == (31, 80) for x in lists["input_values"])
    np.testing.assert_array_equal(np.stack(lists["input_values"]), np_out["input_values"])
    np.testing.assert_array_equal(np_out["input_values"], pt["input_values"].numpy())
    # single clip still has a batch dimension; attention mask can be switched off
    single = fe(clips[0], sampling_rate=SR, return_tensors="pt", return_attention_mask=False)
    assert single["input_values"].shape == (1, 21, 80)
    assert "attention_mask" not in single
    no_mask = AxLSTMFeatureExtractor(return_attention_mask=False)
    assert "attention_mask" not in no_mask(clips, sampling_rate=SR)


def test_device_argument(fe):
    clip = _clip(4000, 0)
    ref = fe(clip, sampling_rate=SR, return_tensors="pt")["input_values"]
    out = fe(clip, sampling_rate=SR, return_tensors="pt", device="cpu")
    assert out["input_values"].device.type == "cpu"
    assert torch.equal(out["input_values"], ref)
    if torch.cuda.is_available():
        gpu = fe([clip, clip[:2000]], sampling_rate=SR, return_tensors="pt", device="cuda")
        assert gpu["input_values"].device.type == "cuda" and gpu["attention_mask"].device.type == "cuda"
        assert rel_err(gpu["input_values"][:1].cpu(), ref) < 1e-5
        as_np = fe(clip, sampling_rate=SR, return_tensors="np", device="cuda")["input_values"]
        assert rel_err(torch.from_numpy(as_np), ref) < 1e-5


def test_normalisation_statistics(fe):
    clips = [_clip(n, s) * (s + 1) for s, n in enumerate([9000, 3000, 16000])]
    out = fe(clips, sampling_rate=SR, return_tensors="pt")
    for b in range(3):
        t = int(out["attention_mask"][b].sum())
        region = out["input_values"][b, :t].double()
        assert abs(region.mean().item()) < 1e-5
        assert abs(region.std().item() - 1.0) < 1e-5  # unbiased, as torch.std
    raw = AxLSTMFeatureExtractor(do_normalize=False)(clips[0], sampling_rate=SR, return_tensors="pt")["input_values"]
    assert (raw - out["input_values"][:1, : raw.shape[1]]).abs().max() > 0.5  # do_normalize=False is raw
    assert torch.allclose(fe.normalize(raw), out["input_values"][:1, : raw.shape[1]], atol=1e-5)


# ---------------------------------------------------------------- serialisation


def test_save_load_round_trip(tmp_path):
    fe = AxLSTMFeatureExtractor(f_min=60.0, padding_value=-1.0)
    clip = _clip(5000, 4)
    before = fe(clip, sampling_rate=SR, return_tensors="np")["input_values"]  # also fills the private cache
    config = fe.to_dict()
    json.dumps(config)  # only plain values
    assert not any(key.startswith("_") for key in config)
    assert not any(isinstance(v, (torch.Tensor, np.ndarray)) for v in config.values())
    assert config["f_min"] == 60.0 and config["n_fft"] == 400 and config["mel_scale"] == "htk"
    assert config["feature_extractor_type"] == "AxLSTMFeatureExtractor"

    fe.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["f_min"] == 60.0 and saved["padding_value"] == -1.0
    assert not any(key.startswith("_") or "filter" in key or "window" in key for key in saved)

    assert saved["auto_map"] == {"AutoFeatureExtractor": "feature_extraction_axlstm.AxLSTMFeatureExtractor"}
    assert (tmp_path / "feature_extraction_axlstm.py").is_file()  # Hub remote code travels with the config

    loaded = AxLSTMFeatureExtractor.from_pretrained(tmp_path)
    assert {k: v for k, v in loaded.to_dict().items() if k != "auto_map"} == config
    np.testing.assert_array_equal(loaded(clip, sampling_rate=SR, return_tensors="np")["input_values"], before)
    overridden = AxLSTMFeatureExtractor.from_pretrained(tmp_path, f_min=50.0)
    assert overridden.f_min == 50.0


def test_mel_filters():
    filters = AxLSTMFeatureExtractor().mel_filters()
    assert filters.shape == (201, 80) and filters.dtype == torch.float64
    assert bool((filters >= 0).all()) and bool((filters.max(dim=0).values > 0).all())
    freqs = torch.linspace(0, 8000, 201)
    assert bool((filters[freqs < 50] == 0).all())
    centres = freqs[filters.argmax(dim=0)]
    assert bool((centres[1:] >= centres[:-1]).all()) and 50 < centres[0] < 120 and centres[-1] > 7500
    assert float(filters[-1].max()) < 1e-9  # 8000 Hz is the upper edge of the last filter
    slaney = AxLSTMFeatureExtractor(mel_scale="slaney").mel_filters()
    assert slaney.shape == (201, 80) and not torch.allclose(slaney, filters)


# ---------------------------------------------------------------- errors and warnings


def test_wrong_sampling_rate(fe):
    with pytest.raises(ValueError, match=r"sampling_rate`=44100.*16000 Hz.*resample_poly.*cast_column"):
        fe(_clip(4000), sampling_rate=44100)


def test_warns_without_sampling_rate(fe, caplog):
    with caplog.at_level(logging.WARNING):
        fe(_clip(4000))
    assert any("strongly recommended to pass the `sampling_rate`" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        fe(_clip(4000), sampling_rate=SR)
    assert not any("sampling_rate" in r.getMessage() for r in caplog.records)


def test_invalid_clips(fe):
    good = _clip(4000)
    with pytest.raises(ValueError, match="Clip 1 of `raw_speech` is empty"):
        fe([good, np.zeros(0, dtype=np.float32)], sampling_rate=SR)
    with pytest.raises(ValueError, match="Clip 0 of `raw_speech` is empty"):
        fe(np.zeros((2, 0), dtype=np.float32), sampling_rate=SR)
    nan = good.copy()
    nan[10] = np.nan
    with pytest.raises(ValueError, match="Clip 2 of `raw_speech` contains NaN"):
        fe([good, good, nan], sampling_rate=SR)
    inf = good.copy()
    inf[-1] = np.inf
    with pytest.raises(ValueError, match="Clip 1 of `raw_speech` contains Inf"):
        fe(np.stack([good, inf]), sampling_rate=SR)
    with pytest.raises(ValueError, match="Clip 0 of `raw_speech` contains Inf"):
        fe([torch.from_numpy(np.stack([good, inf]))], sampling_rate=SR)
    with pytest.raises(ValueError, match="Clip 1 of `raw_speech` has 100 samples; at least 201"):
        fe([good, good[:100]], sampling_rate=SR)
    with pytest.raises(ValueError, match=r"wrap it in a list"):
        fe(np.stack([good, good], axis=1), sampling_rate=SR)  # soundfile stereo passed bare
    with pytest.raises(ValueError, match="`raw_speech` is empty"):
        fe([], sampling_rate=SR)
    with pytest.raises(ValueError, match="4-D|3-D"):
        fe(np.zeros((1, 1, 1, 4000), dtype=np.float32), sampling_rate=SR)


def test_unsupported_types(fe):
    with pytest.raises(TypeError, match="file paths"):
        fe("audio.wav", sampling_rate=SR)
    with pytest.raises(TypeError, match="unsupported dtype int64"):
        fe(np.zeros(4000, dtype=np.int64), sampling_rate=SR)
    with pytest.raises(TypeError, match="unsupported dtype torch.bool"):
        fe(torch.zeros(4000, dtype=torch.bool), sampling_rate=SR)
    with pytest.raises(TypeError, match="is a dict"):
        fe([{"array": _clip(4000), "sampling_rate": SR}], sampling_rate=SR)
    with pytest.raises(TypeError, match="unsupported type object"):
        fe(object(), sampling_rate=SR)
    with pytest.raises(ValueError, match="could not be converted"):
        fe([["a", "b"]], sampling_rate=SR)


def test_invalid_options(fe):
    clips = [_clip(4000, 0), _clip(8000, 1)]
    with pytest.raises(ValueError, match="different lengths"):
        fe(clips, sampling_rate=SR, padding=False, return_tensors="pt")
    with pytest.raises(ValueError, match="requires `max_length`"):
        fe(clips, sampling_rate=SR, padding="max_length")
    with pytest.raises(ValueError, match="requires `max_length`"):
        fe(clips, sampling_rate=SR, truncation=True)
    with pytest.raises(ValueError, match="Clip 1 of `raw_speech` has 51 frames, more than max_frames=40"):
        fe(clips, sampling_rate=SR, padding="max_length", max_frames=40)
    with pytest.raises(ValueError, match="`padding`='longer'"):
        fe(clips, sampling_rate=SR, padding="longer")
    with pytest.raises(ValueError, match="return_tensors"):
        fe(clips, sampling_rate=SR, return_tensors="tf")
    with pytest.raises(ValueError, match="positive integer"):
        fe(clips, sampling_rate=SR, padding="max_length", max_length=0)
    with pytest.raises(ValueError, match="mel_scale"):
        AxLSTMFeatureExtractor(mel_scale="mel")
    with pytest.raises(ValueError, match="f_max"):
        AxLSTMFeatureExtractor(f_max=9000.0)


def test_read_only_float_array_is_accepted_without_warning(fe):
    # Decoded buffers (e.g. from ffmpeg in the pipeline) can be read-only; torch warns on wrapping those.
    import warnings

    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    expected = fe(audio.copy(), sampling_rate=16000, return_tensors="pt")["input_values"]
    audio.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fe(audio, sampling_rate=16000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(out, expected)


def test_padding_side_per_call_overrides_the_default(fe):
    clips = [_clip(4000, 0), _clip(8000, 1)]
    left = fe(clips, sampling_rate=SR, return_tensors="pt", padding_side="left")
    t0, t1 = _frames(4000), _frames(8000)
    assert left["attention_mask"][0].tolist() == [0] * (t1 - t0) + [1] * t0
    assert fe(clips, sampling_rate=SR, return_tensors="pt")["attention_mask"][0, 0] == 1  # default still right
    with pytest.raises(ValueError, match=r"`padding_side` must be \"right\" or \"left\", got 'top'"):
        fe(clips, sampling_rate=SR, padding_side="top")


def test_samples_whose_log_mel_is_not_finite_are_named(fe):
    good = _clip(4000)
    # Finite float32 samples this large overflow the power spectrum: NaN features, never returned.
    with pytest.raises(ValueError, match=r"Clip 1 of `raw_speech` gives NaN log-mel features: .* \|x\| = 1e\+30"):
        fe([good, np.full(4000, 1e30, dtype=np.float32)], sampling_rate=SR)
    # Finite float64 samples beyond float32: named as such, not as "contains Inf".
    with pytest.raises(ValueError, match=r"clip 0 of `raw_speech` has samples up to \|x\| = 1e\+200, beyond"):
        fe([np.full(4000, 1e200)], sampling_rate=SR)
    with pytest.raises(ValueError, match=r"`raw_speech` has samples up to \|x\| = 1e\+200"):
        fe(torch.full((4000,), 1e200, dtype=torch.float64), sampling_rate=SR)
    # A constant clip with normalize_eps=0 divides by zero.
    with pytest.raises(ValueError, match=r"Clip 0 of `raw_speech` gives NaN normalised log-mel .* normalize_eps=0"):
        AxLSTMFeatureExtractor(normalize_eps=0)(np.zeros(4000, dtype=np.float32), sampling_rate=SR)
    assert np.isfinite(fe(np.zeros(4000, dtype=np.float32), sampling_rate=SR)["input_values"][0]).all()


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"sampling_rate": "16000"}, TypeError, r"`sampling_rate` must be a number of Hz, got '16000' \(str\)"),
        ({"sampling_rate": True}, TypeError, r"`sampling_rate` must be a number of Hz, got True"),
        ({"sampling_rate": 0}, ValueError, r"`sampling_rate` must be a positive number of Hz, got 0"),
        ({"sampling_rate": SR, "truncation": "yes", "max_length": 5}, TypeError, r"`truncation` must be .* 'yes'"),
        ({"sampling_rate": SR, "return_attention_mask": "no"}, TypeError, r"`return_attention_mask` must be .*'no'"),
        ({"sampling_rate": SR, "max_length": 32000}, ValueError, r"`max_length`=32000 has no effect with padding"),
        ({"sampling_rate": SR, "max_frames": 10}, ValueError, r"`max_frames`=10 has no effect with padding=True"),
        ({"sampling_rate": SR, "max_length": 10.0, "truncation": True}, ValueError, r"`max_length` must be .* 10.0"),
        ({"sampling_rate": SR, "padding": 1}, ValueError, r"`padding`=1 is not supported"),
        ({"sampling_rate": SR, "return_tensors": ["pt"]}, ValueError, r"`return_tensors` must be .* \['pt'\]"),
        ({"sampling_rate": SR, "device": "gpu"}, ValueError, r"`device`='gpu' is not a torch device"),
        ({"sample_rate": SR}, TypeError, r"unexpected keyword argument\(s\) \['sample_rate'\]"),
    ],
)
def test_call_arguments_are_checked(fe, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        fe(_clip(4000), **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_device_without_cuda(fe):
    with pytest.raises(ValueError, match=r"`device`='cuda' was requested but CUDA is not available"):
        fe(_clip(4000), sampling_rate=SR, device="cuda")


def test_meta_tensors_and_helper_arguments(fe):
    with pytest.raises(ValueError, match=r"`raw_speech` is a tensor on the meta device"):
        fe(torch.empty(4000, device="meta"), sampling_rate=SR)
    with pytest.raises(TypeError, match=r"`num_frames` must hold integers, got dtype torch.float32"):
        fe.normalize(torch.zeros(2, 10, 80), [2.5, 3])
    with pytest.raises(TypeError, match=r"`num_frames` must be a sequence of integers, got \['a', 'b'\]"):
        fe.normalize(torch.zeros(2, 10, 80), ["a", "b"])
    with pytest.raises(ValueError, match=r"`num_samples` must be non-negative, got -5"):
        fe.num_frames(-5)
    with pytest.raises(TypeError, match=r"`num_samples` must be an integer, got 1.5"):
        fe.num_frames(1.5)
    assert fe.num_frames(np.int64(16000)) == 101


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feature_size": "80"}, r"`feature_size` must be a positive integer, got '80' \(str\)"),
        ({"hop_length": 160.5}, r"`hop_length` must be a positive integer, got the fractional number 160.5"),
        ({"n_fft": True}, r"`n_fft` must be a positive integer, got True"),
        ({"f_min": 4000.0, "f_max": 100.0}, r"f_min < f_max .* got f_min=4000.0, f_max=100.0"),
        ({"f_min": float("nan")}, r"`f_min` must be a finite number, got nan"),
        ({"f_max": "8000"}, r"`f_max` must be a number, got '8000'"),
        ({"log_offset": 0.0}, r"`log_offset` must be a positive number .* got 0.0"),
        ({"normalize_eps": -1.0}, r"`normalize_eps` must be a non-negative number, got -1.0"),
        ({"padding_value": float("inf")}, r"`padding_value` must be a finite number, got inf"),
        ({"do_normalize": "yes"}, r"`do_normalize` must be True or False, got 'yes'"),
        ({"return_attention_mask": 1}, r"`return_attention_mask` must be True or False, got 1"),
        ({"padding_side": "middle"}, r"`padding_side` must be \"right\" or \"left\", got 'middle'"),
        ({"mel_scale": None}, r"`mel_scale` must be \"htk\" or \"slaney\", got None"),
    ],
)
def test_constructor_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AxLSTMFeatureExtractor(**kwargs)


def test_an_invalid_preprocessor_config_gives_the_same_error(tmp_path):
    AxLSTMFeatureExtractor().save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    values = json.loads(path.read_text())
    path.write_text(json.dumps({**values, "hop_length": "160"}))
    with pytest.raises(ValueError, match=r"`hop_length` must be a positive integer, got '160'"):
        AxLSTMFeatureExtractor.from_pretrained(tmp_path)
    path.write_text(json.dumps({**values, "hop_length": 160.0}))  # integral float: taken as 160
    loaded = AxLSTMFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.hop_length == 160 and type(loaded.hop_length) is int


def test_the_sampling_rate_error_points_to_decoding_that_needs_no_torchcodec(fe):
    with pytest.raises(ValueError) as info:
        fe(_clip(4000), sampling_rate=44100)
    message = str(info.value)
    assert "hf_axlstm.audio.resample(audio, orig_sr, 16000)" in message
    assert 'cast_column("audio", Audio(decode=False))' in message
    assert "hf_axlstm.audio.decode_audio_value(value, 16000)" in message
    assert "torchcodec, which needs FFmpeg" in message  # why Audio(sampling_rate=...) is not the advice
    with pytest.raises(ValueError, match=r"resample\(audio, orig_sr, 8000\)"):
        AxLSTMFeatureExtractor(sampling_rate=8000, f_max=4000.0)(_clip(4000), sampling_rate=16000)


def test_a_bare_2d_array_is_a_batch_and_a_listed_one_is_one_multichannel_clip(fe):
    # transformers' rule (Whisper, AST, Wav2Vec2): rows of a bare 2-D array are separate mono clips
    left, right = _clip(8000, 1), _clip(8000, 2)
    batch = fe(np.stack([left, right]), sampling_rate=SR, return_tensors="np")["input_values"]
    assert batch.shape == (2, 51, 80)
    np.testing.assert_array_equal(batch[1], fe(right, sampling_rate=SR, return_tensors="np")["input_values"][0])
    # one stereo clip goes inside a list: its channels are averaged
    stereo = fe([np.stack([left, right])], sampling_rate=SR, return_tensors="np")["input_values"]
    mono = fe((left + right) / 2, sampling_rate=SR, return_tensors="np")["input_values"]
    assert stereo.shape == (1, 51, 80)
    np.testing.assert_allclose(stereo, mono, atol=1e-5)
    # soundfile's (samples, channels) passed bare cannot be a batch of 2-sample clips: refused with the advice
    with pytest.raises(ValueError, match=r"A 2-D array is read as \(batch, samples\); to pass one multi-channel"):
        fe(np.stack([left, right], axis=1), sampling_rate=SR)

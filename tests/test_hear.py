# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""The HEAR API (`hf_axlstm.hear`): fixture parity of the official layout, time-major correctness, batching,
bounded memory on long audio, and loading."""

import math

import pytest
import torch

from hf_axlstm import AxLSTMConfig, AxLSTMFeatureExtractor, AxLSTMModel, hear

from .conftest import rel_err

SR = 16000


def tiny_encoder(seed: int = 0, **overrides) -> AxLSTMModel:
    torch.manual_seed(seed)
    config = AxLSTMConfig(hidden_size=32, num_hidden_layers=2, **overrides)
    return AxLSTMModel(config).eval()


def noise(n: int, samples: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(n, samples, generator=g)


@pytest.fixture(scope="module")
def official_model(official_dir):
    return hear.load_model(str(official_dir / "official_checkpoint.pth"), layout="official", device="cpu")


# ----------------------------------------------------------------------------------------------- fixture parity


@pytest.mark.parametrize("i", [0, 1, 2])
def test_official_layout_matches_authors_hear_embeddings(official_model, expected, i):
    audio = expected[f"wav{i}"]
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, official_model)
    scene = hear.get_scene_embeddings(audio, official_model)
    assert embeddings.shape == expected[f"wav{i}_timestamp_embeddings"].shape
    assert rel_err(embeddings, expected[f"wav{i}_timestamp_embeddings"]) < 1e-5
    assert rel_err(scene, expected[f"wav{i}_scene_embedding"]) < 1e-5
    assert rel_err(timestamps, expected[f"wav{i}_timestamps_ms"]) < 1e-5


@pytest.mark.parametrize("i", [0, 1, 2])
def test_official_layout_from_the_authors_log_mel(official_model, expected, i):
    # Isolates the windowing / layout / frame dropping from the feature extractor.
    embeddings = official_model.embed_log_mel(expected[f"wav{i}_logmel"])
    assert rel_err(embeddings, expected[f"wav{i}_timestamp_embeddings"]) < 1e-5


def test_time_major_layout_differs_from_official_on_fixture(expected, official_dir):
    model = hear.load_model(str(official_dir / "official_checkpoint.pth"), device="cpu")
    embeddings = model.embed_log_mel(expected["wav1_logmel"])
    assert rel_err(embeddings, expected["wav1_timestamp_embeddings"]) > 0.1


# ------------------------------------------------------------------------------------------------------ shapes


def test_api_attributes_and_shapes():
    model = hear.load_model(tiny_encoder(), device="cpu")
    assert model.sample_rate == 16000
    assert model.scene_embedding_size == model.timestamp_embedding_size == 5 * 32
    audio = noise(3, 52800)  # 331 log-mel frames -> ceil(331 / 4) = 83 frames
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert embeddings.shape == (3, 83, 160) and embeddings.dtype == torch.float32
    assert timestamps.shape == (3, 83)
    torch.testing.assert_close(timestamps[1], torch.arange(83) * (3.3 / 83 * 1000))
    assert hear.get_scene_embeddings(audio, model).shape == (3, 160)


@pytest.mark.parametrize("samples", [4000, 31840, 32000, 63840])
def test_frame_count_is_ceil_of_log_mel_frames_over_four(samples):
    # 31840 and 63840 samples give exactly 200 / 400 log-mel frames: the "full extra window" is all padding
    # and all its frames are dropped.
    model = hear.load_model(tiny_encoder(), device="cpu")
    frames = 1 + samples // 160
    embeddings, _ = hear.get_timestamp_embeddings(noise(1, samples), model)
    assert embeddings.shape[1] == math.ceil(frames / 4)
    assert model.num_output_frames(frames) == math.ceil(frames / 4)


def test_batch_result_equals_single_results():
    model = hear.load_model(tiny_encoder(), device="cpu", window_batch_size=3)
    audio = noise(4, 70000, seed=1)
    batch, batch_ts = hear.get_timestamp_embeddings(audio, model)
    for i in range(4):
        single, single_ts = hear.get_timestamp_embeddings(audio[i : i + 1], model)
        torch.testing.assert_close(batch[i : i + 1], single, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(batch_ts[i : i + 1], single_ts)


def test_whole_mode_equals_windows_for_one_exact_window():
    # 31840 samples = 200 log-mel frames: one window, no padding, so both modes encode the same sequence.
    encoder = tiny_encoder()
    audio = noise(2, 31840)
    windows = hear.get_timestamp_embeddings(audio, hear.load_model(encoder, device="cpu"))[0]
    whole = hear.get_timestamp_embeddings(audio, hear.load_model(encoder, mode="whole", device="cpu"))[0]
    torch.testing.assert_close(whole, windows, rtol=1e-5, atol=1e-5)


def test_whole_mode_shapes_on_long_clip():
    model = hear.load_model(tiny_encoder(), mode="whole", device="cpu")
    embeddings, timestamps = hear.get_timestamp_embeddings(noise(2, 5 * SR), model)
    assert embeddings.shape == (2, math.ceil(501 / 4), 160)
    assert timestamps.shape == (2, 126)


# ------------------------------------------------------------------------------------------ time-major semantics


def local_encoder() -> AxLSTMModel:
    """An encoder whose output token depends only on its own patch and position: every block's down-projection is
    zero, so the residual blocks are the identity and nothing mixes along the sequence."""
    encoder = tiny_encoder(seed=3)
    with torch.no_grad():
        for layer in encoder.layers:
            layer.mixer.proj_down.weight.zero_()
    return encoder


def burst_frames(layout: str, start_s: float, length_s: float = 0.04) -> tuple[set[int], torch.Tensor]:
    model = hear.load_model(local_encoder(), layout=layout, device="cpu")
    background = noise(1, 4 * SR, seed=5) * 0.05
    burst = background.clone()
    a, b = int(start_s * SR), int((start_s + length_s) * SR)
    burst[0, a:b] += torch.sin(torch.arange(b - a) * 2 * math.pi * 1000 / SR)  # a loud 1 kHz tone burst
    with_burst, timestamps = hear.get_timestamp_embeddings(burst, model)
    without, _ = hear.get_timestamp_embeddings(background, model)
    change = (with_burst - without)[0].norm(dim=-1)  # (frames,)
    return {int(i) for i in torch.nonzero(change > 0.5 * change.max()).flatten()}, timestamps[0]


@pytest.mark.parametrize("start_s", [0.6, 2.5])  # in the first window and in the second one
def test_time_major_frames_follow_a_sound_in_time(start_s):
    frames, timestamps = burst_frames("time_major", start_s)
    expected_frame = int(start_s * 100) // 4  # 100 log-mel frames per second, 4 per output frame
    # The burst (40 ms = 4 log-mel frames, widened by the 25 ms window) touches at most 3 output frames.
    assert frames <= set(range(expected_frame - 1, expected_frame + 3)), frames
    assert expected_frame in frames or expected_frame + 1 in frames
    assert abs(timestamps[min(frames)].item() - start_s * 1000) < 60


@pytest.mark.parametrize("start_s", [0.6, 2.5])
def test_official_layout_fails_the_same_time_check(start_s):
    # The check above is discriminative: with the authors' layout the burst's tokens land in unrelated "frames".
    frames, _ = burst_frames("official", start_s)
    expected_frame = int(start_s * 100) // 4
    assert not frames <= set(range(expected_frame - 1, expected_frame + 3)), frames


# --------------------------------------------------------------------------------------------------- long audio


def test_long_audio_is_encoded_in_bounded_window_batches():
    model = hear.load_model(tiny_encoder(), device="cpu", window_batch_size=4)
    calls = []
    original = model.encoder.forward

    def spy(input_values, *args, **kwargs):
        calls.append(tuple(input_values.shape))
        return original(input_values, *args, **kwargs)

    model.encoder.forward = spy
    embeddings, _ = hear.get_timestamp_embeddings(noise(2, 30 * SR), model)  # 3001 frames -> 16 windows per clip
    assert embeddings.shape == (2, 751, 160)
    assert max(shape[0] for shape in calls) <= 4
    assert all(shape[1] == 200 for shape in calls)
    assert sum(shape[0] for shape in calls) == 2 * 16  # every needed window once, no full-padding window


@pytest.mark.parametrize("chunk_frames", [1, 7, 100, 299])
def test_long_clip_log_mel_in_pieces_equals_one_call(chunk_frames):
    model = hear.load_model(tiny_encoder(), device="cpu")
    audio = noise(2, 3 * SR + 37, seed=2)  # 301 frames
    whole = model.log_mel(audio)
    sizes = []
    original = model.feature_extractor.log_mel
    model.feature_extractor.log_mel = lambda w: sizes.append(tuple(w.shape)) or original(w)
    pieces = model.log_mel(audio, chunk_frames=chunk_frames)
    assert rel_err(pieces, whole) < 1e-6
    assert max(1 + shape[-1] // 160 for shape in sizes) <= chunk_frames + 4  # + the overlap margin


def test_whole_mode_long_audio_is_one_clip_per_call():
    model = hear.load_model(tiny_encoder(), mode="whole", device="cpu", window_batch_size=2)
    calls = []
    original = model.encoder.forward
    model.encoder.forward = lambda x, *a, **k: calls.append(tuple(x.shape)) or original(x, *a, **k)
    hear.get_timestamp_embeddings(noise(3, 10 * SR), model)  # 1001 frames > 2 windows' worth
    assert [c[0] for c in calls] == [1, 1, 1]


# ------------------------------------------------------------------------------------------------------ loading


def test_load_model_from_a_saved_folder(tmp_path):
    encoder = tiny_encoder(seed=7)
    encoder.save_pretrained(tmp_path)
    AxLSTMFeatureExtractor().save_pretrained(tmp_path)
    audio = noise(1, 20000)
    from_folder = hear.get_scene_embeddings(audio, hear.load_model(str(tmp_path), device="cpu"))
    from_object = hear.get_scene_embeddings(audio, hear.load_model(encoder, device="cpu"))
    torch.testing.assert_close(from_folder, from_object)


def test_load_model_errors():
    with pytest.raises(ValueError, match="needs model_path"):
        hear.load_model("")
    with pytest.raises(ValueError, match="layout"):
        hear.load_model(tiny_encoder(), layout="freq_major")
    with pytest.raises(ValueError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(torch.zeros(16000), hear.load_model(tiny_encoder(), device="cpu"))


def test_load_model_path_and_device_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'/no/such/folder' does not exist locally and is not a valid Hub"):
        hear.load_model("/no/such/folder")
    with pytest.raises(FileNotFoundError, match=r"is a folder without config.json"):
        hear.load_model(tmp_path)
    with pytest.raises(TypeError, match=r"model_path must be .* got int"):
        hear.load_model(5)
    with pytest.raises(ValueError, match=r"mode='chunks' is invalid"):
        hear.load_model("/no/such/folder", mode="chunks")  # options are checked before anything is loaded
    with pytest.raises(ValueError, match=r"device='gpu' is not a torch device"):
        hear.load_model(tiny_encoder(), device="gpu")
    with pytest.raises(ValueError, match=r"device=3.5 is invalid"):
        hear.load_model(tiny_encoder(), device=3.5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda' was requested but CUDA is not available"):
            hear.load_model(tiny_encoder(), device="cuda")
    with pytest.raises(TypeError, match=r"feature_extractor must be an AxLSTMFeatureExtractor or None, got str"):
        hear.AxLSTMHEARModel(tiny_encoder(), feature_extractor="logmel")


def test_an_invalid_preprocessor_config_is_an_error_not_the_default(tmp_path):
    import json

    tiny_encoder().save_pretrained(tmp_path)
    assert hear.load_model(tmp_path, device="cpu").feature_extractor.to_dict() == AxLSTMFeatureExtractor().to_dict()
    AxLSTMFeatureExtractor(f_min=100.0).save_pretrained(tmp_path)
    assert hear.load_model(tmp_path, device="cpu").feature_extractor.f_min == 100.0
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "hop_length": "x"}))
    with pytest.raises(ValueError, match=r"`hop_length` must be a positive integer, got 'x'"):
        hear.load_model(tmp_path, device="cpu")


def test_audio_and_log_mel_values_are_checked():
    model = hear.load_model(tiny_encoder(), device="cpu")
    audio = noise(3, 4000)
    audio[2, 7] = float("nan")
    with pytest.raises(ValueError, match=r"audio\[2\] has NaN samples"):
        hear.get_scene_embeddings(audio, model)
    audio[2, 7] = float("inf")
    with pytest.raises(ValueError, match=r"audio\[2\] has Inf samples"):
        hear.get_timestamp_embeddings(audio, model)
    with pytest.raises(ValueError, match=r"audio\[1\] gives non-finite log-mel features: .* \|x\| = 1e\+30"):
        hear.get_scene_embeddings(torch.cat([noise(1, 4000), torch.full((1, 4000), 1e30)]), model)
    with pytest.raises(ValueError, match=r"audio\[0\] has Inf samples after the cast to float32"):
        hear.get_scene_embeddings(torch.full((1, 4000), 1e200, dtype=torch.float64), model)
    with pytest.raises(ValueError, match=r"audio is a tensor on the meta device"):
        hear.get_scene_embeddings(torch.empty(1, 4000, device="meta"), model)
    with pytest.raises(TypeError, match=r"audio must be a float tensor, got torch.int16"):
        hear.get_scene_embeddings(torch.zeros(1, 4000, dtype=torch.int16), model)
    with pytest.raises(ValueError, match=r"log_mel has shape \(1, 100, 64\); expected \(n_sounds, frames, 80\)"):
        model.embed_log_mel(torch.zeros(1, 100, 64))
    with pytest.raises(ValueError, match=r"log_mel has shape \(1, 0, 80\)"):
        model.embed_log_mel(torch.zeros(1, 0, 80))
    with pytest.raises(ValueError, match=r"log_mel\[0\] has NaN values"):
        model.embed_log_mel(torch.full((1, 100, 80), float("nan")))
    with pytest.raises(TypeError, match=r"log_mel must be a float torch.Tensor .* got a ndarray"):
        model.embed_log_mel(torch.zeros(1, 100, 80).numpy())
    with pytest.raises(ValueError, match=r"chunk_frames=0 is invalid"):
        model.log_mel(noise(1, 4000), chunk_frames=0)
    with pytest.raises(ValueError, match=r"num_log_mel_frames=0 is invalid"):
        model.num_output_frames(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    encoder = tiny_encoder()
    audio = noise(2, 40000)
    cpu = hear.get_timestamp_embeddings(audio, hear.load_model(encoder, device="cpu"))[0]
    cuda_model = hear.load_model(tiny_encoder(), device="cuda")
    cuda, timestamps = hear.get_timestamp_embeddings(audio.cuda(), cuda_model)
    assert cuda.device.type == "cuda" and timestamps.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-3, atol=1e-4)

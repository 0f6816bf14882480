import io

import numpy as np
import pytest
import soundfile as sf

from hf_axlstm.audio import (
    AudioDecodeError,
    decode_audio_value,
    find_audio_files,
    load_audio,
    prepare_waveform,
    resample,
    to_float32,
    to_mono,
)


def _tone(freq: float, sr: int, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr).astype(np.float32)


def _peak_hz(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.fft.rfftfreq(len(audio), 1 / sr)[spectrum.argmax()])


def test_resampling_keeps_the_pitch_and_the_length():
    out = resample(_tone(1000.0, 44100), 44100, 16000)
    assert out.dtype == np.float32 and len(out) == 16000
    assert abs(_peak_hz(out, 16000) - 1000.0) <= 1.0


def test_resampling_filters_out_what_cannot_be_represented():
    # 12 kHz is above the 8 kHz Nyquist limit: dropping samples would alias it to 4 kHz; the FIR removes it.
    out = resample(_tone(12000.0, 48000), 48000, 16000)
    assert np.abs(out[200:-200]).max() < 0.02


def test_stereo_files_are_averaged_to_mono_at_16k(tmp_path):
    left, right = _tone(440.0, 22050), np.zeros(22050, dtype=np.float32)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, right], axis=1), 22050)
    audio = load_audio(path)
    assert audio.ndim == 1 and len(audio) == 16000
    assert 0.45 < np.abs(audio[1000:-1000]).max() < 0.55  # half of the left channel


def test_to_mono_takes_the_shorter_axis_as_channels():
    clip = np.stack([np.ones(100), np.zeros(100)])
    assert np.allclose(to_mono(clip), 0.5) and np.allclose(to_mono(clip.T), 0.5)


def test_the_audio_helpers_and_the_feature_extractor_apply_the_same_waveform_rules():
    import torch

    from hf_axlstm import AxLSTMFeatureExtractor

    rng = np.random.default_rng(3)
    for dtype, scale, offset in ((np.int8, 128, 0), (np.uint8, 128, 128), (np.int16, 32768, 0), (np.int32, 2**31, 0)):
        info = np.iinfo(dtype)
        pcm = rng.integers(info.min, info.max, size=1000, endpoint=True).astype(dtype)
        expected = (pcm.astype(np.float64) - offset) / scale  # exact in float64; float32 rounds it once
        np.testing.assert_array_equal(to_float32(pcm), expected.astype(np.float32))
        assert float(np.abs(to_float32(pcm)).max()) <= 1.0
    # a square clip counts its channels first, in hf_axlstm.audio as in the extractor
    square = np.stack([np.full(401, 0.5), np.zeros(401)], axis=0)
    square = np.concatenate([square, np.zeros((399, 401))]).astype(np.float32)  # (401, 401): row 0 is 0.5
    np.testing.assert_allclose(to_mono(square), square.mean(axis=0))
    fe = AxLSTMFeatureExtractor()
    listed = fe([square], sampling_rate=16000, return_tensors="np")["input_values"]
    mono = fe(to_mono(square), sampling_rate=16000, return_tensors="np")["input_values"]
    np.testing.assert_allclose(listed, mono, atol=1e-5)
    # and the same refusals, each naming what it was given
    with pytest.raises(AudioDecodeError, match=r"audio has unsupported dtype uint16: pass float audio"):
        to_float32(np.zeros(10, np.uint16))
    with pytest.raises(TypeError, match=r"`raw_speech` has unsupported dtype torch.uint16: pass float audio"):
        fe(torch.zeros(1000, dtype=torch.uint16), sampling_rate=16000)


def test_datasets_values_in_every_form_decode_the_same(tmp_path):
    audio = _tone(300.0, 16000, 0.5)
    path = tmp_path / "a.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    buffer = io.BytesIO()
    sf.write(buffer, audio, 16000, format="WAV", subtype="FLOAT")
    int16 = (audio * 32767).astype(np.int16)
    forms = [
        str(path),
        {"path": str(path), "bytes": None},
        {"path": "ignored.wav", "bytes": buffer.getvalue()},
        {"array": audio, "sampling_rate": 16000},
        {"array": int16, "sampling_rate": 16000},
    ]
    for value in forms:
        np.testing.assert_allclose(decode_audio_value(value), audio, atol=1e-4)


def test_unreadable_files_and_values_are_named(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(AudioDecodeError, match=r"cannot read audio file '.*broken.wav'"):
        load_audio(bad)
    with pytest.raises(AudioDecodeError, match=r"has an 'array' but no 'sampling_rate'"):
        decode_audio_value({"array": np.zeros(10)})
    with pytest.raises(AudioDecodeError, match=r"cannot decode an audio value of type int"):
        decode_audio_value(3)


def test_find_audio_files_is_recursive_sorted_and_checks_the_folder(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/2.flac", "1.WAV", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)] == ["1.WAV", "b/2.flac"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_audio_files(tmp_path / "missing")
    # A bare string is one extension, not its characters; a dot is optional.
    for extensions in (".flac", "flac", ("FLAC",)):
        assert [p.name for p in find_audio_files(tmp_path, extensions)] == ["2.flac"]
    with pytest.raises(ValueError, match=r"extensions=\(\) is invalid"):
        find_audio_files(tmp_path, ())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: resample(np.zeros(100, np.float32), "44100"),
            r"orig_sr='44100' is invalid; expected a positive whole",
        ),
        (lambda: resample(np.zeros(100, np.float32), 44100.5), r"orig_sr=44100.5 is invalid"),
        (lambda: resample(np.zeros(100, np.float32), True), r"orig_sr=True is invalid"),
        (lambda: resample(np.zeros(100, np.float32), 8000, 0), r"target_sr=0 is invalid"),
        (lambda: resample(np.zeros((2, 100), np.float32), 8000), r"resample takes mono audio .* shape \(2, 100\)"),
        (lambda: prepare_waveform(np.zeros(100, np.float32), None), r"sampling_rate=None is invalid"),
        (lambda: to_float32(np.full(10, 1e300)), r"samples up to \|x\| = 1e\+300, beyond the float32 range"),
        (lambda: to_float32(np.zeros(10, np.int64)), r"unsupported dtype int64"),
        (lambda: to_mono(np.zeros((0, 2))), r"audio has shape \(0, 2\): no samples"),
        (lambda: load_audio("/nonexistent/clip.wav"), r"audio file '/nonexistent/clip.wav' does not exist"),
        (lambda: load_audio(5), r"cannot read audio from 5 \(int\); expected a path or a file object"),
        (lambda: decode_audio_value({"array": np.zeros(10), "sampling_rate": "x"}), r"sampling_rate='x' is invalid"),
        (lambda: decode_audio_value({"array": [[1.0, 2.0], [3.0]], "sampling_rate": 16000}), r"cannot be read as an"),
        (lambda: decode_audio_value({"bytes": "RIFF", "path": "a.wav"}), r"'a.wav' has 'bytes' of type str"),
        (lambda: decode_audio_value(np.zeros(10, np.float32), target_sr=-1), r"target_sr=-1 is invalid"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(AudioDecodeError, match=message):
        call()


def test_int8_pcm_and_integral_float_rates():
    np.testing.assert_allclose(to_float32(np.array([-128, 0, 64], np.int8)), [-1.0, 0.0, 0.5])
    audio = _tone(440, 8000)
    np.testing.assert_allclose(resample(audio, 8000.0), resample(audio, 8000))


def test_a_folder_is_not_an_audio_file(tmp_path):
    with pytest.raises(AudioDecodeError, match=r"is a directory, not an audio file"):
        load_audio(tmp_path)


def _write_clip(path, seconds=0.1, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _tone(440.0, sr, seconds), sr, subtype="PCM_16")


def test_find_audio_files_follows_linked_folders_once_and_survives_loops(tmp_path):
    real = tmp_path / "elsewhere"
    for i in range(8):
        _write_clip(real / f"cls{i % 2}" / f"{i}.wav")
    root = tmp_path / "train"
    for i in range(2):
        _write_clip(root / "own" / f"{i}.wav")
    (root / "linked").symlink_to(real, target_is_directory=True)  # 8 of the 10 files live behind a link
    (root / "linked_again").symlink_to(real, target_is_directory=True)  # the same folder twice: counted once
    (root / "own" / "loop").symlink_to(root, target_is_directory=True)  # a loop back to the root
    (root / "dangling.wav").symlink_to(tmp_path / "missing.wav")
    (root / "file_link.wav").symlink_to(root / "own" / "0.wav")  # a linked file is a file
    files = find_audio_files(root)
    rel = [p.relative_to(root).as_posix() for p in files]
    assert len(files) == 11, rel
    assert sum(r.startswith("linked/") for r in rel) == 8 and not any(r.startswith("linked_again/") for r in rel)
    assert "file_link.wav" in rel and "dangling.wav" not in rel
    assert rel == sorted(rel)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
@pytest.mark.parametrize("extra", [9, 1000, -2])
def test_a_truncated_wav_is_refused_by_name(tmp_path, subtype, extra):
    path = tmp_path / "cut.wav"
    sf.write(path, np.zeros((16000, 2), np.float32), 16000, subtype=subtype)
    data = path.read_bytes()
    block = {"PCM_16": 4, "PCM_24": 6, "FLOAT": 8}[subtype]
    header = len(data) - 16000 * block
    keep = header + extra if extra > 0 else len(data) + extra
    path.write_bytes(data[:keep])
    present = (keep - header) // block
    message = rf"audio file '.*cut.wav' is truncated: its WAV header declares 16000 frames but the file holds only {present};"
    with pytest.raises(AudioDecodeError, match=message):
        load_audio(path)
    with pytest.raises(AudioDecodeError, match=r"'<in-memory audio bytes>' is truncated"):
        load_audio(io.BytesIO(path.read_bytes()))
    with pytest.raises(AudioDecodeError, match=r"audio bytes of 'x.wav'.* is truncated"):
        decode_audio_value({"path": "x.wav", "bytes": path.read_bytes()})


def test_the_60_byte_wav_of_the_report_is_refused_not_read_as_8_samples(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:60])
    assert sf.info(path).frames == 8  # what libsndfile alone reports
    with pytest.raises(AudioDecodeError, match=r"declares 16000 frames but the file holds only 8;"):
        load_audio(path)


def test_complete_wavs_with_extra_chunks_and_unknown_lengths_still_load(tmp_path):
    import struct

    samples = (np.arange(1600) % 100).astype(np.int16)
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = samples.tobytes()

    def wav(data_size, extra=b""):
        chunks = b"fmt " + struct.pack("<I", 16) + fmt + extra + b"data" + struct.pack("<I", data_size) + body
        return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks

    list_chunk = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"  # odd size: padded to even
    for data in (wav(len(body)), wav(len(body), list_chunk), wav(0xFFFFFFFF)):  # 0xFFFFFFFF: length unknown
        path = tmp_path / "ok.wav"
        path.write_bytes(data)
        np.testing.assert_allclose(load_audio(path), samples / 32768.0, atol=1e-6)


# ------------------------------------------------------------------------------ hf_axlstm.data and torchcodec


@pytest.fixture
def fake_torchcodec(tmp_path, monkeypatch):
    """A `torchcodec` that imports but whose decoders are `behaviour` ("broken": the libnvrtc error of pip's CUDA
    build next to a CPU torch; "works": a decoder that decodes)."""
    import sys

    from hf_axlstm import data

    def install(behaviour: str):
        package = tmp_path / "fake" / "torchcodec"
        (package / "decoders").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        if behaviour == "broken":
            body = 'raise OSError("libnvrtc.so.13: cannot open shared object file: No such file or directory")\n'
        else:
            body = (
                "import io, types, soundfile, torch\n"
                "class AudioDecoder:\n"
                "    def __init__(self, source):\n"
                "        self.data, self.rate = soundfile.read(io.BytesIO(source), dtype='float32')\n"
                "    def get_all_samples(self):\n"
                "        return types.SimpleNamespace(data=torch.from_numpy(self.data)[None], sample_rate=self.rate)\n"
            )
        (package / "decoders" / "__init__.py").write_text(body)
        monkeypatch.syspath_prepend(str(tmp_path / "fake"))
        monkeypatch.setattr(data, "_TORCHCODEC_WORKS", None)

    yield install
    for name in ("torchcodec.decoders", "torchcodec"):
        sys.modules.pop(name, None)


def test_a_torchcodec_that_imports_but_cannot_decode_is_not_used(fake_torchcodec, tmp_path, monkeypatch):
    import datasets

    from hf_axlstm import data

    fake_torchcodec("broken")
    assert data.torchcodec_works() is False
    folder = tmp_path / "corpus"
    for label in ("dog", "cat"):
        for i in range(2):
            _write_clip(folder / label / f"{i}.wav")

    def no_audiofolder(*args, **kwargs):
        raise AssertionError("datasets' audiofolder (torchcodec) was used")

    monkeypatch.setattr(datasets, "load_dataset", no_audiofolder)
    dataset = data.load_audio_dataset(folder)
    rows = sorted((row["label"], row["audio"]) for row in dataset["train"])
    assert [label for label, _ in rows] == ["cat", "cat", "dog", "dog"]
    assert decode_audio_value(rows[0][1]).shape == (1600,)


def test_a_working_torchcodec_is_detected(fake_torchcodec):
    from hf_axlstm import data

    fake_torchcodec("works")
    assert data.torchcodec_works() is True


def test_check_audio_files_names_a_truncated_wav(tmp_path):
    import datasets

    from hf_axlstm.data import DatasetInputError, check_audio_files

    good, cut = tmp_path / "good.wav", tmp_path / "cut.wav"
    _write_clip(good)
    _write_clip(cut)
    cut.write_bytes(cut.read_bytes()[:60])
    table = datasets.Dataset.from_dict({"audio": [str(good), str(cut)]})
    with pytest.raises(
        DatasetInputError, match=r"audio file '.*cut.wav' is truncated: .* holds only 8; .*\(split 'train'\)"
    ):
        check_audio_files(table, "audio", "train")

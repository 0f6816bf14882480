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

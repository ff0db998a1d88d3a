"""Issue 15: a long recording is held on disk while analysed, and whole-signal reductions
run block by block, so memory does not grow with length; the samples are the same."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from songmap.audio import blocks, load_audio


def _clip(seconds: float, sr: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("sr", [44_100, 48_000, 16_000])
def test_a_spilled_decode_gives_the_same_samples(tmp_path, monkeypatch, sr):
    path = tmp_path / f"clip{sr}.flac"
    sf.write(path, _clip(12.0, sr), sr, subtype="PCM_16")
    in_memory = load_audio(path)
    monkeypatch.setattr(blocks, "SPILL_ABOVE_S", 5.0)
    on_disk = load_audio(path)
    assert isinstance(on_disk.samples.base, (np.ndarray, memoryview)) or on_disk.samples.base is not None
    assert blocks.should_spill(len(on_disk.samples), on_disk.sr)
    assert len(on_disk.samples) == len(in_memory.samples)
    # soxr's streaming resampler gives what its one-shot call gives
    np.testing.assert_allclose(on_disk.samples, in_memory.samples, atol=1e-6)


def test_spilled_samples_are_a_file_mapping(tmp_path):
    x = blocks.spilled_samples(1000, folder=str(tmp_path))
    assert x.dtype == np.float32 and len(x) == 1000 and not x.any()
    x[:] = 0.5
    assert float(x.sum()) == 500.0
    assert list(tmp_path.iterdir()) == []  # unlinked at once: a crash leaves nothing behind


def test_spilled_arrays_share_one_releaser_thread_started_beforehand(tmp_path, thread_starts):
    """A worker starts the page releaser before it caps its memory: a spilled array (a long
    recording's samples, the beat tracker's back-pointers mid-analysis) then starts no
    thread, whose start under the cap could wait for ever; its mapping is let go with it."""
    import gc

    blocks.start_page_releaser()
    thread_starts.clear()
    before = blocks._RELEASER.watched()
    x = blocks.spilled_samples(1000, folder=str(tmp_path))
    y = blocks.spilled_array((10, 4), np.int32, folder=str(tmp_path))
    assert thread_starts == [] and blocks._RELEASER.watched() == before + 2
    x[:] = 0.25
    assert float(x.sum()) == 250.0  # written pages read back after the releaser's passes
    del x, y
    gc.collect()
    assert blocks._RELEASER.watched() == before


def test_block_reductions_match_the_whole_array(monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_SAMPLES", 7)
    x = np.linspace(-0.9, 0.7, 100, dtype=np.float32)
    assert blocks.peak_level(x) == float(np.max(np.abs(x)))
    assert blocks.peak_level(np.zeros(0, np.float32)) == 0.0
    x[[3, 50, 99]] = [np.nan, np.inf, -np.inf]
    assert blocks.replace_non_finite(x) == 3
    assert np.isfinite(x).all() and x[50] == 0.0


def test_a_long_analysis_gives_free_memory_back_between_stages(monkeypatch):
    # issue 15: glibc keeps tens of MB of a long recording's freed per-frame arrays in
    # its arenas unless trimmed; the stages of a long recording trim, a song's do not
    import warnings

    from songmap import pipeline
    from songmap.audio import Audio

    calls = []
    monkeypatch.setattr(pipeline, "give_back_free_memory", lambda: calls.append(1))
    analyzer = pipeline.Analyzer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # digital silence is reported as a warning
        for seconds, trims in ((30.0, 0), (pipeline._CONCURRENT_NETWORKS_MAX_S + 1.0, 1)):
            calls.clear()
            silence = Audio(np.zeros(int(seconds * 1000), np.float32), 1000, 1000, 1, "test")
            analyzer.analyze_audio(silence)
            assert len(calls) == trims  # digital silence: the timeline stage only


def test_free_memory_is_given_back_with_glibc():
    import platform

    from songmap.limits import _malloc_trim, give_back_free_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert _malloc_trim() is not None
    give_back_free_memory()

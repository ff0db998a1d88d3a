"""A recording's tuning (``songmap.harmony.tuning``) and the harmony networks hearing it
retuned onto A440 (``Analyzer``)."""

from __future__ import annotations

import numpy as np
import pytest

from songmap.harmony.tuning import (
    MIN_STRENGTH,
    RETUNE_FROM_CENTS,
    Tuning,
    correction_cents,
    estimate_tuning,
    retune,
)

SR = 44100


def _notes(cents: float, seconds: float = 6.0, *, midi=(57, 61, 64, 69, 72, 76)) -> np.ndarray:
    """A sequence of harmonic tones (four partials) ``cents`` off A440's semitones."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(int(seconds * 2)):
        f0 = 440.0 * 2 ** ((midi[i % len(midi)] - 69) / 12 + cents / 1200)
        t = np.arange(int(0.5 * SR)) / SR
        tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 5))
        out.append(tone * np.exp(-2.0 * t))
    return (0.2 * np.concatenate(out)).astype(np.float32)


@pytest.mark.parametrize("cents", [-45.0, -32.0, 0.0, 12.0, 38.0])
def test_the_offset_of_pitched_sound_is_found(cents):
    found = estimate_tuning(_notes(cents), SR)
    assert abs(found.cents - cents) < 2.0, found
    assert found.strength > 0.5 and found.peaks > 100
    assert found.reference_hz == pytest.approx(440.0 * 2 ** (found.cents / 1200))


def test_noise_and_silence_are_not_trusted():
    rng = np.random.default_rng(0)
    noise = estimate_tuning((0.1 * rng.standard_normal(SR * 6)).astype(np.float32), SR)
    assert noise.strength < MIN_STRENGTH and correction_cents(noise) == 0.0
    assert estimate_tuning(np.zeros(SR * 3, np.float32), SR).peaks == 0
    assert estimate_tuning(np.zeros(100, np.float32), SR) == Tuning(0.0, 0.0, 0)


def test_only_a_trusted_offset_of_some_size_is_corrected():
    assert correction_cents(Tuning(-32.0, 0.6, 900)) == -32.0
    assert correction_cents(Tuning(RETUNE_FROM_CENTS - 1.0, 0.9, 900)) == 0.0
    assert correction_cents(Tuning(40.0, MIN_STRENGTH / 2, 900)) == 0.0


def test_retuning_moves_the_notes_onto_a440_and_stretches_time_alike():
    sharp = _notes(30.0)
    moved = retune(sharp, SR, 30.0)
    assert abs(estimate_tuning(moved, SR).cents) < 2.0
    assert len(moved) / len(sharp) == pytest.approx(2 ** (30 / 1200), abs=1e-3)
    assert retune(sharp, SR, 0.0) is not None and len(retune(sharp, SR, 0.0)) == len(sharp)


@pytest.mark.models
def test_a_song_played_a_third_of_a_semitone_flat_reads_as_in_tune():
    """The bundled synthesiser's song (C Am F G) played 40 cents flat: the chords and key
    are those of the song in tune, the chroma's frames stay on the original's clock, and
    the tuning is reported."""
    import soxr

    from songmap.audio.decode import signal_from_array
    from songmap.examples import render_song
    from songmap.pipeline import Analyzer

    song = render_song(bars=16, bpm=100.0, seed=2)
    flat = soxr.resample(song.samples, song.sr * 2 ** (-40 / 1200), song.sr)
    analyzer = Analyzer()
    in_tune = analyzer.analyze_audio(signal_from_array(song.samples, song.sr))
    audio = signal_from_array(flat, song.sr)
    networks = analyzer.run_networks(audio)
    assert networks.tuning_cents == pytest.approx(-40.0, abs=3.0)
    # the retuned audio runs 2.3 % longer; its chroma is read on the original's time
    assert networks.chroma.fps == pytest.approx(10.0 * 2 ** (networks.tuning_cents / 1200))
    assert len(networks.chroma.values) / networks.chroma.fps == pytest.approx(audio.duration, abs=0.2)
    result = analyzer.analyze_audio(audio, networks=networks)
    assert result.key.label == in_tune.key.label
    assert result.key.tuning_cents == pytest.approx(-40.0, abs=3.0)
    assert abs(in_tune.key.tuning_cents or 0.0) < RETUNE_FROM_CENTS
    labels = [b.chord for b in result.chord_progression]
    assert labels[:8] == [b.chord for b in in_tune.chord_progression][:8]


def test_the_tuning_travels_with_the_saved_network_outputs(tmp_path):
    from songmap.signals import Activations, NetworkOutputs

    nets = NetworkOutputs(Activations(np.zeros((10, 2), np.float32), 100.0), np.zeros(24),
                          Activations(np.zeros((3, 12), np.float32), 10.2), -31.5, 0.7)
    nets.save(tmp_path / "n.npz")
    back = NetworkOutputs.load(tmp_path / "n.npz")
    assert (back.tuning_cents, back.tuning_strength, back.chroma.fps) == (-31.5, 0.7, 10.2)
    # a file saved before the tuning was measured: none was applied
    with np.load(tmp_path / "n.npz") as z:
        old = {k: z[k] for k in z.files if k != "tuning"}
    np.savez(tmp_path / "old.npz", **old)
    assert NetworkOutputs.load(tmp_path / "old.npz").tuning_cents == 0.0


def test_an_unknown_tuning_is_left_out_of_the_json():
    from songmap.schema import KeyInfo

    assert "tuning_cents" not in KeyInfo(label="C major", confidence=0.5).model_dump_json()
    assert '"tuning_cents":-12.5' in KeyInfo(label="C major", confidence=0.5,
                                              tuning_cents=-12.5).model_dump_json()


def test_the_summary_says_how_far_off_a440_a_recording_is():
    from songmap.cli.main import _tuning_text

    assert _tuning_text(-31.8) == "; tuned 32 cents flat (A4 = 432.0 Hz)"
    assert _tuning_text(12.0).startswith("; tuned 12 cents sharp (A4 = 443.")
    assert _tuning_text(4.0) == "" and _tuning_text(None) == ""

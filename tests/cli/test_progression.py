from songmap.cli.progression import progression_text, repeating_patterns


def test_a_four_bar_loop_played_eight_times_is_one_run() -> None:
    bars = ["Em", "C", "G", "D"] * 8
    assert repeating_patterns(bars) == [(["Em", "C", "G", "D"], 8)]
    assert progression_text(bars) == "Em C G D x8"


def test_a_held_chord_is_counted_not_repeated() -> None:
    assert progression_text(["Em"] * 16) == "Em x16"


def test_runs_follow_each_other_and_odd_bars_stand_alone() -> None:
    bars = ["N"] + ["Am", "F"] * 3 + ["C", "G", "C", "G", "Dm"]
    assert repeating_patterns(bars) == [(["N"], 1), (["Am", "F"], 3), (["C", "G"], 2), (["Dm"], 1)]
    assert progression_text(bars) == "N | Am F x3 | C G x2 | Dm"


def test_a_long_through_composed_song_falls_back_to_the_most_common_chords() -> None:
    bars = ["C", "Dm", "Em", "F", "G", "Am", "Bdim", "C", "A", "C"]
    text = progression_text(bars, max_runs=3)
    assert text.startswith("C | Dm | Em ...") and "most common: C" in text

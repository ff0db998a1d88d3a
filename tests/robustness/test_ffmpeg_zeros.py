"""A file named .mp3 that is mostly zero bytes is refused without FFmpeg holding it whole.

FFmpeg's MPEG audio parser keeps what it reads until the next frame: 1 KB of noise and
then zeros grew one buffer to the file's size while the stream was probed (~2.1x the
file at the peak). ``songmap.audio.ffmpeg_limits`` bounds any one FFmpeg allocation
while songmap decodes; the file is refused as undecodable, as before.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the bound needs the loaded libavutil's path")

ZEROS_MB = 256

LOAD = textwrap.dedent("""
    import resource, sys
    import av  # loaded before the baseline: its libraries are not the file's cost
    from songmap.audio import load_audio
    from songmap.errors import UndecodableAudioError

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        load_audio(sys.argv[1])
    except UndecodableAudioError as exc:
        print(type(exc).__name__)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    print(f"{grew:.0f}")
""")


def test_mostly_zero_mpeg_is_refused_within_a_bounded_peak(tmp_path):
    import numpy as np

    path = tmp_path / "zeros.mp3"
    with open(path, "wb") as f:
        f.write(np.random.default_rng(7).integers(0, 256, 1024, dtype=np.uint8).tobytes())
        f.truncate(1024 + ZEROS_MB * 2**20)  # the zeros, as a sparse file
    proc = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    kind, grew_mb = proc.stdout.split()
    assert kind in ("NotAudioError", "UndecodableAudioError")
    from songmap.audio.ffmpeg_limits import MAX_ALLOCATION_BYTES

    # unbounded, the peak grew by ~2.1x the file (540 MB here)
    assert float(grew_mb) < MAX_ALLOCATION_BYTES / 2**20 + 64, grew_mb

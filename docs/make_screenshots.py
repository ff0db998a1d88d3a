#!/usr/bin/env python3
"""Regenerate every picture in docs/ from the code as it is now, so none can go stale.

    python docs/make_screenshots.py            # plots and web page screenshots
    python docs/make_screenshots.py --plots    # only the songmap plot pictures

Plots: the bundled example (docs/plot_example.png) and a rendered 10-minute song
(docs/plot_long.png), analysed here. Web page: runs the browser tests
(tests/browser, Playwright + /usr/bin/chromium) with SONGMAP_UPDATE_SCREENSHOT=1, which
write docs/screenshot.png and docs/screenshots/*.png. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_plots() -> list[Path]:
    import soundfile as sf

    from songmap.audio import load_audio
    from songmap.examples import example_path, render_song
    from songmap.pipeline import Analyzer
    from songmap.plot import render_png

    analyzer = Analyzer()
    written = []
    example = example_path()
    audio = load_audio(example)
    written.append(_write(DOCS / "plot_example.png",
                          render_png(analyzer.analyze(example), audio.samples, audio.sr, width_px=1200)))
    song = render_song(bpm=124.0, bars=310, seed=5, progression=(
        "A:min", "F:maj", "C:maj", "G:maj", "A:min", "F:maj", "E:min", "E:min"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ten_minutes.flac"
        sf.write(path, song.samples, song.sr)
        written.append(_write(DOCS / "plot_long.png",
                              render_png(analyzer.analyze(path), song.samples, song.sr, width_px=1400)))
    return written


def make_page_screenshots() -> int:
    env = {**os.environ, "SONGMAP_UPDATE_SCREENSHOT": "1"}
    return subprocess.call([sys.executable, "-m", "pytest", "-q", str(REPO / "tests" / "browser")],
                           cwd=REPO, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plots", action="store_true", help="only the plot pictures")
    args = parser.parse_args()
    for p in make_plots():
        print(p.relative_to(REPO))
    if args.plots:
        return 0
    code = make_page_screenshots()
    if code == 0:
        for p in sorted([DOCS / "screenshot.png", *(DOCS / "screenshots").glob("*.png")]):
            print(p.relative_to(REPO))
    return code


if __name__ == "__main__":
    sys.exit(main())

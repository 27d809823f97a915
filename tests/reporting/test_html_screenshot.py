"""The HTML report opened in headless Chromium (Debian's package) shows its plots.

Skipped where Chromium or matplotlib is missing. The screenshot is read back and the plots'
colours are counted: the red bars of |analytic − numeric| and the blue lines of the V curve
and the Taylor remainder must be on screen, which they are not if the inline SVG is broken.
"""

import shutil
import subprocess

import numpy as np
import pytest

from gradcheck.reporting import to_html

from .sample import sample_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,2400",
]


def _pixels_near(image, rgb, tolerance=12):
    return int(np.sum(np.all(np.abs(image[..., :3] * 255 - rgb) <= tolerance, axis=-1)))


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_the_plots_show_in_a_browser(tmp_path):
    image_module = pytest.importorskip("matplotlib.image")
    page = tmp_path / "gradcheck.html"
    page.write_text(to_html(sample_run()), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = image_module.imread(shot)
    assert _pixels_near(image, (192, 57, 43)) > 20_000  # the bars (and the badges, ~1k)
    assert _pixels_near(image, (31, 119, 180)) > 500  # V curve, Taylor remainder, histogram

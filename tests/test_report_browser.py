"""The report in a real browser: headless Chromium opens index.html offline and every image loads.

Skips (with the reason) where no Chromium is installed (Debian: ``apt-get install chromium``)."""
from __future__ import annotations

import re

import pytest

from trainstats.analysis import analyze_runs
from trainstats.report import write_report
from trainstats.report.browser import check_report, find_chromium
from varmisuse_study import write_study  # tests/ is on sys.path (pytest's default import mode)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chromium() is None, reason="no Chromium found (Debian: apt-get install "
                                                                 "chromium; or set TRAINSTATS_CHROMIUM)")]


def test_every_image_loads_in_headless_chromium(tmp_path):
    runs = write_study(tmp_path / "runs", kinds=("label",), levels=(0.5,), epochs=4, n_train=120, n_dev=40)
    index = write_report(analyze_runs(runs), tmp_path / "report")
    n_img = len(re.findall(r"<img\b", index.read_text()))
    shot = tmp_path / "shot.png"
    result = check_report(index, screenshot=shot, window=(1280, 900))
    assert result.images == n_img > 10
    assert result.broken == [] and result.external == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert not list(index.parent.glob(".render-check-*"))  # the probe copy is gone
    # the check can fail: a missing figure is reported by its src
    (index.parent / "overview.png").unlink()
    assert check_report(index).broken == ["overview.png"]


def test_a_page_that_needs_the_network_is_caught(tmp_path):
    page = tmp_path / "index.html"
    page.write_text("<!doctype html><html><body><img src='https://example.invalid/fig.png'>"
                    "<link rel='stylesheet' href='//cdn.example.invalid/x.css'></body></html>")
    result = check_report(page)
    assert result.external == ["//cdn.example.invalid/x.css", "https://example.invalid/fig.png"]
    assert result.broken == ["https://example.invalid/fig.png"]  # no network: the image does not load

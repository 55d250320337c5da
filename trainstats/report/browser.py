"""Render a report in headless Chromium: a screenshot, and a check that every image loads offline.

Used by ``tests/test_report_browser.py`` and ``bench/report_render.py``; needs a Chromium binary
(Debian: ``apt-get install chromium``; or set ``TRAINSTATS_CHROMIUM`` to its path). Chromium runs
with a fresh profile, no sandbox (it is usually run as root in CI), no GPU, background networking off
and every host name resolving to nothing, so a page that needed the network would show it.

>>> from trainstats.report.browser import check_report      # doctest: +SKIP
>>> check_report("report/index.html", screenshot="shot.png")  # doctest: +SKIP
RenderCheck(images=41, broken=[], external=[], screenshot=PosixPath('shot.png'), seconds=3.2)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CHROMIUM_NAMES", "RenderCheck", "chromium_flags", "find_chromium", "check_report"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

_PROBE = """<script>window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.getAttribute('src'); });
  document.body.setAttribute('data-trainstats-check', JSON.stringify({images: imgs.length, broken: bad}));
});</script>"""
_EXTERNAL = re.compile(r"""(?:\bsrc|\bhref|url)\s*[=(]\s*['"]?\s*((?:https?:)?//[^'")\s>]+)""", re.IGNORECASE)
_RESOURCE = re.compile(r"""<(?:img|script|link|iframe|source|video|audio)\b[^>]*>|url\([^)]*\)""", re.IGNORECASE)


@dataclass
class RenderCheck:
    """What Chromium saw: ``images`` on the page, the ``broken`` ones (src), resources the page would
    fetch from the network (``external``), the screenshot written (or None) and the wall time."""

    images: int
    broken: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    seconds: float = 0.0


def find_chromium() -> str | None:
    """The Chromium binary: ``$TRAINSTATS_CHROMIUM`` or the first of :data:`CHROMIUM_NAMES` on PATH."""
    env = os.environ.get("TRAINSTATS_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def chromium_flags(profile: Path) -> list[str]:
    """Headless, sandbox-free, offline flags with a fresh profile directory."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
            "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}"]


def _run(binary: str, args: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="trainstats-chromium-") as profile:
        proc = subprocess.run([binary, *chromium_flags(Path(profile)), *args], capture_output=True, text=True,
                              timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{binary} exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def check_report(index_html: str | os.PathLike, *, screenshot: str | os.PathLike | None = None,
                 window: tuple[int, int] = (1280, 2400), chromium: str | None = None,
                 timeout: float = 120.0) -> RenderCheck:
    """Open ``index_html`` in headless Chromium and check that every ``<img>`` loads.

    A copy of the page with a small load-event probe is written beside it (so relative image paths
    resolve), dumped with ``--dump-dom`` and removed. ``screenshot``: also write a PNG of the top
    ``window`` (width, height in CSS pixels) of the page itself. Raises FileNotFoundError when there
    is no Chromium (:func:`find_chromium`) and RuntimeError when Chromium fails.
    """
    page = Path(index_html).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page}: no such report page")
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found: install it (Debian: apt-get install chromium) or set "
                                "TRAINSTATS_CHROMIUM to its path")
    text = page.read_text(encoding="utf-8")
    external = sorted({m.group(1) for tag in _RESOURCE.findall(text) for m in _EXTERNAL.finditer(tag)})
    t0 = time.perf_counter()
    probe = page.with_name(f".render-check-{os.getpid()}.html")
    try:
        probe.write_text(text.replace("</body>", _PROBE + "</body>") if "</body>" in text else text + _PROBE,
                         encoding="utf-8")
        dom = _run(binary, ["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], timeout)
    finally:
        probe.unlink(missing_ok=True)
    m = re.search(r"data-trainstats-check=\"([^\"]*)\"", dom)
    if m is None:
        raise RuntimeError(f"Chromium rendered {page} but the page's load event never ran (no check result)")
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    shot = None
    if screenshot is not None:
        shot = Path(screenshot).resolve()
        _run(binary, [f"--screenshot={shot}", f"--window-size={window[0]},{window[1]}", page.as_uri()], timeout)
        if not shot.is_file():
            raise RuntimeError(f"Chromium wrote no screenshot at {shot}")
    return RenderCheck(images=int(result["images"]), broken=list(result["broken"]), external=external,
                       screenshot=shot, seconds=time.perf_counter() - t0)

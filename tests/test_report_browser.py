"""The report's HTML in a real browser: Debian's chromium, headless.

The page is loaded as written (console messages captured from chromium's log: none
may be an error) and once more with a probe script appended (in a copy) that counts
tables and decoded images after the load event; a screenshot is kept in the test's
temporary folder. Skips, saying why, when chromium is not installed
(``apt-get install -y chromium``)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from pe_bringup.report.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium); the report's browser test needs it")

PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.title = `PROBE tables=${document.querySelectorAll("table").length} ` +
                   `images=${images.length} decoded=${decoded}`;
});
</script>
"""


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_renders_in_headless_chromium(tmp_path):
    out = tmp_path / "report"
    assert main(["--matrix", "small", "--episodes", "6", "--out", str(out),
                 "--cache", str(tmp_path / "cache"), "--no-progress"]) == 0
    page = out / "report.html"

    shot = tmp_path / "report.png"
    loaded = chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri())
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert console_messages(loaded.stderr) == []
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000

    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dumped = chromium(tmp_path, "--dump-dom", probe.as_uri())
    assert console_messages(dumped.stderr) == []
    found = re.search(r"PROBE tables=(\d+) images=(\d+) decoded=(\d+)", dumped.stdout)
    assert found, dumped.stdout[:500]
    tables, images, decoded = map(int, found.groups())
    assert tables == 2 + 2                       # 2 scenarios: metrics table + paired comparisons each
    assert images >= 5 and decoded == images     # plots and thumbnails all decode


def test_console_errors_are_detected(tmp_path):
    """The console check can fail: a page with a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>missingFunction();</script></body></html>")
    result = chromium(tmp_path, "--dump-dom", bad.as_uri())
    assert any("missingFunction" in line for line in console_messages(result.stderr))

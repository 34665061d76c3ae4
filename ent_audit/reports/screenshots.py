"""Each report's first screen as a PNG, for the README (``make screenshots``, after a demo).

What a newcomer sees before running anything: the latest run of every scheduled report in
``outputs/``, opened in Debian's headless Chromium at 1400 × 900 (the window the browser tests
use for "verdict on the first screen"), offline.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ent_audit.reports import registry, runner

WINDOW = (1400, 900)


def screenshot(page: Path, png: Path, *, window: tuple[int, int] = WINDOW) -> Path:
    """``page``'s first screen to ``png`` with headless Chromium (no network: the page
    carries everything it needs)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise FileNotFoundError("chromium introuvable : apt-get install chromium (make test)")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--proxy-server=127.0.0.1:9",  # nothing leaves the page
                f"--user-data-dir={profile}",
                f"--window-size={window[0]},{window[1]}",
                "--virtual-time-budget=5000",
                f"--screenshot={png.resolve()}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="premier écran de chaque rapport en PNG")
    parser.add_argument("--outputs", default="outputs", help="dossier des rapports")
    parser.add_argument("--dest", default="docs", help="dossier des PNG (défaut: docs)")
    args = parser.parse_args(argv)
    done = 0
    for report in registry.scheduled():
        found = [r for r in runner.runs(args.outputs, report.name) if r["manifest"].get("status")]
        page = found[0]["dir"] / f"{report.name}.html" if found else None
        if page is None or not page.exists():
            print(
                f"{report.name}: aucune exécution dans {args.outputs} (make demo)", file=sys.stderr
            )
            continue
        png = screenshot(page, Path(args.dest) / f"{report.name}.png")
        print(f"{report.name}: {png} ({png.stat().st_size // 1024} Kio)")
        done += 1
    return 0 if done else 2


if __name__ == "__main__":
    sys.exit(main())

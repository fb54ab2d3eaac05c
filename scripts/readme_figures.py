"""Regenerate the README's figures: `python scripts/readme_figures.py [--out docs/figures] [--dpi 130]`.

Runs the real commands with their defaults on the bundled cohort, into a temporary folder:

- ``bayes-rescue fit`` (skeptical prior, hierarchical model): headline, prior_posterior, forest, benefit_curve,
  rank, and a screenshot of its ``report.html`` (``docs/report.png``);
- ``bayes-rescue fit --prior all --bias``: the same five with every bundled prior, unadjusted and adjusted for the
  observational bias model, side by side (``*_all.png``), and its report's screenshot (``docs/report_all.png``);
- ``bayes-rescue priors --plot``: priors;
- ``bayes-rescue sensitivity --no-tipping``: the heat map of P(benefit) (default grid);
- ``bayes-rescue predict --design rescue-end-low --n 50:500:50``: the assurance curve;
- ``bayes-rescue validate --sims 100``: the SBC rank histograms (100 simulations show the figure type; the
  validation itself uses 200 or more).

Each figure is drawn at 300 dpi, as the commands write it, and copied into ``--out`` as a smaller PNG
(``--dpi``, default 130) for the README. A report's screenshot is its first screen in headless Chromium at
1280 x 900 (what a reader sees on opening it). ``--reports-only`` runs the two fits alone (their figures and
the screenshots).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from bayes_rescue.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
FIT_FIGURES = ("headline", "prior_posterior", "forest", "benefit_curve", "rank")
#: The window of a report screenshot (the first screen a reader sees).
SCREEN = (1280, 900)


def _screenshot(report: Path, dst: Path) -> Path:
    """The first screen of ``report`` in headless Chromium (``SCREEN``), as a 256-colour PNG."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        raise SystemExit("chromium is needed for the report screenshots")
    shot = dst.with_suffix(".full.png")
    subprocess.run(
        [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", f"--screenshot={shot}",
         f"--window-size={SCREEN[0]},{SCREEN[1]}", report.resolve().as_uri()],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    with Image.open(shot) as im:
        im.convert("RGB").quantize(colors=256).save(dst, optimize=True)
    shot.unlink()
    return dst


def _shrink(src: Path, dst: Path, dpi: int) -> Path:
    """Copy a 300-dpi PNG as a ``dpi`` PNG (Lanczos resampling, 256-colour palette)."""
    with Image.open(src) as im:
        scale = dpi / im.info.get("dpi", (300, 300))[0]
        small = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        small = small.convert("RGB").quantize(colors=256)  # 8-bit palette: a third of the size
        small.save(dst, dpi=(dpi, dpi), optimize=True)
    return dst


def _run(argv: list[str]) -> None:
    print("$ bayes-rescue " + " ".join(argv), flush=True)
    t0 = time.perf_counter()
    rc = cli_main(argv)
    if rc != 0:
        raise SystemExit(f"bayes-rescue {argv[0]} failed with exit code {rc}")
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "figures", help="folder (default: docs/figures)")
    p.add_argument("--dpi", type=int, default=130, help="resolution of the README copies (default: 130)")
    p.add_argument("--reports-only", action="store_true", help="only the two fits, their figures and screenshots")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one, every = tmp / "chen2025-skeptical", tmp / "chen2025-all-priors-bias"  # folder names = report titles
        _run(["fit", "--out", str(one), "--figure-format", "png"])
        for name in FIT_FIGURES:
            written.append(_shrink(one / "figures" / f"{name}.png", args.out / f"{name}.png", args.dpi))
        written.append(_screenshot(one / "report.html", args.out.parent / "report.png"))
        _run(["fit", "--prior", "all", "--bias", "--out", str(every), "--figure-format", "png"])
        for name in FIT_FIGURES:
            written.append(_shrink(every / "figures" / f"{name}.png", args.out / f"{name}_all.png", args.dpi))
        written.append(_screenshot(every / "report.html", args.out.parent / "report_all.png"))
        if args.reports_only:
            for path in written:
                print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
            return 0
        _run(["priors", "--plot", str(tmp / "priors.png")])
        written.append(_shrink(tmp / "priors.png", args.out / "priors.png", args.dpi))
        _run(["sensitivity", "--no-tipping", "--out", str(tmp / "sens"), "--figure-format", "png"])
        written.append(_shrink(tmp / "sens" / "heatmap_p_benefit_robust0.png", args.out / "heatmap.png", args.dpi))
        _run(["predict", str(one), "--design", "rescue-end-low", "--n", "50:500:50", "--out",
              str(tmp / "pos.csv"), "--figure", str(tmp / "assurance.png")])  # fmt: skip
        written.append(_shrink(tmp / "assurance.png", args.out / "assurance.png", args.dpi))
        _run(["validate", "--sims", "100", "--out", str(tmp / "sbc")])  # the figure type only, not a validation
        written.append(_shrink(tmp / "sbc" / "sbc_ranks.png", args.out / "sbc_ranks.png", args.dpi))
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

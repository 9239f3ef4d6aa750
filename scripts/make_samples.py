"""Regenerate ``data/samples/``: a tiny district (2 cameras, a few seconds) and its case photos.

Kept under 5 MB so it can live in the repository; tests and docs use it without rendering.
Run with ``make samples``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "data" / "samples" / "district"
LIMIT = 5 * 2**20


def main() -> None:
    sys.path.insert(0, str(REPO))
    from reunite.synth.bodies import BodyKit
    from reunite.synth.district_job import DistrictOptions, generate_district
    from reunite.synth.frames import DistrictRenderer
    from reunite.synth.renderer import Renderer

    renderer = Renderer(threads=2)
    kit = BodyKit()
    maps = kit.uv_maps(renderer)
    opts = DistrictOptions(
        OUT,
        seed=7,
        cameras=2,
        people=12,
        minutes=0.1,
        fps=2.0,
        width=640,
        height=360,
        overwrite=True,
        jpeg_quality=80,
    )
    generate_district(opts, lambda d: DistrictRenderer(d, kit, renderer, maps))
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({size / 2**20:.2f} MiB)")
    if size > LIMIT:
        shutil.rmtree(OUT)
        raise SystemExit(f"samples are {size / 2**20:.1f} MiB, over the 5 MiB limit: not kept")


if __name__ == "__main__":
    main()

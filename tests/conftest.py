"""Shared fixtures: the real data in ../shared, and one body kit + GL renderer per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"needs the real data and models in {SHARED} (absent on this machine)")
    return SHARED


@pytest.fixture(scope="session")
def renderer():
    from reunite.errors import RendererUnavailableError
    from reunite.synth.renderer import Renderer

    try:
        return Renderer(threads=2)
    except RendererUnavailableError as exc:
        pytest.skip(f"no headless OpenGL here: {exc}")


@pytest.fixture(scope="session")
def body_kit():
    from reunite.synth.bodies import BodyKit

    return BodyKit()


@pytest.fixture(scope="session")
def uv_maps(body_kit, renderer):
    return body_kit.uv_maps(renderer)


@pytest.fixture(scope="session")
def world_factory(body_kit, renderer, uv_maps):
    from reunite.synth.frames import DistrictRenderer

    return lambda district: DistrictRenderer(district, body_kit, renderer, uv_maps)


@pytest.fixture(scope="session")
def pipeline_district(tmp_path_factory, world_factory) -> Path:
    """A small rendered district for the ingest tests: 3 cameras at 640x360, 45 s at 2 fps,
    16 people (about 20 s to render)."""
    from reunite.synth.district_job import DistrictOptions, generate_district

    out = tmp_path_factory.mktemp("pipeline") / "district"
    options = DistrictOptions(
        out, seed=21, cameras=3, people=16, minutes=0.75, fps=2.0, width=640, height=360, hour=11.0
    )
    generate_district(options, world_factory)
    return out

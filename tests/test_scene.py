"""Static camera sites, daylight and carried accessories: valid meshes, sane layouts, seeded."""

import numpy as np
import pytest

from reunite.synth.accessories import ANCHORS, accessory_mesh
from reunite.synth.accessories import KINDS as ACCESSORIES
from reunite.synth.mesh import Mesh
from reunite.synth.scene import CLEARANCE, KINDS, Site, build_site, daylight


@pytest.fixture(scope="module")
def sites() -> dict[str, Site]:
    return {kind: build_site(np.random.default_rng(7), kind) for kind in KINDS}


def assert_valid(mesh: Mesh) -> None:
    n = len(mesh.positions)
    assert mesh.positions.shape == (n, 3) and mesh.normals.shape == (n, 3)
    assert mesh.uvs.shape == (n, 2) and mesh.faces.shape[1:] == (3,) and len(mesh.faces) > 0
    assert mesh.faces.max() < n
    assert np.isfinite(mesh.positions).all()
    np.testing.assert_allclose(np.linalg.norm(mesh.normals, axis=1), 1.0, atol=1e-4)
    assert mesh.uvs.min() >= 0.0 and mesh.uvs.max() <= 1.0
    assert mesh.texture.dtype == np.uint8 and mesh.texture.ndim == 3
    assert mesh.texture.shape[2] == 3
    # counter-clockwise seen from outside: each triangle's winding agrees with its vertex normals
    p = mesh.positions[mesh.faces].astype(np.float64)
    winding = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    solid = np.linalg.norm(winding, axis=1) > 1e-9
    facing = (winding * mesh.normals[mesh.faces].sum(1)).sum(1)
    assert (facing[solid] > 0).all()


def segment_distances(points: np.ndarray, path: np.ndarray) -> np.ndarray:
    a, b = path[:-1], path[1:]
    ab = b - a
    t = np.einsum("nsk,sk->ns", points[:, None] - a, ab) / (ab * ab).sum(1)
    closest = a + np.clip(t, 0, 1)[..., None] * ab
    return np.linalg.norm(closest - points[:, None], axis=2).min(1)


@pytest.mark.parametrize("kind", KINDS)
def test_site_meshes_are_valid_and_modest(sites: dict[str, Site], kind: str) -> None:
    site = sites[kind]
    assert site.kind == kind
    names = [m.name for m in site.meshes]
    assert len(set(names)) == len(names)
    assert names[0] == "ground" and set(site.occluder_names) <= set(names)
    assert len(site.occluder_names) >= 5
    for mesh in site.meshes:
        assert_valid(mesh)
        limit = 1024 if mesh.name == "ground" else 512
        assert max(mesh.texture.shape[:2]) <= limit, mesh.name
    assert sum(len(m.faces) for m in site.meshes) <= 30_000
    x0, y0, x1, y1 = site.extent
    assert 12.0 <= max(x1 - x0, y1 - y0) <= 30.0 and min(x1 - x0, y1 - y0) >= 4.0
    assert abs(x0 + x1) < 1e-6 and abs(y0 + y1) < 1e-6  # the origin is the area's centre


@pytest.mark.parametrize("kind", KINDS)
def test_walkways_cross_the_site_clear_of_obstacles(sites: dict[str, Site], kind: str) -> None:
    site = sites[kind]
    x0, y0, x1, y1 = site.extent
    assert len(site.walkways) >= 3
    directions = []
    for path in site.walkways:
        assert path.ndim == 2 and path.shape[1] == 2 and len(path) >= 2
        assert (path >= (x0 - 3, y0 - 3)).all() and (path <= (x1 + 3, y1 + 3)).all()
        for end in (path[0], path[-1]):  # people enter and leave out of the camera's area
            assert not (x0 < end[0] < x1 and y0 < end[1] < y1)
        obstacles = np.array(site.obstacles)
        gaps = segment_distances(obstacles[:, :2], path) - obstacles[:, 2]
        assert gaps.min() >= CLEARANCE - 1e-6
        d = path[-1] - path[0]
        directions.append(np.arctan2(d[1], d[0]) % np.pi)
    spread = [abs(a - b) for a in directions for b in directions]
    assert max(min(s, np.pi - s) for s in spread) > np.radians(30)  # along and across


def test_sites_are_deterministic_per_seed() -> None:
    a, b = (build_site(np.random.default_rng(3), "street") for _ in range(2))
    assert len(a.meshes) == len(b.meshes)
    for ma, mb in zip(a.meshes, b.meshes, strict=True):
        assert ma.name == mb.name
        np.testing.assert_array_equal(ma.positions, mb.positions)
        np.testing.assert_array_equal(ma.texture, mb.texture)
    for wa, wb in zip(a.walkways, b.walkways, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.obstacles == b.obstacles
    other = build_site(np.random.default_rng(4), "street")
    assert other.extent != a.extent


def test_kind_is_drawn_when_not_given() -> None:
    assert build_site(np.random.default_rng(0)).kind in KINDS
    with pytest.raises(ValueError, match="unknown site kind"):
        build_site(np.random.default_rng(0), "harbour")


def test_noon_is_brighter_than_night() -> None:
    def ground_light(hour: float, seed: int) -> float:
        light = daylight(np.random.default_rng(seed), hour)
        return sum(light.sun_rgb) * max(-light.sun_dir[2], 0.0) + sum(light.ambient_rgb)

    for seed in range(5):
        noon, night = (
            daylight(np.random.default_rng(seed), 12.0),
            daylight(np.random.default_rng(seed), 22.0),
        )
        assert ground_light(12.0, seed) > 3 * ground_light(22.0, seed)
        assert sum(noon.sky_rgb) > 3 * sum(night.sky_rgb)
        for light in (noon, night):
            assert np.linalg.norm(light.sun_dir) == pytest.approx(1.0)
            assert light.sun_dir[2] < 0  # light always comes from above
        morning = daylight(np.random.default_rng(seed), 7.5)  # sunrise is 5:00-7:00
        blue = [light.sun_rgb[2] / light.sun_rgb[0] for light in (morning, noon)]
        assert morning.sun_rgb[0] > 0 and blue[0] <= blue[1]  # low sun is warmer


@pytest.mark.parametrize("kind", ACCESSORIES)
def test_accessories_build_for_children_and_adults(kind: str) -> None:
    sizes = {}
    for height in (1.2, 1.75):
        mesh, anchor = accessory_mesh(kind, (30, 60, 160), height, np.random.default_rng(1))
        assert anchor == ANCHORS[kind]
        assert_valid(mesh)
        lo, hi = mesh.positions.min(0), mesh.positions.max(0)
        size = hi - lo
        assert 0.01 < size.max() < 1.3
        sizes[height] = (lo, hi)
    (lo_c, hi_c), (lo_a, hi_a) = sizes[1.2], sizes[1.75]
    assert (hi_a - lo_a).max() > (hi_c - lo_c).max()  # an adult's things are bigger
    if kind == "cane":
        for h, (lo, hi) in sizes.items():
            assert hi[2] - lo[2] == pytest.approx(0.48 * h, rel=0.03)
    if kind == "walker":
        for h, (lo, hi) in sizes.items():
            assert lo[2] == pytest.approx(0.0, abs=1e-3)  # on the ground
            assert hi[2] == pytest.approx(0.5 * h, abs=0.03)  # grips at hip height
            assert 0.35 < hi[0] - lo[0] < 0.62 and lo[1] > 0.0  # in front of the person
    if kind == "umbrella":
        lo, hi = sizes[1.75]
        assert 0.9 < hi[0] - lo[0] < 1.2 and 0.8 < hi[2] < 1.1  # ~0.5 m canopy, ~0.9 m up
    if kind == "backpack":
        lo, hi = sizes[1.75]
        assert lo[1] < -0.1 and 0.3 < hi[2] - lo[2] < 0.55  # behind the back, torso-sized
    if kind == "hat":
        lo, hi = sizes[1.75]
        assert abs(hi[2]) < 0.04 and 0.15 < hi[0] - lo[0] < 0.4  # on the crown, head-wide


def test_accessories_are_seeded_and_checked() -> None:
    a, _ = accessory_mesh("hat", (200, 0, 0), 1.7, np.random.default_rng(5))
    b, _ = accessory_mesh("hat", (200, 0, 0), 1.7, np.random.default_rng(5))
    np.testing.assert_array_equal(a.positions, b.positions)
    with pytest.raises(ValueError, match="unknown accessory"):
        accessory_mesh("sword", (0, 0, 0), 1.7, np.random.default_rng(0))
    with pytest.raises(ValueError, match="height"):
        accessory_mesh("hat", (0, 0, 0), 17.0, np.random.default_rng(0))

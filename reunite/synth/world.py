"""The district plan: cameras on a map, walking times between them, and who passes when.

Pure planning, no rendering: every sighting in the ground truth comes from a ``Visit`` here,
so the consistency of the world (appearances ordered in time, travel times respected) can be
checked without a single pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reunite.synth.appearance import Identity, sample_identity
from reunite.synth.camera import CctvCamera, place_camera
from reunite.synth.scene import Site, build_site

DETOUR = 1.3  # street distance over straight-line distance between two cameras
MAX_SPEED = 1.9  # m/s: nobody in the world walks faster (travel-time checks rely on it)
_STREET_NAMES = [
    "Seongsu-ro",
    "Ttukseom-ro",
    "Achasan-ro",
    "Wangsimni-ro",
    "Dongil-ro",
    "Gwangnaru-ro",
    "Cheonho-daero",
    "Yongmasan-ro",
    "Neungdong-ro",
    "Jayang-ro",
]


@dataclass(frozen=True)
class Visit:
    """One person crossing one camera's site along a walkway (times in seconds from clip start)."""

    person_id: int
    camera_id: int
    walkway: int
    reverse: bool
    lateral_m: float
    start: float
    end: float
    speed: float


@dataclass
class District:
    seed: int
    cameras: list[CctvCamera]
    sites: list[Site]
    edges: list[tuple[int, int, float]]  # camera ids and walking distance in metres
    identities: list[Identity]
    visits: list[Visit]
    duration_s: float
    hour: float
    start_epoch_s: float
    visible_walkways: dict[int, list[int]] = field(default_factory=dict)
    _by_camera: dict[int, list[Visit]] = field(default_factory=dict, repr=False)
    _index_key: tuple[int, int] = field(default=(0, 0), repr=False)

    @property
    def night(self) -> bool:
        return self.hour < 6.5 or self.hour > 19.5

    def camera(self, cam_id: int) -> CctvCamera:
        return self.cameras[cam_id - 1]

    def site(self, cam_id: int) -> Site:
        return self.sites[cam_id - 1]

    def visits_at(self, cam_id: int, t: float) -> list[Visit]:
        """Who crosses a camera's view at time t (in the order the visits were planned)."""
        key = (id(self.visits), len(self.visits))  # re-index if visits were replaced or added
        if self._index_key != key:
            self._by_camera = {}
            for v in self.visits:
                self._by_camera.setdefault(v.camera_id, []).append(v)
            self._index_key = key
        return [v for v in self._by_camera.get(cam_id, []) if v.start <= t <= v.end]

    def position(self, v: Visit, t: float) -> tuple[float, float, float, float]:
        """Site position (x, y), heading (rad) and distance walked at time t."""
        path = self.site(v.camera_id).walkways[v.walkway]
        path = path[::-1] if v.reverse else path
        walked = (t - v.start) * v.speed
        x, y, heading = point_along(path, walked)
        normal = heading + np.pi / 2
        return (x + v.lateral_m * np.cos(normal), y + v.lateral_m * np.sin(normal), heading, walked)


def polyline_length(path: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())


def point_along(path: np.ndarray, s: float) -> tuple[float, float, float]:
    seg = np.diff(path, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    s = float(np.clip(s, 0, cum[-1]))
    i = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1))
    f = (s - cum[i]) / max(lengths[i], 1e-9)
    p = path[i] + f * seg[i]
    return float(p[0]), float(p[1]), float(np.arctan2(seg[i][1], seg[i][0]))


def plan_district(
    seed: int,
    cameras: int,
    people: int,
    duration_s: float,
    size: tuple[int, int],
    hour: float | None = None,
    case_lead_s: float = 45.0,
) -> District:
    """Lay out cameras, walking graph, identities and their routes for one clip.

    Children and elderly people (the missing-person cases) start walking before the clip, so a
    camera sees them before it starts: that sighting is their "last-seen still".
    """
    streams = np.random.SeedSequence(seed).spawn(4)
    rng_map, rng_cam, rng_people, rng_routes = (np.random.default_rng(s) for s in streams)
    hour = float(rng_map.choice([8.5, 11.0, 13.5, 16.0, 18.5, 21.5])) if hour is None else hour
    night = hour < 6.5 or hour > 19.5  # as District.night
    plan = _plan_positions(rng_map, cameras)
    edges = _walking_graph(plan)
    sites, cams = [], []
    for i in range(cameras):
        site = build_site(rng_cam)
        name = f"{_STREET_NAMES[i % len(_STREET_NAMES)]} {int(rng_cam.integers(1, 300))}"
        cams.append(
            place_camera(
                rng_cam,
                i + 1,
                name,
                tuple(plan[i]),
                site.kind,
                site.extent,
                size,
                night,
                site.obstacles,
                site.walkways,
            )
        )
        sites.append(site)
    identities = [sample_identity(rng_people, pid + 1) for pid in range(people)]
    district = District(
        seed,
        cams,
        sites,
        edges,
        identities,
        [],
        duration_s,
        hour,
        start_epoch_s=1_795_000_000.0 + 86_400 * (seed % 200) + hour * 3600,
        visible_walkways={c.id: _walkways_in_view(c, s) for c, s in zip(cams, sites, strict=True)},
    )
    neighbours = _neighbours(district)
    for ident in identities:
        district.visits += _route(rng_routes, district, ident, neighbours, case_lead_s)
    return district


def repopulate(
    base: District,
    seed: int,
    first_id: int,
    people: int,
    hour: float,
    window_s: float,
    stops: tuple[int, int] = (2, 5),
    travel_scale: float = 0.05,
) -> District:
    """The same cameras and sites at another hour, walked by a new cohort of people.

    The re-ID data set is rendered cohort by cohort: identities stay disjoint, lighting and
    night/IR modes vary between cohorts, and memory stays flat. Travel between cameras is
    compressed (``travel_scale``): a re-ID set needs many cameras per person, not real time.
    """
    from dataclasses import replace

    from reunite.synth.cctv import sample_camera_look

    rng = np.random.default_rng([seed, first_id, 17])
    night = hour < 6.5 or hour > 19.5
    cams = [replace(c, look=sample_camera_look(rng, night)) for c in base.cameras]
    identities = [sample_identity(rng, first_id + i) for i in range(people)]
    district = District(
        seed,
        cams,
        base.sites,
        base.edges,
        identities,
        [],
        window_s,
        hour,
        start_epoch_s=base.start_epoch_s + first_id * 600,
        visible_walkways=base.visible_walkways,
    )
    neighbours = _neighbours(district)
    for ident in identities:
        district.visits += _route(
            rng,
            district,
            ident,
            neighbours,
            0.0,
            stops=stops,
            start=(0.0, 0.5 * window_s),
            travel_scale=travel_scale,
        )
    return district


def _walkways_in_view(cam: CctvCamera, site: Site, min_fraction: float = 0.3) -> list[int]:
    """Walkways a camera actually sees: people are routed along these, so every crossing of a
    camera is a sighting (a real camera's blind paths would only add invisible walkers)."""
    view = cam.view()
    seen = []
    for i, way in enumerate(site.walkways):
        pts = np.concatenate([np.column_stack([way, np.full(len(way), z)]) for z in (0.1, 1.6)])
        px, depth = view.project(pts)
        inside = (depth > 0.5) & (px[:, 0] >= 0) & (px[:, 0] < cam.width) & (px[:, 1] >= 0)
        inside &= px[:, 1] < cam.height
        if inside.mean() >= min_fraction:
            seen.append(i)
    return seen or list(range(len(site.walkways)))


def _neighbours(district: District) -> dict[int, list[tuple[int, float]]]:
    out: dict[int, list[tuple[int, float]]] = {c.id: [] for c in district.cameras}
    for a, b, d in district.edges:
        out[a].append((b, d))
        out[b].append((a, d))
    return out


def _plan_positions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Camera positions on the plan, 45–160 m apart like cameras along a district's streets."""
    pts: list[np.ndarray] = [np.zeros(2)]
    while len(pts) < n:
        base = pts[int(rng.integers(len(pts)))]
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(45, 120)
        cand = base + dist * np.array([np.cos(angle), np.sin(angle)])
        if min(np.linalg.norm(cand - p) for p in pts) >= 40:
            pts.append(cand)
    return np.round(np.array(pts), 1)


def _walking_graph(plan: np.ndarray) -> list[tuple[int, int, float]]:
    """A connected street graph: the minimum spanning tree plus short cross links."""
    n = len(plan)
    d = np.linalg.norm(plan[:, None] - plan[None], axis=2)
    in_tree, edges = {0}, set()
    while len(in_tree) < n:
        best = min(
            ((i, j) for i in in_tree for j in range(n) if j not in in_tree), key=lambda e: d[e]
        )
        edges.add(tuple(sorted(best)))
        in_tree.add(best[1])
    for i in range(n):
        for j in range(i + 1, n):
            if d[i, j] < 110:
                edges.add((i, j))
    return [(i + 1, j + 1, round(float(d[i, j] * DETOUR), 1)) for i, j in sorted(edges)]


def _route(
    rng: np.random.Generator,
    district: District,
    ident: Identity,
    neighbours: dict[int, list[tuple[int, float]]],
    case_lead_s: float,
    stops: tuple[int, int] | None = None,
    start: tuple[float, float] | None = None,
    travel_scale: float = 1.0,
) -> list[Visit]:
    is_case = ident.age_group in ("child", "elderly") and start is None
    if stops is None:
        stops = (3, 6) if is_case else (1, 5)
    n_stops = int(rng.integers(*stops))
    if start is None:
        start = (
            (-case_lead_s - 30, -case_lead_s + 15)
            if is_case
            else (-0.3 * district.duration_s, 0.9 * district.duration_s)
        )
    t = rng.uniform(*start)
    cam = int(rng.integers(1, len(district.cameras) + 1))
    prev = None
    visits: list[Visit] = []
    speed = ident.walking_speed
    for _ in range(n_stops):
        site = district.site(cam)
        ways = district.visible_walkways.get(cam) or list(range(len(site.walkways)))
        way = int(ways[int(rng.integers(len(ways)))])
        length = polyline_length(site.walkways[way])
        v_speed = float(np.clip(speed * rng.uniform(0.9, 1.1), 0.3, MAX_SPEED))
        visit = Visit(
            ident.id,
            cam,
            way,
            bool(rng.random() < 0.5),
            float(rng.uniform(-0.7, 0.7)),
            float(t),
            float(t + length / v_speed),
            v_speed,
        )
        visits.append(visit)
        # With one camera, people walk round the block and come back.
        options = (
            [(c, d) for c, d in neighbours[cam] if c != prev] or neighbours[cam] or [(cam, 120.0)]
        )
        nxt, dist = options[int(rng.integers(len(options)))]
        t = visit.end + dist / speed * rng.uniform(1.0, 1.4) * travel_scale
        prev, cam = cam, nxt
        if t > district.duration_s:
            break
    return visits

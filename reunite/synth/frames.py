"""Rendering the district: one camera at one instant, with its exact ground-truth boxes.

Ground truth comes from the renderer itself: each person writes its id into a second target,
so a box is the *visible* extent after occlusion and the lens. Its visibility is the
area-weighted fraction of the person's camera-facing surface whose pixel shows that person in
the final frame (a fixed sample of the body's vertices, projected through the lens).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from reunite.synth.bodies import BodyKit
from reunite.synth.cctv import apply_cctv, line_kernel
from reunite.synth.lens import (
    DistortionMaps,
    Intrinsics,
    build_distortion_maps,
    distort_image,
    distort_points,
)
from reunite.synth.people import GpuPerson, PersonModel, build_person, person_matrix
from reunite.synth.renderer import (
    Background,
    BlobShadow,
    Draw,
    Lighting,
    Renderer,
    RenderResult,
    View,
)
from reunite.synth.scene import daylight
from reunite.synth.world import District

MIN_VISIBLE_PIXELS = 25  # smaller remnants are not annotated (MOT annotators skip them too)
LOD_BELOW_PX = 300  # people shorter than this on the canvas are drawn with the coarse body
# Night exposures are long (auto-exposure at 1/25 s or slower): walkers smear along their path.
# By day (1/250 s or faster) the smear stays under a pixel and is not drawn.
NIGHT_EXPOSURE_S = 1 / 25


@dataclass(frozen=True)
class PersonBox:
    """A person's visible box in a frame (pixels, top-left origin) and visible fraction."""

    person_id: int
    x: float
    y: float
    w: float
    h: float
    visibility: float


@dataclass
class Frame:
    camera_id: int
    t: float
    rgb: np.ndarray  # the CCTV frame, RGB uint8
    boxes: list[PersonBox]
    ids: np.ndarray  # the frame's id buffer after the lens (int32)


@dataclass
class _Placed:
    """A person in one frame: pose, and projected surface samples for boxes and visibility."""

    pid: int
    matrix: np.ndarray
    phase: int
    model: PersonModel
    px: np.ndarray  # (S, 2) canvas pixels of the surface samples
    weights: np.ndarray  # (S,) area facing the camera
    amodal: tuple[np.ndarray, np.ndarray]  # canvas box (min xy, max xy) of the whole person
    velocity_px: np.ndarray  # (2,) image motion of the torso, pixels per second


@dataclass
class _Raster:
    cam_id: int
    t: float
    result: RenderResult
    people: list[_Placed]


@dataclass
class _CameraState:
    view: View
    canvas: Intrinsics  # the same pinhole canvas, as the lens model takes it
    maps: DistortionMaps
    scene: list[Draw]
    occluder_mask: np.ndarray  # pinhole-canvas pixels where a static prop stands


class DistrictRenderer:
    """Renders any camera of a ``District`` at any time; people are built and uploaded lazily."""

    def __init__(
        self,
        district: District,
        kit: BodyKit,
        renderer: Renderer,
        uv_maps: dict,
        max_people_on_gpu: int = 96,
        camera_cache: dict | None = None,
        max_people_in_memory: int = 256,
    ) -> None:
        self.district = district
        self.kit = kit
        self.renderer = renderer
        self.uv_maps = uv_maps
        self.max_people_on_gpu = max_people_on_gpu
        # Posed walk cycles take ~4 MB each: keep the recently seen, rebuild the others on demand
        # (a person is rebuilt identically from the district seed and its id).
        self.max_people_in_memory = max(max_people_in_memory, max_people_on_gpu)
        self.models: OrderedDict[int, PersonModel] = OrderedDict()
        self._gpu: OrderedDict[int, GpuPerson] = OrderedDict()
        # Camera state (uploaded site, lens maps) does not depend on who walks: it can be
        # shared between renderers of the same cameras (the re-ID job's cohorts).
        self._cameras: dict[int, _CameraState] = {} if camera_cache is None else camera_cache
        self.lighting = daylight(np.random.default_rng(district.seed + 7), district.hour)
        self._by_id = {p.id: p for p in district.identities}
        self._backgrounds: dict[int, Background] = {}  # baked per camera for this lighting

    # -- people ---------------------------------------------------------------------------------
    def person_model(self, pid: int) -> PersonModel:
        if pid in self.models:
            self.models.move_to_end(pid)
            return self.models[pid]
        rng = np.random.default_rng([self.district.seed, pid])
        model = build_person(self.kit, self.uv_maps, self._by_id[pid], rng)
        self.models[pid] = model
        while len(self.models) > self.max_people_in_memory:
            self.models.popitem(last=False)
        return model

    def gpu_person(self, pid: int) -> GpuPerson:
        if pid in self._gpu:
            self._gpu.move_to_end(pid)
            return self._gpu[pid]
        gp = GpuPerson(
            self.renderer, self.person_model(pid), self.kit.topology, self.kit.lod_topology
        )
        self._gpu[pid] = gp
        while len(self._gpu) > self.max_people_on_gpu:
            _, old = self._gpu.popitem(last=False)
            old.release()
        return gp

    def close(self) -> None:
        """Release everyone's GPU meshes and baked backgrounds (camera state stays cached)."""
        for gpu in self._gpu.values():
            gpu.release()
        self._gpu.clear()
        self.models.clear()
        for bg in self._backgrounds.values():
            bg.release()
        self._backgrounds.clear()

    def camera_lighting(self, cam_id: int) -> Lighting:
        """The light a camera sees by: daylight, street lamps, or its own IR illuminator.

        At night an IR camera lights the scene itself (a lamp beside the lens: light comes from
        the camera, the CCTV chain then adds the fall-off with distance); a colour camera at night
        sees by warm street lamps, far brighter than moonlight.
        """
        cam = self.district.camera(cam_id)
        sky = self.lighting
        if cam.look.night_ir:
            forward = np.subtract(cam.target, cam.eye)
            forward = forward / np.linalg.norm(forward)
            return Lighting(tuple(forward), (0.85, 0.85, 0.85), (0.25, 0.25, 0.25), (0.0, 0.0, 0.0))
        if max(sky.sun_rgb) < 0.2 and max(sky.ambient_rgb) < 0.25:  # night without IR
            lamps = tuple(
                max(a, b) for a, b in zip(sky.ambient_rgb, (0.36, 0.3, 0.22), strict=True)
            )
            return Lighting(sky.sun_dir, sky.sun_rgb, lamps, sky.sky_rgb)
        return sky

    def _background(self, cam_id: int, state: _CameraState) -> Background:
        if cam_id not in self._backgrounds:
            self._backgrounds[cam_id] = self.renderer.bake_background(
                state.view, state.scene, self.camera_lighting(cam_id)
            )
        return self._backgrounds[cam_id]

    # -- cameras --------------------------------------------------------------------------------
    def _camera(self, cam_id: int) -> _CameraState:
        if cam_id not in self._cameras:
            cam = self.district.camera(cam_id)
            view, src = cam.render_view()
            maps = build_distortion_maps(cam.intrinsics, cam.lens, src)
            site = self.district.site(cam_id)
            scene = [Draw(self.renderer.upload(m), np.eye(4)) for m in site.meshes]
            # Props (everything but the ground) as an id mask: where people may be hidden.
            props = [Draw(d.mesh, d.model, 1) for d in scene[1:]]
            dark = Lighting((0, 0, -1), (0, 0, 0), (0, 0, 0), (0, 0, 0))
            mask = self.renderer.render(view, props, dark).ids > 0
            self._cameras[cam_id] = _CameraState(view, src, maps, scene, mask)
        return self._cameras[cam_id]

    # -- frames ---------------------------------------------------------------------------------
    def render(self, cam_id: int, t: float, rng: np.random.Generator) -> Frame:
        """One camera at one instant: the CCTV frame and its ground-truth boxes."""
        return self.finish(self.rasterize(cam_id, t), rng)

    def render_sequence(
        self, cam_id: int, times: Iterable[float], rng: np.random.Generator
    ) -> Iterator[Frame]:
        """Frames of one camera in order, pipelined: while a worker thread runs the lens, the
        CCTV chain and the boxes of one frame (OpenCV and numpy release the GIL), the GL context
        rasterises the next. Output is identical to calling ``render`` in a loop."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for t in times:
                raw = self.rasterize(cam_id, t)
                if pending is not None:
                    yield pending.result()
                pending = pool.submit(self.finish, raw, rng)
            if pending is not None:
                yield pending.result()

    def rasterize(self, cam_id: int, t: float) -> _Raster:
        """The GL part of a frame (must run on the thread that owns the GL context)."""
        state = self._camera(cam_id)
        people = [self._place(v, t, state.view) for v in self.district.visits_at(cam_id, t)]
        people = [p for p in people if p is not None]
        draws: list[Draw] = []
        shadows = []
        light = self.camera_lighting(cam_id)
        for p in people:
            lod = p.amodal[1][1] - p.amodal[0][1] < LOD_BELOW_PX
            draws += self.gpu_person(p.pid).draws(p.matrix, p.phase, p.pid, lod=lod)
            shadows.append(_shadow(p.matrix, p.model.body.height_m, light))
        ir = self.district.camera(cam_id).look.night_ir  # the IR fall-off needs depth
        res = self.renderer.render(
            state.view,
            draws,
            light,
            shadows,
            with_depth=ir,
            background=self._background(cam_id, state),
        )
        return _Raster(cam_id, t, res, people)

    def finish(self, raw: _Raster, rng: np.random.Generator) -> Frame:
        """The CPU part of a frame: lens, CCTV chain, boxes and visibility (no GL calls)."""
        cam = self.district.camera(raw.cam_id)
        state = self._camera(raw.cam_id)
        res = raw.result
        ids = distort_image(res.ids, state.maps, nearest=True)
        ir = cam.look.night_ir
        depth = distort_image(res.depth, state.maps, nearest=True) if ir else None
        rgb = distort_image(res.rgb, state.maps)
        boxes = self._boxes(cam, state, raw.people, ids)
        if self.district.night:
            _blur_walkers(rgb, ids, boxes, raw.people, NIGHT_EXPOSURE_S)
        rgb = apply_cctv(rgb, cam.look, rng, depth=depth)
        return Frame(raw.cam_id, raw.t, rgb, boxes, ids)

    def _place(self, visit, t: float, view: View) -> _Placed | None:
        x, y, heading, walked = self.district.position(visit, t)
        model = self.person_model(visit.person_id)
        phase = int(walked / model.cycle_length_m * model.phases) % model.phases
        matrix = person_matrix(x, y, heading)
        samples = self.kit.visibility_samples
        world = model.body.vertices[phase][samples] @ matrix[:3, :3].T + matrix[:3, 3]
        px, depth = view.project(world)
        if (depth <= view.near).any():
            return None  # passing under the camera: not a usable view
        normals = model.body.normals[phase][samples] @ matrix[:3, :3].T
        eye = -view.view[:3, :3].T @ view.view[:3, 3]  # camera centre (rigid inverse)
        to_eye = eye - world
        facing = np.einsum("ij,ij->i", normals, to_eye) / np.linalg.norm(to_eye, axis=1)
        weights = self.kit.visibility_weights * np.clip(facing, 0.0, None)
        torso = np.array([[x, y, 0.55 * model.body.height_m]])
        step = 0.1 * visit.speed * np.array([[np.cos(heading), np.sin(heading), 0.0]])
        ends, _ = view.project(np.vstack([torso, torso + step]))
        velocity = (ends[1] - ends[0]) / 0.1
        return _Placed(
            visit.person_id, matrix, phase, model, px, weights, (px.min(0), px.max(0)), velocity
        )

    def _boxes(self, cam, state: _CameraState, people: list[_Placed], ids) -> list[PersonBox]:
        src = state.canvas
        boxes = []
        for p in people:
            lo, hi = p.amodal
            # The amodal box comes from a sample of the body's vertices; hats, backpacks and
            # fingertips may stick out, so search a generous margin around it.
            pad = 0.15 * (hi - lo) + 4
            lo, hi = lo - pad, hi + pad
            corners = distort_points(
                np.array([lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]]), cam.intrinsics, cam.lens, src
            )
            x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
            x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, (cam.width, cam.height))
            mask = ids[y0:y1, x0:x1] == p.pid
            if mask.sum() < MIN_VISIBLE_PIXELS:
                continue
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            vis = self._visibility(p, people, state, ids, cam, src)
            boxes.append(
                PersonBox(
                    p.pid,
                    float(x0 + cols[0]),
                    float(y0 + rows[0]),
                    float(cols[-1] - cols[0] + 1),
                    float(rows[-1] - rows[0] + 1),
                    vis,
                )
            )
        return boxes

    def _visibility(self, p: _Placed, people, state, ids, cam, src) -> float:
        """Area-weighted fraction of the person's camera-facing surface that shows in the frame.

        A surface sample counts as visible when the final id buffer shows this person at its
        pixel (another part of the same body in front still belongs to the silhouette); samples
        behind other people, props, carried umbrellas, or outside the frame do not.
        """
        lo, hi = p.amodal
        view = state.view
        pts = distort_points(p.px, cam.intrinsics, cam.lens, src)
        xi, yi = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
        ok = (xi >= 0) & (yi >= 0) & (xi < cam.width) & (yi < cam.height)
        overlaps = any(
            o.pid != p.pid and (o.amodal[0] < hi).all() and (o.amodal[1] > lo).all() for o in people
        )
        x0, y0 = np.clip(np.floor(lo).astype(int), 0, [view.width, view.height])
        x1, y1 = np.clip(np.ceil(hi).astype(int) + 1, 0, [view.width, view.height])
        props = state.occluder_mask[y0:y1, x0:x1].any()
        carries = any(m is not None for m in p.model.carried)
        if ok.all() and not overlaps and not props and not carries:
            return 1.0  # inside the frame and nothing can hide this person
        seen = np.zeros(len(pts), bool)
        seen[ok] = ids[yi[ok], xi[ok]] == p.pid
        total = p.weights.sum()
        return float(np.clip((p.weights * seen).sum() / total, 0, 1)) if total > 0 else 0.0


def _blur_walkers(
    rgb: np.ndarray,
    ids: np.ndarray,
    boxes: list[PersonBox],
    people: list[_Placed],
    exposure_s: float,
) -> None:
    """Motion blur of each moving person over the exposure, in place (before the ISP)."""
    by_id = {p.pid: p for p in people}
    height, width = ids.shape
    for b in boxes:
        dx, dy = by_id[b.person_id].velocity_px * exposure_s
        length = float(np.hypot(dx, dy))
        if length < 1.0:
            continue
        pad = int(np.ceil(length)) + 2
        x0, y0 = max(int(b.x) - pad, 0), max(int(b.y) - pad, 0)
        x1, y1 = min(int(b.x + b.w) + pad, width), min(int(b.y + b.h) + pad, height)
        kernel = line_kernel(dx, dy)
        region = rgb[y0:y1, x0:x1]
        blurred = cv2.filter2D(region, -1, kernel, borderType=cv2.BORDER_REPLICATE)
        person = (ids[y0:y1, x0:x1] == b.person_id).astype(np.float32)
        weight = cv2.filter2D(person, -1, kernel, borderType=cv2.BORDER_CONSTANT)[..., None]
        region[:] = (region * (1 - weight) + blurred * weight).astype(np.uint8)


def _shadow(matrix: np.ndarray, height: float, light: Lighting) -> BlobShadow:
    """A soft shadow stretched away from the sun; weak under an overcast or night sky."""
    sun = np.asarray(light.sun_dir)
    x, y = matrix[0, 3], matrix[1, 3]
    horiz = np.hypot(sun[0], sun[1])
    elev = np.arctan2(-sun[2], max(horiz, 1e-6))
    length = float(np.clip(height / np.tan(max(elev, 0.25)), 0.3, 2.5 * height))
    angle = float(np.arctan2(sun[1], sun[0]))
    sun_strength = float(np.mean(light.sun_rgb))
    strength = float(np.clip(0.15 + 0.5 * sun_strength, 0.15, 0.6))
    cx = x + 0.5 * length * np.cos(angle) * 0.8
    cy = y + 0.5 * length * np.sin(angle) * 0.8
    return BlobShadow(cx, cy, max(length * 0.55, 0.3), 0.28 * height / 1.7, angle, strength)

"""Rendering the district: one camera at one instant, with its exact ground-truth boxes.

Ground truth comes from the renderer itself: each person writes its id into a second target,
so a box is the *visible* extent after occlusion and the lens, and its visibility is the visible
fraction of the person's whole silhouette (rendered alone when anything could hide them).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from reunite.synth.bodies import BodyKit
from reunite.synth.cctv import apply_cctv
from reunite.synth.lens import DistortionMaps, build_distortion_maps, distort_image, distort_points
from reunite.synth.people import GpuPerson, PersonModel, build_person, person_matrix
from reunite.synth.renderer import BlobShadow, Draw, Lighting, Renderer, View
from reunite.synth.scene import daylight
from reunite.synth.world import District

MIN_VISIBLE_PIXELS = 25  # smaller remnants are not annotated (MOT annotators skip them too)


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
class _CameraState:
    view: View
    maps: DistortionMaps
    scene: list[Draw]
    occluder_mask: np.ndarray  # pinhole-canvas pixels where a static prop stands
    area_scale: float


def lighting_for(hour: float, rng: np.random.Generator) -> Lighting:
    """Adapt the scene module's daylight to the renderer's lighting record."""
    d = daylight(rng, hour)
    return Lighting(
        tuple(float(v) for v in d.sun_direction),
        tuple(float(v) * float(d.sun_intensity) for v in d.sun_colour),
        tuple(float(v) * float(d.ambient_intensity) for v in d.ambient_colour),
        tuple(float(v) for v in d.sky_colour),
    )


class DistrictRenderer:
    """Renders any camera of a ``District`` at any time; people are built and uploaded lazily."""

    def __init__(
        self, district: District, kit: BodyKit, renderer: Renderer, uv_maps: dict,
        max_people_on_gpu: int = 96, camera_cache: dict | None = None,
    ) -> None:
        self.district = district
        self.kit = kit
        self.renderer = renderer
        self.uv_maps = uv_maps
        self.max_people_on_gpu = max_people_on_gpu
        self.models: dict[int, PersonModel] = {}
        self._gpu: OrderedDict[int, GpuPerson] = OrderedDict()
        # Camera state (uploaded site, lens maps) does not depend on who walks: it can be
        # shared between renderers of the same cameras (the re-ID job's cohorts).
        self._cameras: dict[int, _CameraState] = {} if camera_cache is None else camera_cache
        self.lighting = lighting_for(district.hour, np.random.default_rng(district.seed + 7))
        self._by_id = {p.id: p for p in district.identities}

    # -- people ---------------------------------------------------------------------------------
    def person_model(self, pid: int) -> PersonModel:
        if pid not in self.models:
            rng = np.random.default_rng([self.district.seed, pid])
            self.models[pid] = build_person(self.kit, self.uv_maps, self._by_id[pid], rng)
        return self.models[pid]

    def gpu_person(self, pid: int) -> GpuPerson:
        if pid in self._gpu:
            self._gpu.move_to_end(pid)
            return self._gpu[pid]
        gp = GpuPerson(self.renderer, self.person_model(pid), self.kit.topology)
        self._gpu[pid] = gp
        while len(self._gpu) > self.max_people_on_gpu:
            _, old = self._gpu.popitem(last=False)
            old.release()
        return gp

    def forget(self, pid: int) -> None:
        """Drop a person who will not be seen again (keeps memory flat over long jobs)."""
        self.models.pop(pid, None)
        gp = self._gpu.pop(pid, None)
        if gp is not None:
            gp.release()

    def close(self) -> None:
        """Release everyone's GPU meshes (camera state stays with its cache)."""
        for pid in list(self._gpu):
            self.forget(pid)
        self.models.clear()

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
            centre = np.array([[cam.width / 2, cam.height / 2]])
            jac = distort_points(
                np.vstack([centre, centre + [1, 0], centre + [0, 1]]) - [cam.width / 2 - src.cx,
                                                                       cam.height / 2 - src.cy],
                cam.intrinsics, cam.lens, src,
            )
            area = abs(np.cross(jac[1] - jac[0], jac[2] - jac[0]))
            self._cameras[cam_id] = _CameraState(view, maps, scene, mask, float(area))
        return self._cameras[cam_id]

    # -- frames ---------------------------------------------------------------------------------
    def render(self, cam_id: int, t: float, rng: np.random.Generator) -> Frame:
        cam = self.district.camera(cam_id)
        state = self._camera(cam_id)
        people = []
        for visit in self.district.visits_at(cam_id, t):
            x, y, heading, walked = self.district.position(visit, t)
            model = self.person_model(visit.person_id)
            phase = int(walked / model.cycle_length_m * model.phases) % model.phases
            people.append((visit.person_id, person_matrix(x, y, heading), phase, model))
        draws: list[Draw] = list(state.scene)
        shadows = []
        sun = np.array(self.lighting.sun_dir)
        for pid, matrix, phase, model in people:
            draws += self.gpu_person(pid).draws(matrix, phase, pid)
            shadows.append(_shadow(matrix, model.body.height_m, sun, self.lighting))
        res = self.renderer.render(state.view, draws, self.lighting, shadows, len(state.scene))
        ids = distort_image(res.ids, state.maps, nearest=True)
        depth = distort_image(res.depth, state.maps, nearest=True)
        rgb = distort_image(res.rgb, state.maps)
        rgb = apply_cctv(rgb, cam.look, rng, depth=depth)
        boxes = self._boxes(cam_id, state, people, res.ids, ids)
        return Frame(cam_id, t, rgb, boxes, ids)

    def _boxes(self, cam_id, state, people, canvas_ids, ids) -> list[PersonBox]:
        cam = self.district.camera(cam_id)
        view = state.view
        amodal = {}
        for pid, matrix, phase, model in people:
            pts = model.body.vertices[phase][::9]
            world = pts @ matrix[:3, :3].T + matrix[:3, 3]
            px, depth = view.project(world)
            if (depth <= view.near).any():
                continue
            amodal[pid] = (px.min(0), px.max(0))
        boxes = []
        counts = np.bincount(ids.ravel()[ids.ravel() > 0], minlength=1)
        for pid, matrix, phase, model in people:
            if pid not in amodal or pid >= len(counts) or counts[pid] < MIN_VISIBLE_PIXELS:
                continue
            lo, hi = amodal[pid]
            corners = distort_points(
                np.array([lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]]), cam.intrinsics, cam.lens,
                view_intrinsics(view),
            )
            x0, y0 = np.floor(corners.min(0)).astype(int) - 2
            x1, y1 = np.ceil(corners.max(0)).astype(int) + 3
            x0, y0 = max(x0, 0), max(y0, 0)
            x1, y1 = min(x1, cam.width), min(y1, cam.height)
            mask = ids[y0:y1, x0:x1] == pid
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            if len(rows) == 0:
                continue
            visible = float(mask.sum())
            bx0, by0 = x0 + cols[0], y0 + rows[0]
            bw, bh = cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1
            vis = self._visibility(pid, state, amodal, people, visible, cam)
            boxes.append(PersonBox(pid, float(bx0), float(by0), float(bw), float(bh), vis))
        return boxes

    def _visibility(self, pid, state, amodal, people, visible_px, cam) -> float:
        lo, hi = amodal[pid]
        view = state.view
        inside = lo[0] >= 0 and lo[1] >= 0 and hi[0] < view.width and hi[1] < view.height
        overlaps = any(
            o != pid and (amodal[o][0] < hi).all() and (amodal[o][1] > lo).all()
            for o in amodal
        )
        x0, y0 = np.clip(np.floor(lo).astype(int), 0, [view.width, view.height])
        x1, y1 = np.clip(np.ceil(hi).astype(int) + 1, 0, [view.width, view.height])
        props = state.occluder_mask[y0:y1, x0:x1].any()
        model = self.person_model(pid)
        carries = any(m is not None for m in model.carried)
        if inside and not overlaps and not props and not carries:
            # Nothing can hide this person: all rendered pixels are visible (frame-edge aside).
            return 1.0
        full = self._alone_pixels(pid, state, amodal[pid], people)
        if full <= 0:
            return 0.0
        return float(np.clip(visible_px / (full * state.area_scale), 0.0, 1.0))

    def _alone_pixels(self, pid, state, box, people) -> float:
        """Pixels the person's whole silhouette covers, rendered alone in its amodal box."""
        (x0, y0), (x1, y1) = box
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        scale = min(1.0, 96.0 / h)
        out_w, out_h = max(int(np.ceil(w * scale)), 2), max(int(np.ceil(h * scale)), 2)
        view = state.view.window(x0, y0, x0 + out_w / scale, y0 + out_h / scale, out_w, out_h)
        _, matrix, phase, _ = next(p for p in people if p[0] == pid)
        gp = self.gpu_person(pid)
        draws = [d for d in gp.draws(matrix, phase, pid) if d.object_id == pid]
        res = self.renderer.render(view, draws, self.lighting)
        return float((res.ids == pid).sum()) / (scale * scale)


def view_intrinsics(view: View):
    from reunite.synth.lens import Intrinsics

    return Intrinsics(view.fx, view.fy, view.cx, view.cy, view.width, view.height)


def _shadow(matrix: np.ndarray, height: float, sun: np.ndarray, light: Lighting) -> BlobShadow:
    """A soft shadow stretched away from the sun; weak under an overcast or night sky."""
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

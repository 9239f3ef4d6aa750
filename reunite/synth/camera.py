"""Fixed CCTV cameras: where they hang, where they look, their lens and their character.

Cameras are mounted 2.5–6 m up at the edge of a site and look down across it, so people shrink
and change viewpoint with distance as on real street cameras; wide lenses bend straight lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reunite.synth.cctv import CameraLook, sample_camera_look
from reunite.synth.lens import Intrinsics, LensDistortion, covering_intrinsics, sample_lens
from reunite.synth.renderer import View


def look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """World-to-camera matrix (OpenGL: camera looks down -z, y up), world Z up."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    f = target - eye
    f /= np.linalg.norm(f)
    s = np.cross(f, (0.0, 0.0, 1.0))
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    r = np.deg2rad(roll_deg)
    s, u = np.cos(r) * s + np.sin(r) * u, -np.sin(r) * s + np.cos(r) * u
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


@dataclass
class CctvCamera:
    """One camera of the district: plan position, pose in its site, optics and image chain."""

    id: int
    name: str
    plan_xy: tuple[float, float]  # metres on the district plan
    site_kind: str
    eye: tuple[float, float, float]  # in site coordinates
    target: tuple[float, float, float]
    roll_deg: float
    hfov_deg: float
    width: int
    height: int
    lens: LensDistortion
    look: CameraLook
    heading_deg: float  # compass-like orientation of the view on the plan

    @property
    def mount_height_m(self) -> float:
        return float(self.eye[2])

    @property
    def tilt_deg(self) -> float:
        d = np.subtract(self.target, self.eye)
        return float(np.degrees(np.arctan2(-d[2], np.hypot(d[0], d[1]))))

    @property
    def intrinsics(self) -> Intrinsics:
        f = self.width / 2 / np.tan(np.deg2rad(self.hfov_deg) / 2)
        return Intrinsics(f, f, self.width / 2, self.height / 2, self.width, self.height)

    def render_view(self) -> tuple[View, Intrinsics]:
        """The pinhole canvas to render: larger than the frame, so the lens leaves no black
        corners (see ``lens.covering_intrinsics``)."""
        src = covering_intrinsics(self.intrinsics, self.lens)
        return View(
            look_at(np.array(self.eye), np.array(self.target), self.roll_deg),
            src.fx,
            src.fy,
            src.cx,
            src.cy,
            src.width,
            src.height,
        ), src

    def view(self) -> View:
        """The undistorted camera at frame size (projection of points before the lens)."""
        k = self.intrinsics
        return View(
            look_at(np.array(self.eye), np.array(self.target), self.roll_deg),
            k.fx,
            k.fy,
            k.cx,
            k.cy,
            self.width,
            self.height,
        )

    def to_json(self) -> dict:
        k = self.intrinsics
        return {
            "id": self.id,
            "name": self.name,
            "plan_position": list(self.plan_xy),
            "orientation_deg": round(self.heading_deg, 1),
            "site": self.site_kind,
            "mount_height_m": round(self.mount_height_m, 2),
            "tilt_deg": round(self.tilt_deg, 1),
            "hfov_deg": round(self.hfov_deg, 1),
            "size": [self.width, self.height],
            "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy},
            "distortion": [self.lens.k1, self.lens.k2, self.lens.p1, self.lens.p2, self.lens.k3],
            "night_ir": self.look.night_ir,
        }


def place_camera(
    rng: np.random.Generator,
    cam_id: int,
    name: str,
    plan_xy: tuple[float, float],
    site_kind: str,
    extent: tuple[float, float, float, float],
    size: tuple[int, int],
    night: bool,
    obstacles: list[tuple[float, float, float]] = (),
    walkways: list[np.ndarray] = (),
) -> CctvCamera:
    """Hang a camera over the walkable area and aim it at where people walk.

    Sites run along x (the street) with building fronts beyond the y edges, so a camera either
    sits near one end looking along the street (people come toward it or walk away: frontal and
    back views) or on a facade looking across (side views), tilted 10–40° down as street
    cameras are, and aimed at a point on a walkway.
    """
    xmin, ymin, xmax, ymax = extent
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    for _ in range(200):
        height = float(rng.uniform(2.5, 6.0))
        if rng.random() < 0.6:  # along the street, from one end
            end = 1.0 if rng.random() < 0.5 else -1.0
            eye_xy = np.array(
                [
                    cx + end * ((xmax - xmin) / 2 - rng.uniform(0.0, 4.0)),
                    cy + rng.uniform(-0.4, 0.4) * (ymax - ymin),
                ]
            )
        else:  # across, from a facade
            side = 1.0 if rng.random() < 0.5 else -1.0
            eye_xy = np.array(
                [
                    cx + rng.uniform(-0.35, 0.35) * (xmax - xmin),
                    cy + side * ((ymax - ymin) / 2 - 0.4),
                ]
            )
        if walkways:
            way = walkways[int(rng.integers(len(walkways)))]
            seg = int(rng.integers(len(way) - 1))
            target_xy = way[seg] + rng.uniform(0.2, 0.8) * (way[seg + 1] - way[seg])
        else:
            target_xy = np.array([cx, cy]) + rng.normal(0, 2.0, 2)
        dist = float(np.hypot(*(target_xy - eye_xy)))
        tilt = np.degrees(np.arctan2(height, dist))
        clear = all(np.hypot(*(eye_xy - (ox, oy))) > r + 0.4 for ox, oy, r in obstacles)
        if 10 <= tilt <= 40 and dist > 4.0 and clear:
            break
    target = (float(target_xy[0]), float(target_xy[1]), 0.0)
    eye = (float(eye_xy[0]), float(eye_xy[1]), height)
    hfov = float(rng.uniform(55, 95))
    width, h_px = size
    lens = sample_lens(rng, wide=hfov > 75)
    look = sample_camera_look(rng, night)
    heading = float(np.degrees(np.arctan2(target[1] - eye[1], target[0] - eye[0])))
    return CctvCamera(
        cam_id,
        name,
        plan_xy,
        site_kind,
        eye,
        target,
        float(rng.normal(0, 1.0)),
        hfov,
        width,
        h_px,
        lens,
        look,
        heading,
    )

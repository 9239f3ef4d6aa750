"""Case photos for every child and elderly identity: what a family brings to the control room.

* family photo: frontal, well lit, at home — in *different* clothes from the day they went
  missing, so photo search cannot simply match clothing colours;
* last-seen still: a CCTV crop from a camera the person passed *before* the clip starts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from reunite.synth.appearance import Identity, sample_outfit
from reunite.synth.camera import look_at
from reunite.synth.frames import DistrictRenderer
from reunite.synth.mesh import box, solid_texture
from reunite.synth.people import GpuPerson, build_person, person_matrix
from reunite.synth.renderer import Draw, Lighting, View

FAMILY_SIZE = (256, 512)  # W x H
# Well lit, as family photos are: a soft key light from the photographer's side and much fill.
_HOME_LIGHT = Lighting((0.25, -0.7, -0.65), (0.7, 0.68, 0.62), (0.75, 0.74, 0.72), (0.9, 0.9, 0.88))


def family_photo(
    world: DistrictRenderer, identity: Identity, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Render the person standing at home in other clothes; returns RGB and the outfit worn."""
    outfit = sample_outfit(rng, identity.age_group)
    for _ in range(8):  # other clothes: a different top colour from the day of disappearance
        if outfit.upper.colour != identity.outfit.upper.colour:
            break
        outfit = sample_outfit(rng, identity.age_group)
    outfit = replace(outfit, accessories=[a for a in outfit.accessories if a.kind != "umbrella"])
    person = build_person(world.kit, world.uv_maps, identity, rng, outfit=outfit, standing=True)
    renderer = world.renderer
    gpu = GpuPerson(renderer, person, world.kit.topology)
    wall_rgb = tuple(int(v) for v in rng.integers(150, 235, 3))
    wall = renderer.upload(box((8.0, 0.2, 3.0), solid_texture(wall_rgb)))
    floor = renderer.upload(box((8.0, 8.0, 0.02), solid_texture((120, 100, 80))))
    height = person.body.height_m
    yaw = rng.uniform(-0.35, 0.35)
    dist = 1.4 * height + 0.3  # the person fills ~85 % of the picture's height
    eye = np.array([dist * np.sin(yaw), dist * np.cos(yaw), 0.6 * height + 0.3])
    w, h = FAMILY_SIZE
    f = h / 2 / np.tan(np.deg2rad(24))
    view = View(look_at(eye, np.array([0.0, 0.0, 0.5 * height])), f, f, w / 2, h / 2, w, h)
    draws = [
        Draw(wall, np.array([[1, 0, 0, 0], [0, 1, 0, -0.9], [0, 0, 1, 0], [0, 0, 0, 1.0]])),
        Draw(floor, np.eye(4)),
        *gpu.draws(person_matrix(0.0, 0.0, np.pi / 2 + yaw), 0, identity.id),
    ]
    rgb = renderer.render(view, draws, _HOME_LIGHT).rgb
    gpu.release()
    renderer.release(wall)
    renderer.release(floor)
    return rgb, {
        "upper": {"type": outfit.upper.kind, "colour": outfit.upper.colour},
        "lower": {"type": outfit.lower.kind, "colour": outfit.lower.colour},
    }


def last_seen_still(
    world: DistrictRenderer, identity: Identity, rng: np.random.Generator
) -> tuple[np.ndarray, dict] | None:
    """The crop of the person's last sighting before the clip (t < 0), with where and when."""
    district = world.district
    earlier = [v for v in district.visits if v.person_id == identity.id and v.start < 0]
    # Prefer a clear, large view; settle for less rather than leave the case without a still.
    for min_vis, min_h in ((0.6, 40), (0.3, 24), (0.0, 0)):
        for visit in sorted(earlier, key=lambda v: -v.start):
            end = min(visit.end, -0.1)
            for frac in (0.5, 0.3, 0.7, 0.15, 0.85):
                t = visit.start + frac * (end - visit.start)
                frame = world.render(visit.camera_id, t, rng)
                box_ = next((b for b in frame.boxes if b.person_id == identity.id), None)
                if box_ is not None and box_.visibility >= min_vis and box_.h >= min_h:
                    return _crop_still(frame, box_, visit.camera_id, t, district)
    return None


def _crop_still(frame, box_, camera_id: int, t: float, district) -> tuple[np.ndarray, dict]:
    m = 0.12
    x0 = int(max(box_.x - m * box_.w, 0))
    y0 = int(max(box_.y - m * box_.h * 0.5, 0))
    x1 = int(min(box_.x + box_.w * (1 + m), frame.rgb.shape[1]))
    y1 = int(min(box_.y + box_.h * (1 + m * 0.5), frame.rgb.shape[0]))
    info = {
        "camera_id": camera_id,
        "t": round(t, 2),
        "epoch_s": round(district.start_epoch_s + t, 2),
        "box": [round(box_.x, 1), round(box_.y, 1), round(box_.w, 1), round(box_.h, 1)],
        "visibility": round(box_.visibility, 3),
    }
    return frame.rgb[y0:y1, x0:x1].copy(), info

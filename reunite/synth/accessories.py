"""Meshes for what people carry, built in the frame of the body anchor they hang from.

Why separate meshes: a backpack, umbrella or walking frame changes a silhouette far more than
clothing colour does, so re-identification has to see people with and without them; props are
rigid, so each is one small mesh moved by its anchor's frame every frame.

Anchor frame: metres; x = the person's right, y = forward (the way the person faces), z = up.
The axes follow the body's heading (yaw only, z stays world-up), so canes, umbrellas and walkers
stand upright whatever the arms do; only ``spine_upper`` tilts its z axis along the spine, so
that a stooping person's backpack leans with the back. Sizes scale with ``body_height`` H
(children ~1.1-1.4 m, adults ~1.6-1.9 m).

Where each anchor's origin is on the body, and how to get it from the posed anny skeleton
(default rig, bone heads from ``bone_poses``; person frame as above):

=============  =========================================  ===================================
anchor         origin                                     from the anny skeleton and skin
=============  =========================================  ===================================
spine_upper    on the skin of the back, on the midline,   z: head of ``spine01`` - 0.05 m;
               between the shoulder blades (~0.72 H)      y: the rearmost torso vertex
hip_right      on the skin of the right flank at belt     z: head of ``spine05`` - 0.02 m;
               height (~0.55 H)                           x: the rightmost hip vertex
hand_right     the centre of the right palm, where a      midpoint of the heads of
               handle is gripped                          ``wrist.R`` and ``finger3-1.R``
head_top       the top of the skull                       x, y of ``head``; z: the highest
                                                          head vertex
face           in front of the mouth on the midline, at   z: head of ``head`` - 0.02 m
               the depth of the nose tip                  (~mouth); y: the foremost head
                                                          vertex
pelvis_front   on the ground (z = 0) straight below the   head of ``root`` (the pelvis) with
               pelvis, steady over the walk cycle         z set to the ground
=============  =========================================  ===================================

Pose assumptions, for the animation to honour:

- cane: the palm hangs at ~0.45 H (arm relaxed); the stick then reaches the ground.
- umbrella: the hand is raised to ~0.72 H (elbow bent, handle in front of the chest); the
  canopy rim is then ~0.1 H above the head. With the arm hanging it would sit on the head.
- walker: stands on z = 0 of its frame, so it is on the ground however the pelvis moves; its
  rear wheels are ~0.18 m ahead of the pelvis (just ahead of the toes), its grips 0.5 H high
  and 0.04-0.2 m ahead of the pelvis, where relaxed hands reach.
- backpack: its top is at shoulder height (~0.06 H above the anchor); its straps pass over the
  shoulders ~0.1 H in front of the anchor (inside a deeper chest, which hides them).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np

from reunite.synth.mesh import Mesh, cylinder, sphere, translation
from reunite.synth.scene import RGB, block, painted, pick, rod, shade

ANCHORS: dict[str, str] = {
    "backpack": "spine_upper",
    "bag": "hip_right",
    "hat": "head_top",
    "umbrella": "hand_right",
    "mask": "face",
    "cane": "hand_right",
    "walker": "pelvis_front",
}
KINDS = tuple(ANCHORS)
_ADULT = 1.75  # body height at which the sizes below are given
_BLACK = (28, 28, 30)

Parts = list[tuple[Mesh, RGB]]


def accessory_mesh(
    kind: str,
    rgb: tuple[int, int, int],
    body_height: float,
    rng: np.random.Generator,
) -> tuple[Mesh, str]:
    """The mesh of one carried thing (main colour ``rgb``) and the anchor it attaches to."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown accessory {kind!r}; expected one of {KINDS}")
    if not 0.5 <= body_height <= 2.5:
        raise ValueError(f"body_height {body_height} m is not a person's height")
    return painted(_BUILDERS[kind](rgb, body_height, rng), kind), ANCHORS[kind]


def _head_scale(h: float) -> float:
    """Heads grow much less than bodies: a 1.2 m child's head is ~90 % of an adult's."""
    return 0.75 + 0.25 * h / _ADULT


def _backpack(rgb: RGB, h: float, rng: np.random.Generator) -> Parts:
    k = 0.35 + 0.65 * h / _ADULT  # children carry relatively large packs
    w, t, tall = (s * k * rng.uniform(0.9, 1.1) for s in (0.30, 0.14, 0.42))
    top, chest = 0.06 * h, 0.10 * h
    parts = [
        (block((w, t, tall), 0, -t / 2 - 0.01, top - tall), rgb),
        (
            block((w * 0.7, t * 0.4, tall * 0.4), 0, -t - 0.01 - t * 0.2, top - tall * 0.9),
            shade(rgb, 0.8),
        ),
        (rod((-w / 4, -0.03, top), (w / 4, -0.03, top), 0.012, 4), shade(rgb, 0.5)),
    ]
    for x in (-0.09 * k, 0.09 * k):
        parts += [
            (rod((x, -0.02, top - 0.02), (x, chest, top - 0.01), 0.012, 4), shade(rgb, 0.5)),
            (rod((x, chest, top - 0.01), (x, chest, top - 0.24 * h), 0.012, 4), shade(rgb, 0.5)),
        ]
    return parts


def _bag(rgb: RGB, h: float, rng: np.random.Generator) -> Parts:
    """A bag hanging against the outside of the hip: on a strap from the shoulder or on its
    handles (a hand bag carried at the hip)."""
    k = 0.5 + 0.5 * h / _ADULT
    w, t, tall = 0.30 * k * rng.uniform(0.8, 1.15), 0.09 * k, 0.24 * k * rng.uniform(0.8, 1.2)
    x, top = t / 2 + 0.01, 0.03
    parts = [
        (block((t, w, tall), x, 0, top - tall), rgb),
        (block((t + 0.01, w + 0.01, tall * 0.35), x, 0, top - tall * 0.35), shade(rgb, 0.8)),
    ]
    if rng.random() < 0.6:
        parts.append((rod((x, 0, top), (x - 0.04, 0, 0.3 * h), 0.012, 4), shade(rgb, 0.6)))
    else:
        loop = [
            (x, -w / 3, top),
            (x, -w / 6, top + 0.1 * k),
            (x, w / 6, top + 0.1 * k),
            (x, w / 3, top),
        ]
        parts += [(rod(a, b, 0.01, 4), shade(rgb, 0.6)) for a, b in pairwise(loop)]
    return parts


def _hat(rgb: RGB, h: float, rng: np.random.Generator) -> Parts:
    """A peaked cap, a bucket hat or a beanie, its crown just above the top of the skull."""
    k = _head_scale(h)
    r, style = 0.095 * k, pick(rng, ("cap", "cap", "bucket", "beanie"))
    if style == "cap":
        return [
            (
                cylinder(r, 0.085 * k, 16, radius_top=0.75 * r).transformed(
                    translation(0, 0, -0.075 * k)
                ),
                rgb,
            ),
            (
                cylinder(0.085 * k, 0.008, 12).transformed(translation(0, 0.75 * r, -0.072 * k)),
                shade(rgb, 0.8),
            ),
            (sphere(0.012 * k, 6).transformed(translation(0, 0, 0.01 * k)), rgb),
        ]
    if style == "bucket":
        return [
            (
                cylinder(1.05 * r, 0.09 * k, 16, radius_top=0.85 * r).transformed(
                    translation(0, 0, -0.08 * k)
                ),
                rgb,
            ),
            (
                cylinder(1.65 * r, 0.045 * k, 16, radius_top=1.05 * r).transformed(
                    translation(0, 0, -0.125 * k)
                ),
                shade(rgb, 0.85),
            ),
        ]
    return [
        (
            cylinder(1.03 * r, 0.035 * k, 16).transformed(translation(0, 0, -0.1 * k)),
            shade(rgb, 0.8),
        ),
        (
            cylinder(r, 0.1 * k, 16, radius_top=0.55 * r).transformed(
                translation(0, 0, -0.075 * k)
            ),
            rgb,
        ),
        (sphere(0.025 * k, 6).transformed(translation(0, 0, 0.035 * k)), shade(rgb, 0.8)),
    ]


def _umbrella(rgb: RGB, h: float, rng: np.random.Generator) -> Parts:
    """An open umbrella: an eight-panel canopy on a stick rising ~0.9 m from the hand."""
    k = float(np.clip(h / _ADULT, 0.65, 1.05))
    radius, stick, depth = 0.5 * k * rng.uniform(0.95, 1.1), 0.9 * k, 0.2 * k
    return [
        (rod((0, 0, -0.1 * k), (0, 0, stick + 0.06), 0.008 + 0.004 * k, 6), _BLACK),
        (rod((0, 0, -0.1 * k), (0, 0.06 * k, -0.14 * k), 0.013, 6), _BLACK),
        (
            cylinder(radius, depth, 8, radius_top=0.0).transformed(
                translation(0, 0, stick - depth)
            ),
            rgb,
        ),
    ]


def _mask(rgb: RGB, h: float, rng: np.random.Generator) -> Parts:
    """A face mask: a patch curved round the face from the nose to the chin, its centre just in
    front of the nose tip (a single surface: the renderer draws both sides)."""
    k = _head_scale(h) * rng.uniform(0.95, 1.05)
    radius, half = 0.075 * k, np.radians(75.0)
    theta = np.linspace(-half, half, 9)
    z = np.linspace(-0.05 * k, 0.045 * k, 4)
    bulge = 0.003 + 0.006 * (1 - np.linspace(-1, 1, len(z)) ** 2)  # tented over the nose
    tt, zz = np.meshgrid(theta, z, indexing="ij")
    rr = radius + np.broadcast_to(bulge, tt.shape)
    pos = np.stack([rr * np.sin(tt), rr * np.cos(tt) - radius, zz], -1).reshape(-1, 3)
    nrm = np.stack([np.sin(tt), np.cos(tt), np.zeros_like(tt)], -1).reshape(-1, 3)
    rows = len(z)
    faces = []
    for i in range(len(theta) - 1):
        for j in range(rows - 1):
            a, b = i * rows + j, (i + 1) * rows + j
            faces += [(a, a + 1, b + 1), (a, b + 1, b)]
    patch = Mesh(
        pos.astype(np.float32),
        nrm.astype(np.float32),
        np.zeros((len(pos), 2), np.float32),
        np.asarray(faces, np.uint32),
    )
    return [(patch, rgb)]


def _cane(rgb: RGB, h: float, rng: np.random.Generator) -> Parts:
    """A walking stick 0.48 H long: a handle across the palm, the tip on the ground when the
    palm is at ~0.45 H."""
    top, length = 0.03 * h, 0.48 * h
    bottom = top - length
    return [
        (rod((0, 0, top), (0, 0.03, bottom + 0.04), 0.011, 6), rgb),
        (rod((0, 0.03, bottom + 0.04), (0, 0.03, bottom), 0.015, 6), _BLACK),
        (rod((0, -0.03, top), (0, 0.1 + 0.02 * rng.random(), top), 0.014, 6), shade(rgb, 0.7)),
    ]


def _walker(rgb: RGB, h: float, rng: np.random.Generator) -> Parts:
    """A four-wheeled rollator in front of the person: grips at 0.5 H, ~0.55 m wide, its wheels
    on the ground plane of the frame."""
    k = float(np.clip(h / _ADULT, 0.75, 1.0))
    width, depth, grip = 0.55 * k, 0.6 * k, 0.5 * h
    rear, wheel, tube = 0.16 * k + 0.02, 0.09 * k, 0.013
    parts: Parts = []
    for x in (-width / 2, width / 2):
        parts += [
            (rod((x, rear, wheel), (x, rear, grip - 0.03), tube, 6), rgb),
            (rod((x, rear, grip - 0.03), (x, rear - 0.02, grip), tube, 6), rgb),
            (rod((x, rear - 0.02, grip), (x, rear - 0.14, grip), 0.018, 6), _BLACK),
            (rod((x, rear + 0.04, grip - 0.1), (x, rear + depth, wheel), tube, 6), rgb),
            (rod((x, rear, 0.45 * grip), (x, rear + depth * 0.62, 0.45 * grip), tube, 6), rgb),
        ]
        parts += [
            (rod((x - 0.018, y, wheel), (x + 0.018, y, wheel), wheel, 10), _BLACK)
            for y in (rear, rear + depth)
        ]
    parts += [
        (block((width - 0.03, 0.28 * k, 0.025), 0, rear + 0.2 * k, 0.55 * grip), shade(rgb, 0.6)),
        (
            rod(
                (-width / 2, rear + depth * 0.62, 0.45 * grip),
                (width / 2, rear + depth * 0.62, 0.45 * grip),
                tube,
                6,
            ),
            rgb,
        ),
    ]
    if rng.random() < 0.5:  # a shopping basket under the seat
        parts.append(
            (block((width * 0.6, 0.22 * k, 0.16 * k), 0, rear + 0.22 * k, 0.3 * grip), (40, 40, 44))
        )
    return parts


_BUILDERS: dict[str, Callable[[RGB, float, np.random.Generator], Parts]] = {
    "backpack": _backpack,
    "bag": _bag,
    "hat": _hat,
    "umbrella": _umbrella,
    "mask": _mask,
    "cane": _cane,
    "walker": _walker,
}

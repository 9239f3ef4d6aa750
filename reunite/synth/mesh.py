"""Triangle meshes as plain numpy arrays, and the few primitives the world is built from.

Why hand-written: the world needs boxes, cylinders and cones with UVs for a handful of props;
trimesh would add a dependency for ten lines of geometry each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Mesh:
    """An indexed triangle mesh with one RGB texture (a solid colour is a 1x1 texture)."""

    positions: np.ndarray  # (N, 3) float32, metres
    normals: np.ndarray  # (N, 3) float32, unit length
    uvs: np.ndarray  # (N, 2) float32 in [0, 1]; (0, 0) = texture's top-left, v counts rows down
    faces: np.ndarray  # (M, 3) uint32, counter-clockwise seen from outside
    texture: np.ndarray = field(default_factory=lambda: np.full((1, 1, 3), 200, np.uint8))
    name: str = ""

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """A copy moved by a 4x4 rigid (or uniformly scaled) transform."""
        m = np.asarray(matrix, np.float64)
        pos = self.positions @ m[:3, :3].T + m[:3, 3]
        nrm = self.normals @ np.linalg.inv(m[:3, :3])  # row vectors times the inverse-transpose
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-12
        return Mesh(
            pos.astype(np.float32),
            nrm.astype(np.float32),
            self.uvs,
            self.faces,
            self.texture,
            self.name,
        )


def solid_texture(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.array(rgb, np.uint8).reshape(1, 1, 3)


def translation(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def rotation_z(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    return m


def box(
    size: tuple[float, float, float], texture: np.ndarray | None = None, name: str = ""
) -> Mesh:
    """An axis-aligned box centred on the origin in x and y, standing on z = 0."""
    sx, sy, sz = (s / 2 for s in size)
    faces_def = [  # normal, u axis, v axis
        ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
        ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
        ((0, 1, 0), (-1, 0, 0), (0, 0, 1)),
        ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
        ((0, 0, 1), (1, 0, 0), (0, 1, 0)),
        ((0, 0, -1), (1, 0, 0), (0, -1, 0)),
    ]
    half = np.array([sx, sy, sz])
    pos, nrm, uv, tri = [], [], [], []
    for n, u, v in faces_def:
        n, u, v = (np.array(a, float) for a in (n, u, v))
        corners = [n + su * u + sv * v for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        base = len(pos)
        for (su, sv), c in zip(((0, 0), (1, 0), (1, 1), (0, 1)), corners, strict=True):
            pos.append(c * half + (0, 0, sz))
            nrm.append(n)
            uv.append((su, 1 - sv))  # v counts image rows downwards: the top edge is v = 0
        tri += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    return _mesh(pos, nrm, uv, tri, texture, name)


def cylinder(
    radius: float,
    height: float,
    segments: int = 12,
    texture: np.ndarray | None = None,
    radius_top: float | None = None,
    name: str = "",
) -> Mesh:
    """A capped cylinder (a cone when radius_top is 0) standing on z = 0 around the z axis."""
    rt = radius if radius_top is None else radius_top
    pos, nrm, uv, tri = [], [], [], []
    slope = (radius - rt) / max(height, 1e-9)
    for i in range(segments + 1):
        a = 2 * np.pi * i / segments
        c, s = np.cos(a), np.sin(a)
        n = np.array([c, s, slope])
        n /= np.linalg.norm(n)
        pos += [(radius * c, radius * s, 0.0), (rt * c, rt * s, height)]
        nrm += [n, n]
        uv += [(i / segments, 1.0), (i / segments, 0.0)]  # image top (v = 0) at the top
    for i in range(segments):
        b = 2 * i
        tri += [(b, b + 2, b + 3), (b, b + 3, b + 1)]
    for z, r, nz in ((height, rt, 1.0), (0.0, radius, -1.0)):
        if r <= 0:
            continue
        centre = len(pos)
        pos.append((0.0, 0.0, z))
        nrm.append((0.0, 0.0, nz))
        uv.append((0.5, 0.5))
        for i in range(segments):
            a = 2 * np.pi * i / segments
            pos.append((r * np.cos(a), r * np.sin(a), z))
            nrm.append((0.0, 0.0, nz))
            uv.append((0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a)))
        for i in range(segments):
            a, b = centre + 1 + i, centre + 1 + (i + 1) % segments
            tri.append((centre, a, b) if nz > 0 else (centre, b, a))
    return _mesh(pos, nrm, uv, tri, texture, name)


def sphere(
    radius: float, segments: int = 12, texture: np.ndarray | None = None, name: str = ""
) -> Mesh:
    """A UV sphere centred on the origin."""
    rings = max(segments // 2, 3)
    pos, nrm, uv, tri = [], [], [], []
    for j in range(rings + 1):
        theta = np.pi * j / rings
        for i in range(segments + 1):
            phi = 2 * np.pi * i / segments
            n = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
            pos.append(n * radius)
            nrm.append(n)
            uv.append((i / segments, j / rings))
    w = segments + 1
    for j in range(rings):
        for i in range(segments):
            a, b = j * w + i, (j + 1) * w + i
            tri += [(a, b, b + 1), (a, b + 1, a + 1)]
    return _mesh(pos, nrm, uv, tri, texture, name)


def merge(meshes: list[Mesh], texture: np.ndarray | None = None, name: str = "") -> Mesh:
    """Concatenate meshes that share one texture (the first one's unless given)."""
    offsets = np.cumsum([0] + [len(m.positions) for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.positions for m in meshes]).astype(np.float32),
        np.concatenate([m.normals for m in meshes]).astype(np.float32),
        np.concatenate([m.uvs for m in meshes]).astype(np.float32),
        np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)]).astype(
            np.uint32
        ),
        meshes[0].texture if texture is None else texture,
        name,
    )


def _mesh(pos, nrm, uv, tri, texture, name) -> Mesh:
    return Mesh(
        np.asarray(pos, np.float32),
        np.asarray(nrm, np.float32),
        np.asarray(uv, np.float32),
        np.asarray(tri, np.uint32),
        solid_texture((200, 200, 200)) if texture is None else texture,
        name,
    )

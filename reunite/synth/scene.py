"""The static scene one fixed CCTV camera looks at: ground, building fronts, street furniture.

Why procedural: re-identification must not learn one backdrop, so every site differs in layout,
materials, clutter and occluders; yet a whole site stays small enough for a CPU rasteriser
(≲ 30k triangles, ground texture ≤ 1024², facades ≤ 512², props coloured from 1xN palettes).

Site coordinates: metres, Z up, the ground is z = 0 and the origin is the centre of the walkable
area; x runs along the street (or the alley, the market aisle), y across it.

Texture convention (that of ``mesh.Mesh``): uv (0, 0) is the top-left pixel of the texture
image and v counts image rows downwards, so pictures are painted the right way up in numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

from reunite.synth.mesh import Mesh, box, cylinder, merge, rotation_z, sphere, translation
from reunite.synth.renderer import Lighting

RGB = tuple[int, int, int]
Circle = tuple[float, float, float]
T = TypeVar("T")

KINDS = ("street", "plaza", "alley", "school_gate", "park_path", "market")
CLEARANCE = 0.5
"""Metres kept free between a walkway and any obstacle footprint."""
_EXIT = 2.2  # walkways begin and end this far outside the extent, so people enter from off-screen
_MARGIN = 9.0  # the detailed ground texture reaches this far beyond the extent
_HORIZON = 90.0  # the ground reaches this far, so no sky shows below the horizon


@dataclass
class Site:
    """One camera's static world; ``meshes[0]`` is the whole ground, then come buildings and
    their fittings, then props (``occluder_names`` lists those that can hide a person)."""

    kind: str
    meshes: list[Mesh]
    walkways: list[np.ndarray]  # (K, 2) polylines on the ground, ends ~2 m outside the extent
    obstacles: list[Circle]  # (x, y, radius) footprints of the props standing on walkable ground
    extent: tuple[float, float, float, float]  # (xmin, ymin, xmax, ymax) a camera should cover
    occluder_names: list[str]  # meshes that can hide part of a person (props, awnings, signs)


# -- geometry helpers (also used by accessories.py) --------------------------------------------


def moved(mesh: Mesh, matrix: np.ndarray) -> Mesh:
    """A copy of ``mesh`` moved by a 4x4 rigid transform, its normals turned with it.

    Why not ``Mesh.transformed`` for rotations: it multiplies row-vector normals by inv(R).T,
    i.e. turns them by the inverse rotation, which inverts the shading of anything yawed by
    other than 0 or 180 degrees. Pure translations are the same either way.
    """
    m = np.asarray(matrix, np.float64)
    nrm = mesh.normals @ np.linalg.inv(m[:3, :3])
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    pos = mesh.positions @ m[:3, :3].T + m[:3, 3]
    return dataclasses.replace(
        mesh, positions=pos.astype(np.float32), normals=nrm.astype(np.float32)
    )


def block(size: tuple[float, float, float], x: float = 0.0, y: float = 0.0, z: float = 0.0) -> Mesh:
    """A box whose bottom face is centred on (x, y, z): most props are stacks of these."""
    return box(size).transformed(translation(x, y, z))


def rod(
    p0: Sequence[float],
    p1: Sequence[float],
    radius: float,
    segments: int = 8,
    radius_end: float | None = None,
) -> Mesh:
    """A capped cylinder from p0 to p1 (a cone when radius_end is 0): poles, sticks, wheels."""
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    z = (b - a) / np.linalg.norm(b - a)
    x = np.cross((1.0, 0.0, 0.0) if abs(z[0]) < 0.9 else (0.0, 1.0, 0.0), z)
    x /= np.linalg.norm(x)
    frame = np.eye(4)
    frame[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    frame[:3, 3] = a
    length = float(np.linalg.norm(b - a))
    return moved(cylinder(radius, length, segments, radius_top=radius_end), frame)


_HEX_FACES = ((0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))


def hexahedron(corners: Sequence[Sequence[float]]) -> Mesh:
    """A convex solid from 8 corners (bottom 4 then top 4, counter-clockwise seen from above).

    Why: sloped windscreens, tapering cabins and tilted awnings, which axis-aligned boxes lack.
    """
    c = np.asarray(corners, float)
    pos, nrm, tri = [], [], []
    for quad in _HEX_FACES:
        p = c[list(quad)]
        n = np.cross(p[2] - p[0], p[3] - p[1])
        base = len(pos)
        pos.extend(p)
        nrm.extend([n / np.linalg.norm(n)] * 4)
        tri += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    uv = np.tile([[0, 0], [1, 0], [1, 1], [0, 1]], (6, 1))
    return Mesh(
        np.asarray(pos, np.float32),
        np.asarray(nrm, np.float32),
        uv.astype(np.float32),
        np.asarray(tri, np.uint32),
    )


def tapered(
    bottom: tuple[float, float],
    top: tuple[float, float],
    height: float,
    x: float = 0.0,
    z: float = 0.0,
    shift: float = 0.0,
) -> Mesh:
    """A box (length along x, width along y) whose top face is smaller and shifted along x."""
    (lb, wb), (lt, wt) = bottom, top
    xt, zt = x + shift, z + height
    return hexahedron(
        [
            (x - lb / 2, -wb / 2, z),
            (x + lb / 2, -wb / 2, z),
            (x + lb / 2, wb / 2, z),
            (x - lb / 2, wb / 2, z),
            (xt - lt / 2, -wt / 2, zt),
            (xt + lt / 2, -wt / 2, zt),
            (xt + lt / 2, wt / 2, zt),
            (xt - lt / 2, wt / 2, zt),
        ]
    )


def painted(parts: Sequence[tuple[Mesh, RGB]], name: str = "") -> Mesh:
    """Merge parts of different colours into one mesh over a 1xN palette texture.

    Why: one mesh per prop is one draw call per prop, and a one-pixel-high texture gets no
    mipmaps, so neighbouring palette colours never bleed into each other.
    """
    palette = list(dict.fromkeys(_rgb(c) for _, c in parts))
    texture = np.array(palette, np.uint8).reshape(1, -1, 3)
    coloured = []
    for mesh, colour in parts:
        u = (palette.index(_rgb(colour)) + 0.5) / len(palette)
        uv = np.tile(np.array([u, 0.5], np.float32), (len(mesh.positions), 1))
        coloured.append(dataclasses.replace(mesh, uvs=uv, texture=texture))
    return merge(coloured, texture, name)


def _rgb(colour: Sequence[float]) -> RGB:
    r, g, b = (min(255, max(0, round(float(v)))) for v in colour)
    return r, g, b


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def vary(rng: np.random.Generator, colour: Sequence[float], sd: float = 10.0) -> RGB:
    """A colour with a random brightness change and a smaller random tint."""
    return _rgb(np.asarray(colour, float) + rng.normal(0.0, sd) + rng.normal(0.0, sd / 3, 3))


def shade(colour: Sequence[float], factor: float) -> RGB:
    return _rgb(np.asarray(colour, float) * factor)


# -- painting textures in metres -----------------------------------------------------------------


class _Canvas:
    """An RGB image painted in metric coordinates: u to the right, w up, row 0 at the top (w1).

    Ground textures use (u, w) = (x, y) seen from above; facades use (across, height).
    """

    def __init__(self, u0: float, w0: float, u1: float, w1: float, max_px: int) -> None:
        self.ppm = max_px / max(u1 - u0, w1 - w0)
        cols = max(1, round((u1 - u0) * self.ppm))
        rows = max(1, round((w1 - w0) * self.ppm))
        self.u0, self.w1 = u0, w1
        self.u1, self.w0 = u0 + cols / self.ppm, w1 - rows / self.ppm
        self.u = (u0 + (np.arange(cols) + 0.5) / self.ppm).astype(np.float32)
        self.w = (w1 - (np.arange(rows) + 0.5) / self.ppm).astype(np.float32)
        self.img = np.zeros((rows, cols, 3), np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return self.img.shape[0], self.img.shape[1]

    def px(self, points: Sequence[Sequence[float]]) -> np.ndarray:
        p = np.asarray(points, float).reshape(-1, 2)
        return np.round(
            np.stack([(p[:, 0] - self.u0) * self.ppm, (self.w1 - p[:, 1]) * self.ppm], 1) - 0.5
        ).astype(np.int32)

    def region(self, u0: float, w0: float, u1: float, w1: float) -> tuple[slice, slice]:
        rows, cols = self.shape
        c0, c1 = (int(np.clip(round((u - self.u0) * self.ppm), 0, cols)) for u in (u0, u1))
        r0, r1 = (int(np.clip(round((self.w1 - w) * self.ppm), 0, rows)) for w in (w1, w0))
        return slice(r0, r1), slice(c0, c1)

    def fill(
        self,
        u0: float,
        w0: float,
        u1: float,
        w1: float,
        paint: Sequence[float] | np.ndarray,
        alpha: float = 1.0,
    ) -> None:
        """Paint a rectangle with a colour or with the same region of a full-size material."""
        s = self.region(u0, w0, u1, w1)
        value = paint[s] if np.ndim(paint) == 3 else np.asarray(paint, np.float32)
        self.img[s] = self.img[s] * (1 - alpha) + value * alpha

    def blend(
        self,
        mask: np.ndarray,
        paint: Sequence[float] | np.ndarray,
        alpha: float = 1.0,
    ) -> None:
        """Paint where a uint8 coverage mask (drawn by OpenCV, antialiased) is set."""
        x, y, w, h = cv2.boundingRect(mask)
        if w == 0:
            return
        s = slice(y, y + h), slice(x, x + w)
        a = mask[s][..., None].astype(np.float32) * (alpha / 255.0)
        value = paint[s] if np.ndim(paint) == 3 else np.asarray(paint, np.float32)
        self.img[s] = self.img[s] * (1 - a) + value * a

    def _mask(self) -> np.ndarray:
        return np.zeros(self.shape, np.uint8)

    def line(
        self,
        points: Sequence[Sequence[float]],
        width: float,
        paint,
        alpha: float = 1.0,
        closed: bool = False,
    ) -> None:
        mask = self._mask()
        thickness = max(1, round(width * self.ppm))
        cv2.polylines(mask, [self.px(points)], closed, 255, thickness, cv2.LINE_AA)
        self.blend(mask, paint, alpha)

    def polygon(self, points: Sequence[Sequence[float]], paint, alpha: float = 1.0) -> None:
        mask = self._mask()
        cv2.fillPoly(mask, [self.px(points)], 255, cv2.LINE_AA)
        self.blend(mask, paint, alpha)

    def ellipse(
        self,
        centre: Sequence[float],
        axes: tuple[float, float],
        paint,
        alpha: float = 1.0,
        angle_deg: float = 0.0,
        outline: float = 0.0,
    ) -> None:
        """A filled ellipse, or its outline ``outline`` metres wide when that is positive."""
        mask = self._mask()
        ((cx, cy),) = self.px([centre])
        size = (max(1, round(axes[0] * self.ppm)), max(1, round(axes[1] * self.ppm)))
        thickness = max(1, round(outline * self.ppm)) if outline > 0 else -1
        cv2.ellipse(mask, (int(cx), int(cy)), size, -angle_deg, 0, 360, 255, thickness, cv2.LINE_AA)
        self.blend(mask, paint, alpha)

    def text(self, u0: float, w0: float, u1: float, w1: float, text: str, colour: RGB) -> None:
        """Centre glyphs in a box, as large as fit: shop signs and boards read as lettering."""
        rs, cs = self.region(u0, w0, u1, w1)
        bw, bh = cs.stop - cs.start, rs.stop - rs.start
        font = cv2.FONT_HERSHEY_DUPLEX
        (tw, th), _ = cv2.getTextSize(text, font, 1.0, 2)
        scale = 0.9 * min(bw / tw, bh / th)
        if scale * th < 3:
            return
        thickness = max(1, round(scale * 1.6))
        (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
        mask = self._mask()
        origin = (cs.start + (bw - tw) // 2, rs.start + (bh + th) // 2)
        cv2.putText(mask, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
        self.blend(mask, colour)

    def image(self) -> np.ndarray:
        return np.clip(self.img, 0, 255).astype(np.uint8)

    def ground(self, name: str) -> Mesh:
        """The painted rectangle as a ground mesh at z = 0, continued out to the horizon.

        Around the rectangle, eight quads stretch its edge pixels outwards, so that roads,
        pavements and lawns carry on into the distance instead of ending at a seam.
        """
        rows, cols = self.shape
        xs = (-_HORIZON, self.u0, self.u1, _HORIZON)
        ys = (-_HORIZON, self.w0, self.w1, _HORIZON)
        us = ((0.5 / cols,) * 2, (0.0, 1.0), (1 - 0.5 / cols,) * 2)
        vs = ((1 - 0.5 / rows,) * 2, (1.0, 0.0), (0.5 / rows,) * 2)  # v = 0 is the far (+y) edge
        quads = []
        for i, j in np.ndindex(3, 3):
            (x0, x1), (y0, y1), (ua, ub), (va, vb) = xs[i : i + 2], ys[j : j + 2], us[i], vs[j]
            pos = np.array([(x0, y0, 0), (x1, y0, 0), (x1, y1, 0), (x0, y1, 0)], np.float32)
            uv = np.array([(ua, va), (ub, va), (ub, vb), (ua, vb)], np.float32)
            nrm = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
            quads.append(Mesh(pos, nrm, uv, np.array([(0, 1, 2), (0, 2, 3)], np.uint32)))
        return merge(quads, self.image(), name)


def _noise(rng: np.random.Generator, shape: tuple[int, int], cell_px: float) -> np.ndarray:
    """Smooth value noise with unit standard deviation and blobs about cell_px pixels across."""
    h, w = shape
    cell = max(float(cell_px), 1.0)
    small = rng.standard_normal((int(h / cell) + 2, int(w / cell) + 2)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return big / (big.std() + 1e-6)


def _grain(
    rng: np.random.Generator,
    c: _Canvas,
    colour: Sequence[float],
    fine: float,
    blotch: float,
    blotch_m: float = 1.5,
) -> np.ndarray:
    """A base colour with per-pixel grain and soft blotches: asphalt, render, concrete, soil."""
    lum = fine * rng.standard_normal(c.shape, dtype=np.float32)
    lum += blotch * _noise(rng, c.shape, blotch_m * c.ppm)
    return np.asarray(colour, np.float32) + lum[..., None]


def _tiles(
    rng: np.random.Generator,
    c: _Canvas,
    size: tuple[float, float],
    colour: Sequence[float],
    joint_colour: Sequence[float],
    tone_sd: float,
    stagger: bool = False,
    joint: float = 0.008,
) -> np.ndarray:
    """Paving slabs, setts, bricks or stone blocks: one tone per tile and joints between them."""
    tw, th = size
    row = np.floor(c.w / th).astype(np.int64)[:, None]
    uu = c.u[None, :] + (row % 2) * (tw / 2 if stagger else 0.0)
    col = np.floor(uu / tw).astype(np.int64)
    jw = max(joint, 0.6 / c.ppm)
    joints = ((uu - col * tw) < jw) | ((c.w[:, None] - row * th) < jw)
    tones = rng.normal(0.0, tone_sd, (np.ptp(row) + 1, np.ptp(col) + 1)).astype(np.float32)
    img = _grain(rng, c, colour, 4.0, 3.0) + tones[row - row.min(), col - col.min()][..., None]
    img[joints] = joint_colour
    return img


_PAVING = ((168, 165, 158), (150, 148, 144), (186, 176, 156), (160, 122, 102), (136, 136, 139))


def _asphalt(rng: np.random.Generator, c: _Canvas) -> np.ndarray:
    return _grain(rng, c, vary(rng, (70, 70, 72), 8), 9.0, 6.0, 2.5)


def _paving(rng: np.random.Generator, c: _Canvas) -> np.ndarray:
    """A random pavement: square or long slabs, or small setts, in greys, buffs or reds."""
    size = pick(rng, ((0.6, 0.6), (0.9, 0.6), (0.45, 0.45), (0.4, 0.2), (0.25, 0.15)))
    colour = vary(rng, pick(rng, _PAVING), 6)
    small = size[0] < 0.42
    return _tiles(rng, c, size, colour, shade(colour, 0.72), 14.0 if small else 6.0, small)


def _grass(rng: np.random.Generator, c: _Canvas) -> np.ndarray:
    base = _grain(rng, c, vary(rng, (80, 112, 52), 8), 10.0, 7.0, 1.5)
    dry = np.clip(_noise(rng, c.shape, 5.0 * c.ppm) - 0.5, 0.0, 1.0)[..., None]
    return base * (1 - 0.45 * dry) + np.array((150, 138, 92), np.float32) * 0.45 * dry


# -- building fronts ------------------------------------------------------------------------------

_BRICK = ((150, 72, 52), (128, 62, 46), (160, 100, 72), (112, 58, 48), (176, 128, 92))
_RENDER = (
    (226, 216, 196),
    (206, 201, 190),
    (232, 226, 214),
    (204, 182, 150),
    (182, 192, 196),
    (214, 188, 168),
    (190, 170, 140),
    (168, 178, 160),
)
_STONE = ((200, 190, 170), (185, 176, 160), (170, 165, 158))
_CONCRETE = ((158, 158, 155), (140, 139, 136), (176, 170, 160))
_SIGN = (
    (180, 30, 35),
    (25, 60, 140),
    (30, 110, 60),
    (235, 190, 40),
    (30, 30, 32),
    (240, 240, 235),
    (120, 30, 90),
    (230, 110, 30),
    (20, 130, 150),
)
_FRAME = ((235, 235, 230), (45, 45, 48), (95, 70, 50), (120, 125, 130))
_DOOR = ((40, 60, 110), (120, 30, 30), (30, 80, 50), (60, 45, 35), (25, 25, 28), (150, 150, 150))
_FLOOR = 3.0  # storey height in metres


def _wall(rng: np.random.Generator, c: _Canvas) -> np.ndarray:
    style = int(rng.integers(4))
    if style == 0:
        colour = vary(rng, pick(rng, _BRICK), 8)
        img = _tiles(rng, c, (0.25, 0.075), colour, vary(rng, (185, 180, 170), 10), 14.0, True)
    elif style == 1:
        colour = vary(rng, pick(rng, _STONE), 6)
        size = (rng.uniform(0.5, 0.9), 0.3)
        img = _tiles(rng, c, size, colour, shade(colour, 0.75), 8.0, True)
    elif style == 2:
        colour = vary(rng, pick(rng, _CONCRETE), 6)
        size = (rng.uniform(1.2, 2.4), rng.uniform(0.9, 1.5))
        img = _tiles(rng, c, size, colour, shade(colour, 0.7), 5.0)
    else:
        img = _grain(rng, c, vary(rng, pick(rng, _RENDER), 6), 3.0, 5.0, 2.0)
    # rain streaks and splash dirt near the ground
    h, w = c.shape
    streaks = cv2.resize(rng.standard_normal((3, max(2, w // 6))).astype(np.float32), (w, h))
    dirt = np.clip(1 - c.w / 0.8, 0, 1)[:, None]
    return img * (1 - 0.05 * np.clip(streaks, 0, None) - 0.15 * dirt)[..., None]


def _window(
    c: _Canvas,
    rng: np.random.Generator,
    u0: float,
    w0: float,
    u1: float,
    w1: float,
    frame: RGB,
) -> None:
    f = 0.06
    c.fill(u0 - f, w0 - f, u1 + f, w1 + f, frame)
    s = c.region(u0, w0, u1, w1)
    glass = np.asarray(vary(rng, (50, 60, 72), 10), np.float32)
    c.img[s] = glass * np.linspace(1.6, 0.8, c.img[s].shape[0])[:, None, None]  # sky reflection
    if rng.random() < 0.4:  # a curtain or blind
        cu, cw = (u1 - u0) * rng.uniform(0.25, 1.0), (w1 - w0) * rng.uniform(0.3, 1.0)
        c.fill(u0, w1 - cw, u0 + cu, w1, vary(rng, (196, 186, 166), 25))
    if rng.random() < 0.6:  # mullion
        c.fill((u0 + u1 - f) / 2, w0, (u0 + u1 + f) / 2, w1, frame)
    c.fill(u0 - 0.1, w0 - 0.12, u1 + 0.1, w0 - f, (200, 198, 192))  # sill


def _glyphs(rng: np.random.Generator) -> str:
    """Random capital letters in one or two words: reads as lettering, spells nothing."""
    n = int(rng.integers(3, 10))
    letters = [chr(65 + int(i)) for i in rng.integers(0, 26, n)]
    if n > 5 and rng.random() < 0.5:
        letters.insert(int(rng.integers(2, n - 2)), " ")
    return "".join(letters)


def _sign_board(
    c: _Canvas,
    rng: np.random.Generator,
    u0: float,
    w0: float,
    u1: float,
    w1: float,
) -> RGB:
    board = vary(rng, pick(rng, _SIGN), 6)
    c.fill(u0, w0, u1, w1, board)
    ink = (20, 20, 20) if sum(board) > 420 else pick(rng, ((245, 245, 240), (250, 215, 60)))
    pad = 0.12 * (w1 - w0)
    c.text(u0 + 0.3, w0 + pad, u1 - 0.3, w1 - pad, _glyphs(rng), ink)
    return board


def _facade(
    rng: np.random.Generator,
    width: float,
    floors: int,
    ground: str,
) -> tuple[np.ndarray, float, float]:
    """A building front: wall, windows per storey and a ground floor of the given kind.

    ground: "shop" (sign board, shop window, glass door), "door" (a house), "school" (entrance
    under a board) or "back" (alley side: service doors, few windows, pipes, graffiti).
    Returns the texture, the building height and the ground-floor height.
    """
    gf = rng.uniform(3.9, 4.5) if ground in ("shop", "school") else rng.uniform(3.0, 3.5)
    height = gf + floors * _FLOOR + rng.uniform(0.6, 1.2)
    c = _Canvas(0.0, 0.0, width, height, 512)
    c.img[:] = _wall(rng, c)
    wall = c.img[:8].mean((0, 1))
    c.fill(0, height - 0.55, width, height - 0.4, shade(wall, 1.15))  # cornice
    c.fill(0, 0, width, 0.35, shade(wall, 0.8))  # plinth
    frame = pick(rng, _FRAME)
    cols = max(1, round(width / rng.uniform(2.3, 3.4)))
    pitch = width / cols
    ww, wh = min(pitch * 0.62, rng.uniform(1.0, 1.5)), rng.uniform(1.3, 1.8)
    sparse = ground == "back"
    sills = [gf + k * _FLOOR + 0.9 for k in range(floors)] + ([1.0] if ground == "door" else [])
    for sill in sills:
        for i in range(cols):
            if sparse and rng.random() < 0.5:
                continue
            u, top = (i + 0.5) * pitch, sill + (wh * 0.5 if sparse else wh)
            _window(c, rng, u - ww / 2, sill, u + ww / 2, top, frame)
    if ground == "shop":
        _shopfront(c, rng, width, gf)
    elif ground == "school":
        _sign_board(c, rng, width * 0.2, gf - 0.95, width * 0.8, gf - 0.2)
        for i in range(cols):
            u = (i + 0.5) * pitch
            _window(c, rng, u - ww / 2, 1.0, u + ww / 2, 1.0 + wh, frame)
        c.fill(width / 2 - 1.3, 0, width / 2 + 1.3, 2.6, frame)
        for u0 in (width / 2 - 1.2, width / 2 + 0.05):
            _window(c, rng, u0, 0.1, u0 + 1.15, 2.5, frame)
    elif ground == "door":
        u = rng.uniform(0.8, width - 1.8)
        c.fill(u - 0.1, 0, u + 1.1, 2.45, frame)
        c.fill(u, 0, u + 1.0, 2.3, vary(rng, pick(rng, _DOOR), 8))
        c.fill(u + 0.1, 1.5, u + 0.9, 2.1, (70, 80, 90))  # door glazing
    else:
        _back_wall(c, rng, width)
    return c.image(), height, gf


def _shopfront(c: _Canvas, rng: np.random.Generator, width: float, gf: float) -> None:
    board = _sign_board(c, rng, 0.2, gf - 0.9, width - 0.2, gf - 0.15)
    c.fill(0.3, 0.0, width - 0.3, gf - 0.9, shade(board, 0.6))  # shopfront frame
    top = gf - 1.05
    glass = c.region(0.45, 0.45, width - 0.45, top)
    c.img[glass] = np.asarray(vary(rng, (58, 64, 70), 8), np.float32)
    for _ in range(int(rng.integers(3, 9))):  # goods and shelves seen through the glass
        u, w = rng.uniform(0.5, width - 1.0), rng.uniform(0.5, max(0.6, top - 0.8))
        c.fill(
            u,
            w,
            u + rng.uniform(0.3, 1.2),
            w + rng.uniform(0.2, 0.8),
            vary(rng, pick(rng, _SIGN), 30),
            alpha=0.45,
        )
    c.img[glass] *= (1.0 + 0.35 * np.linspace(1, 0, c.img[glass].shape[0]))[:, None, None]
    for u in np.arange(0.45, width - 0.45, rng.uniform(1.5, 2.5))[1:]:
        c.fill(u - 0.04, 0.45, u + 0.04, top, shade(board, 0.5))
    door = rng.uniform(0.5, max(0.6, width - 1.7))
    c.fill(door - 0.08, 0.0, door + 1.18, 2.35, (35, 35, 38))
    c.fill(door, 0.05, door + 1.1, 2.25, (66, 74, 82))


def _back_wall(c: _Canvas, rng: np.random.Generator, width: float) -> None:
    for _ in range(int(rng.integers(1, 3))):
        u = rng.uniform(0.5, width - 1.6)
        c.fill(u - 0.06, 0, u + 1.06, 2.2, (60, 60, 62))
        c.fill(u, 0, u + 1.0, 2.14, vary(rng, (110, 112, 115), 20))
    for _ in range(int(rng.integers(0, 4))):  # graffiti tags
        u, w = rng.uniform(0.3, width - 2.0), rng.uniform(0.4, 1.4)
        pts = np.column_stack(
            [u + np.cumsum(rng.uniform(0.05, 0.3, 8)), w + rng.uniform(0, 0.7, 8)]
        )
        c.line(pts, rng.uniform(0.04, 0.1), vary(rng, pick(rng, _SIGN), 20), alpha=0.85)


def _facade_block(texture: np.ndarray, width: float, depth: float, height: float) -> Mesh:
    """A building block with its front face at y = 0 facing -y, standing on y in [0, depth].

    The front maps the whole facade; the other faces sample a window-free patch of the parapet.
    """
    m = box((width, depth, height), texture).transformed(translation(0, depth / 2, 0))
    front = m.normals[:, 1] < -0.5
    uv = np.empty_like(m.uvs)
    patch = 0.2 / height  # the top 0.2 m of the facade is plain wall
    uv[:, 0] = np.where(front, m.positions[:, 0] / width + 0.5, 0.02 + 0.02 * m.uvs[:, 0])
    uv[:, 1] = np.where(front, 1 - m.positions[:, 2] / height, 0.005 + patch * m.uvs[:, 1])
    return dataclasses.replace(m, uvs=np.clip(uv, 0, 1).astype(np.float32))


def _awning(rng: np.random.Generator, width: float, top: float) -> Mesh:
    """A striped shop awning sloping out from the wall (wall at y = 0, street towards -y)."""
    depth, drop, n = rng.uniform(1.1, 1.6), rng.uniform(0.35, 0.5), int(rng.integers(4, 9))
    colours = (vary(rng, pick(rng, _SIGN), 8), pick(rng, ((240, 238, 230), (40, 40, 42))))
    parts = []
    for i in range(n):
        x0 = -width / 2 + i * width / n
        x1 = x0 + width / n
        edge = [(x0, -depth, top - drop), (x1, -depth, top - drop), (x1, 0.0, top), (x0, 0.0, top)]
        slab = hexahedron([(x, y, z - 0.03) for x, y, z in edge] + edge)
        valance = block((width / n, 0.02, 0.2), (x0 + x1) / 2, -depth, top - drop - 0.2)
        parts += [(slab, colours[i % 2]), (valance, colours[i % 2])]
    return painted(parts, "awning")


def _building_row(
    b: _Builder,
    side: str,
    front: float,
    span: tuple[float, float],
    gaps: Sequence[tuple[float, float]] = (),
    ground: Callable[[], str] | None = None,
    floors: tuple[int, int] = (1, 5),
) -> None:
    """Buildings of random widths in a row along x, their fronts on the line y = ``front``.

    side: "north" (the row stands at y > front, facing -y) or "south" (y < front, facing +y);
    ``span`` and ``gaps`` (side streets, passages) are x ranges. A backdrop block closes the
    view through each gap.
    """
    rng = b.rng
    yaw = {"north": 0.0, "south": np.pi}[side]
    ground = ground or (lambda: "shop" if rng.random() < 0.6 else "door")

    def at(x: float, back: float = 0.0) -> np.ndarray:
        return translation(x, front, 0) @ rotation_z(yaw) @ translation(0, back, 0)

    edges = [span[0], *sorted(e for g in gaps for e in g), span[1]]
    for a, z in zip(edges[::2], edges[1::2], strict=True):
        x = a
        while z - x > 1.0:
            w = rng.uniform(6.0, 13.0)
            w = z - x if z - (x + w) < 4.0 else w
            kind = ground()
            facade, height, gf = _facade(rng, w, int(rng.integers(*floors)), kind)
            where = at(x + w / 2, rng.uniform(0.0, 0.3))
            b.add(
                moved(_facade_block(facade, w, rng.uniform(8.0, 12.0), height), where),
                "building",
            )
            if kind == "shop" and rng.random() < 0.5:
                b.add(moved(_awning(rng, w - 0.8, gf - 0.95), where), "awning", True)
            if kind == "shop" and rng.random() < 0.3:
                sign = painted([(block((0.06, 0.7, 0.5), 0, -0.4, 0), vary(rng, pick(rng, _SIGN)))])
                b.add(moved(sign, where @ translation(w / 2 - 0.6, 0, gf + 0.3)), "sign", True)
            if kind == "back":
                _wall_fittings(b, rng, where, w, height)
            x += w
    for g0, g1 in gaps:
        w = g1 - g0 + 6.0
        facade, height, _ = _facade(rng, w, int(rng.integers(*floors)), "door")
        behind = at((g0 + g1) / 2, 14.0)
        b.add(moved(_facade_block(facade, w, 8.0, height), behind), "building")


def _wall_fittings(
    b: _Builder,
    rng: np.random.Generator,
    where: np.ndarray,
    w: float,
    h: float,
) -> None:
    """Drainpipes, air-conditioning units and lamps on an alley wall."""
    parts = []
    for _ in range(int(rng.integers(1, 3))):
        x = rng.uniform(-w / 2 + 0.3, w / 2 - 0.3)
        parts.append((rod((x, -0.08, 0), (x, -0.08, h), 0.05, 6), (70, 72, 74)))
    for _ in range(int(rng.integers(0, 3))):
        x = rng.uniform(-w / 2 + 0.6, w / 2 - 0.6)
        parts.append((block((0.8, 0.45, 0.6), x, -0.23, rng.uniform(2.6, 4.0)), (180, 182, 180)))
    x = rng.uniform(-w / 2 + 0.5, w / 2 - 0.5)
    parts += [
        (block((0.3, 0.3, 0.15), x, -0.15, 3.2), (50, 50, 52)),
        (block((0.26, 0.26, 0.03), x, -0.15, 3.17), (250, 230, 180)),
    ]
    b.add(moved(painted(parts), where), "wall_fittings")


# -- props ----------------------------------------------------------------------------------------

_METAL = ((48, 50, 52), (30, 32, 34), (40, 62, 48), (72, 74, 78), (28, 42, 72))
_WOOD = ((122, 86, 54), (142, 104, 66), (100, 72, 48), (150, 120, 85))
_FOLIAGE = ((60, 92, 42), (72, 106, 46), (48, 78, 40), (88, 112, 52), (66, 84, 40))
_CAR = (
    (205, 205, 210),
    (28, 28, 30),
    (238, 238, 236),
    (130, 22, 26),
    (32, 52, 112),
    (72, 74, 78),
    (150, 152, 156),
    (22, 62, 42),
    (182, 162, 124),
    (96, 20, 32),
    (210, 120, 30),
)
_GLASS = (38, 46, 56)
_TYRE = (24, 24, 26)
_PRODUCE = (
    (220, 120, 30),
    (200, 40, 30),
    (90, 150, 40),
    (240, 210, 60),
    (130, 80, 40),
    (160, 30, 80),
    (235, 230, 220),
)


@dataclass
class _Prop:
    mesh: Mesh
    footprint: list[Circle]  # in the prop's own frame


def _rect_footprint(length: float, width: float) -> list[Circle]:
    """Circles covering a length x width rectangle centred on the origin, length along x."""
    n = max(1, int(np.ceil(length / width - 1e-9)))
    r = 0.5 * float(np.hypot(length / n, width))
    return [(-length / 2 + (i + 0.5) * length / n, 0.0, r) for i in range(n)]


def _street_lamp(rng: np.random.Generator) -> _Prop:
    """A lamp post whose arm reaches along +x (placed so that it leans over the road)."""
    h, arm, colour = rng.uniform(4.5, 7.0), rng.uniform(0.6, 1.4), pick(rng, _METAL)
    parts = [
        (rod((0, 0, 0), (0, 0, h), 0.075, 8, 0.055), colour),
        (rod((0, 0, 0), (0, 0, 0.6), 0.11, 8), colour),
        (rod((0, 0, h - 0.25), (arm, 0, h), 0.04, 6), colour),
        (block((0.6, 0.26, 0.12), arm, 0, h - 0.1), colour),
        (block((0.48, 0.18, 0.02), arm, 0, h - 0.12), (250, 235, 190)),
    ]
    return _Prop(painted(parts, "street_lamp"), [(0, 0, 0.2)])


def _park_lamp(rng: np.random.Generator) -> _Prop:
    h, colour = rng.uniform(3.2, 4.2), pick(rng, _METAL)
    parts = [
        (rod((0, 0, 0), (0, 0, h), 0.06, 8), colour),
        (block((0.3, 0.3, 0.4), 0, 0, h), (240, 232, 200)),
        (cylinder(0.3, 0.25, 4, radius_top=0.0).transformed(translation(0, 0, h + 0.4)), colour),
    ]
    return _Prop(painted(parts, "park_lamp"), [(0, 0, 0.2)])


def _bollard(rng: np.random.Generator) -> _Prop:
    r, h, colour = rng.uniform(0.08, 0.11), rng.uniform(0.8, 1.0), pick(rng, _METAL)
    parts = [
        (rod((0, 0, 0), (0, 0, h), r, 8), colour),
        (
            rod((0, 0, h - 0.2), (0, 0, h - 0.12), r + 0.005, 8),
            pick(rng, ((230, 230, 225), (220, 180, 40))),
        ),
        (sphere(r, 8).transformed(translation(0, 0, h)), colour),
    ]
    return _Prop(painted(parts, "bollard"), [(0, 0, r + 0.05)])


def _bin(rng: np.random.Generator) -> _Prop:
    colour = vary(
        rng, pick(rng, ((40, 70, 45), (30, 30, 32), (60, 62, 66), (40, 60, 110), (120, 40, 35))), 6
    )
    if rng.random() < 0.5:
        parts = [
            (cylinder(0.24, 0.85, 10), colour),
            (rod((0, 0, 0.82), (0, 0, 0.9), 0.26, 10), shade(colour, 0.7)),
        ]
        return _Prop(painted(parts, "bin"), [(0, 0, 0.32)])
    parts = [
        (block((0.58, 0.72, 0.92), 0, 0, 0.05), colour),
        (block((0.62, 0.78, 0.05), 0, -0.02, 0.97), shade(colour, 0.75)),
    ]
    parts += [
        (rod((x, -0.3, 0.1), (x + 0.05 * np.sign(x), -0.3, 0.1), 0.1, 8), _TYRE)
        for x in (-0.3, 0.3)
    ]
    return _Prop(painted(parts, "bin"), [(0, 0, 0.48)])


def _bench(rng: np.random.Generator) -> _Prop:
    """A bench facing +y (its back at -y)."""
    length, wood, metal = rng.uniform(1.5, 2.0), vary(rng, pick(rng, _WOOD), 8), pick(rng, _METAL)
    parts = [
        (block((length, 0.44, 0.05), 0, 0, 0.42), wood),
        (block((length, 0.05, 0.36), 0, -0.22, 0.52), wood),
    ]
    for x in (-length / 2 + 0.15, length / 2 - 0.15):
        parts += [
            (block((0.06, 0.46, 0.42), x, 0, 0), metal),
            (block((0.06, 0.05, 0.5), x, -0.22, 0.42), metal),
        ]
    return _Prop(painted(parts, "bench"), _rect_footprint(length, 0.55))


def _tree(rng: np.random.Generator) -> _Prop:
    """A deciduous tree with its crown high enough to walk under (footprint: trunk only)."""
    trunk, r = rng.uniform(2.4, 3.2), rng.uniform(0.1, 0.2)
    bark, leaf = vary(rng, (92, 74, 58), 10), pick(rng, _FOLIAGE)
    crown = rng.uniform(1.3, 2.2)
    parts = [(rod((0, 0, 0), (0, 0, trunk + crown * 0.6), r, 8, r * 0.6), bark)]
    for _ in range(int(rng.integers(3, 6))):
        rs = crown * rng.uniform(0.55, 0.8)
        x, y = rng.uniform(-0.5, 0.5, 2) * crown
        z = trunk + rs * rng.uniform(0.9, 1.5)
        parts.append((sphere(rs, 10).transformed(translation(x, y, z)), vary(rng, leaf, 8)))
    return _Prop(painted(parts, "tree"), [(0, 0, r + 0.1)])


def _conifer(rng: np.random.Generator) -> _Prop:
    h, r = rng.uniform(6.0, 11.0), rng.uniform(1.5, 2.5)
    leaf = shade(pick(rng, _FOLIAGE), 0.75)
    parts = [(rod((0, 0, 0), (0, 0, 1.5), 0.2, 6), (80, 64, 50))]
    for i in range(3):
        z = 1.2 + i * (h - 1.2) / 4
        parts.append(
            (
                cylinder(r * (1 - i * 0.25), (h - z) * 0.7, 10, radius_top=0.0).transformed(
                    translation(0, 0, z)
                ),
                vary(rng, leaf, 6),
            )
        )
    return _Prop(painted(parts, "tree"), [(0, 0, r)])


def _bush(rng: np.random.Generator) -> _Prop:
    leaf, parts, reach = pick(rng, _FOLIAGE), [], 0.0
    for _ in range(int(rng.integers(1, 4))):
        rs = rng.uniform(0.4, 0.8)
        x, y = rng.uniform(-0.4, 0.4, 2)
        reach = max(reach, float(np.hypot(x, y)) + rs)
        parts.append((sphere(rs, 8).transformed(translation(x, y, rs * 0.6)), vary(rng, leaf, 10)))
    return _Prop(painted(parts, "bush"), [(0, 0, reach)])


def _planter(rng: np.random.Generator) -> _Prop:
    s, h = rng.uniform(0.9, 1.5), rng.uniform(0.45, 0.7)
    tub = vary(rng, pick(rng, (*_CONCRETE, *_WOOD)), 6)
    parts = [
        (block((s, s, h)), tub),
        (block((s - 0.1, s - 0.1, 0.02), 0, 0, h), (60, 45, 32)),
        (
            sphere(s * 0.42, 8).transformed(translation(0, 0, h + s * 0.3)),
            vary(rng, pick(rng, _FOLIAGE), 8),
        ),
    ]
    return _Prop(painted(parts, "planter"), _rect_footprint(s, s))


def _car(rng: np.random.Generator) -> _Prop:
    """A parked car, length along x, bonnet towards +x."""
    length, width = rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.86)
    body = vary(rng, pick(rng, _CAR), 6)
    cab, cab_x = length * rng.uniform(0.48, 0.56), -length * rng.uniform(0.02, 0.08)
    belt = rng.uniform(0.9, 1.0)
    roof = belt + rng.uniform(0.42, 0.52)
    glass = (roof - belt, cab_x, belt)
    parts = [
        (block((length, width, belt - 0.3), 0, 0, 0.3), body),
        (tapered((cab, width - 0.1), (cab - 0.9, width - 0.3), *glass, -0.1), _GLASS),
        (block((cab - 0.86, width - 0.26, 0.05), cab_x - 0.1, 0, roof - 0.02), body),
        (tapered((0.12, width - 0.08), (0.12, width - 0.28), *glass), body),  # door pillar
    ]
    parts += _running_gear(length, width, rng.uniform(0.29, 0.33), belt)
    return _Prop(painted(parts, "car"), _rect_footprint(length, width))


def _van(rng: np.random.Generator) -> _Prop:
    """A panel van, length along x, cab towards +x."""
    length, width, height = rng.uniform(4.8, 5.6), rng.uniform(1.9, 2.05), rng.uniform(2.0, 2.5)
    body = vary(rng, pick(rng, ((240, 240, 238), (238, 238, 236), (205, 205, 210), *_CAR)), 5)
    hood = 0.8
    cab_x = length / 2 - hood
    parts = [
        (block((length - hood, width, height - 0.35), -hood / 2, 0, 0.35), body),
        (
            tapered(
                (hood, width),
                (hood * 0.6, width - 0.1),
                0.6,
                length / 2 - hood / 2,
                0.35,
                -hood * 0.2,
            ),
            body,
        ),
        (
            tapered(
                (0.55, width - 0.1), (0.06, width - 0.2), height - 1.2, cab_x + 0.27, 0.95, -0.27
            ),
            _GLASS,
        ),
        (block((0.75, width + 0.02, 0.55), cab_x - 0.45, 0, 1.25), _GLASS),
    ]
    if rng.random() < 0.5:
        parts.append(
            (block((length * 0.45, width + 0.02, 0.35), -0.5, 0, 1.2), vary(rng, pick(rng, _SIGN)))
        )
    parts += _running_gear(length, width, rng.uniform(0.32, 0.36), 0.95)
    return _Prop(painted(parts, "van"), _rect_footprint(length, width))


def _running_gear(length: float, width: float, r: float, belt: float) -> list[tuple[Mesh, RGB]]:
    """Wheels, bumpers, lights and number plates shared by cars and vans."""
    parts = []
    for x in (length / 2 - 0.8, -length / 2 + 0.8):
        for y in (width / 2 - 0.12, -width / 2 + 0.12):
            parts.append((rod((x, y - 0.11, r), (x, y + 0.11, r), r, 10), _TYRE))
    for end, lamp, plate in (
        (1, (235, 235, 225), (235, 235, 235)),
        (-1, (170, 20, 22), (230, 200, 40)),
    ):
        x = end * length / 2
        parts += [
            (block((0.1, width, 0.2), x, 0, 0.28), (40, 40, 42)),
            (block((0.03, 0.5, 0.11), x + end * 0.05, 0, 0.32), plate),
        ]
        parts += [
            (block((0.04, 0.3, 0.12), x, y, belt - 0.22), lamp)
            for y in (width / 2 - 0.25, -width / 2 + 0.25)
        ]
    return parts


def _bus_shelter(rng: np.random.Generator) -> _Prop:
    """A bus shelter open towards +y, back glazing at -y, advert panel at +x."""
    length, depth, h = rng.uniform(3.0, 4.0), 1.4, 2.5
    frame, glass = pick(rng, _METAL), (150, 168, 178)
    parts = [
        (rod((x, y, 0), (x, y, h), 0.045, 6), frame)
        for x in (-length / 2, length / 2)
        for y in (-depth / 2, depth / 2)
    ]
    parts += [
        (block((length + 0.2, depth + 0.2, 0.12), 0, 0, h), frame),
        (block((length, 0.03, h - 0.35), 0, -depth / 2, 0.25), glass),
        (block((0.05, depth, 1.8), length / 2, 0, 0.3), vary(rng, pick(rng, _SIGN), 12)),
        (block((length * 0.6, 0.35, 0.05), 0, -depth / 2 + 0.25, 0.45), frame),
        (block((0.05, 0.3, 0.45), 0, -depth / 2 + 0.25, 0), frame),
    ]
    return _Prop(painted(parts, "bus_shelter"), _rect_footprint(length, depth))


def _sign_pole(rng: np.random.Generator) -> _Prop:
    h = rng.uniform(2.6, 3.1)
    plate = pick(rng, ((200, 30, 30), (30, 70, 160), (240, 240, 235), (240, 190, 40)))
    parts = [(rod((0, 0, 0), (0, 0, h), 0.035, 6), (130, 132, 135))]
    if rng.random() < 0.5:
        parts.append((rod((0, -0.03, h - 0.3), (0, 0.03, h - 0.3), 0.3, 12), plate))
    else:
        parts.append((block((0.5, 0.04, 0.65), 0, 0, h - 0.75), plate))
    return _Prop(painted(parts, "sign_pole"), [(0, 0, 0.15)])


def _traffic_light(rng: np.random.Generator) -> _Prop:
    colour = pick(rng, _METAL)
    parts = [
        (rod((0, 0, 0), (0, 0, 3.2), 0.06, 8), colour),
        (block((0.3, 0.25, 0.9), 0, 0, 2.3), (30, 30, 32)),
    ]
    parts += [
        (block((0.18, 0.04, 0.18), 0, 0.13, 2.35 + 0.28 * i), c)
        for i, c in enumerate(((40, 120, 60), (120, 90, 20), (110, 25, 25)))
    ]
    return _Prop(painted(parts, "traffic_light"), [(0, 0, 0.2)])


def _post_box(rng: np.random.Generator) -> _Prop:
    red = vary(rng, (190, 25, 25), 6)
    parts = [
        (cylinder(0.26, 1.35, 12), red),
        (sphere(0.27, 12).transformed(translation(0, 0, 1.3)), red),
        (block((0.25, 0.04, 0.05), 0, 0.25, 1.1), (20, 20, 20)),
    ]
    return _Prop(painted(parts, "post_box"), [(0, 0, 0.32)])


def _stall(rng: np.random.Generator) -> _Prop:
    """A market stall: table of goods facing +y under a striped canopy or a big umbrella."""
    length, depth, roof = rng.uniform(2.2, 3.0), rng.uniform(1.4, 1.8), rng.uniform(2.2, 2.5)
    cloth, metal = vary(rng, pick(rng, (*_SIGN, (230, 230, 225))), 10), pick(rng, _METAL)
    front = depth / 2 - 0.45
    parts = [(block((length, 0.9, 0.85), 0, front, 0), cloth)]
    for _ in range(int(rng.integers(6, 13))):
        sx, sy, sz = rng.uniform(0.2, 0.45), rng.uniform(0.2, 0.35), rng.uniform(0.08, 0.25)
        x = rng.uniform(-length / 2 + sx / 2, length / 2 - sx / 2)
        y = front + rng.uniform(-0.45 + sy / 2, 0.45 - sy / 2)
        parts.append((block((sx, sy, sz), x, y, 0.85), vary(rng, pick(rng, _PRODUCE), 12)))
    for x in rng.uniform(-length / 2 + 0.3, length / 2 - 0.3, int(rng.integers(1, 4))):
        parts.append(
            (
                block((0.5, 0.4, 0.3 * int(rng.integers(1, 4))), x, -depth / 2 + 0.3, 0),
                vary(rng, pick(rng, _WOOD), 10),
            )
        )
    if rng.random() < 0.7:
        colours = (vary(rng, pick(rng, _SIGN), 8), (238, 236, 228))
        n = int(rng.integers(4, 8))
        parts += [
            (rod((x, y, 0), (x, y, roof), 0.03, 6), metal)
            for x in (-length / 2, length / 2)
            for y in (-depth / 2, depth / 2)
        ]
        parts += [
            (
                block(
                    (length / n + 0.1 / n, depth + 0.3, 0.04),
                    -length / 2 + (i + 0.5) * length / n,
                    0,
                    roof,
                ),
                colours[i % 2],
            )
            for i in range(n)
        ]
    else:
        parts += [
            (rod((0, 0, 0), (0, 0, roof + 0.3), 0.03, 6), metal),
            (
                cylinder(1.5, 0.45, 8, radius_top=0.0).transformed(translation(0, 0, roof)),
                vary(rng, pick(rng, _SIGN), 8),
            ),
        ]
    return _Prop(painted(parts, "stall"), _rect_footprint(length, depth))


def _fountain(rng: np.random.Generator) -> _Prop:
    r, stone = rng.uniform(1.8, 2.8), vary(rng, pick(rng, _STONE), 6)
    parts = [
        (cylinder(r, 0.5, 24), stone),
        (cylinder(r - 0.18, 0.44, 24), (100, 125, 140)),
        (rod((0, 0, 0), (0, 0, 1.3), 0.2, 10), stone),
        (cylinder(0.25, 0.3, 16, radius_top=0.8).transformed(translation(0, 0, 1.3)), stone),
    ]
    return _Prop(painted(parts, "fountain"), [(0, 0, r)])


def _statue(rng: np.random.Generator) -> _Prop:
    stone, bronze = vary(rng, pick(rng, _STONE), 6), vary(rng, (72, 88, 74), 8)
    parts = [
        (block((1.4, 1.4, 1.6)), stone),
        (rod((0, 0, 1.6), (0, 0, 2.8), 0.25, 10), bronze),
        (sphere(0.16, 10).transformed(translation(0, 0, 2.95)), bronze),
        (rod((0.2, 0, 2.6), (0.45, 0.1, 3.1), 0.06, 6), bronze),
    ]
    return _Prop(painted(parts, "statue"), _rect_footprint(1.4, 1.4))


def _dumpster(rng: np.random.Generator) -> _Prop:
    length, depth, h = rng.uniform(1.6, 2.0), rng.uniform(1.0, 1.2), rng.uniform(1.1, 1.3)
    colour = vary(rng, pick(rng, ((40, 80, 50), (40, 60, 110), (80, 82, 86), (150, 80, 30))), 8)
    parts = [
        (block((length, depth, h - 0.15), 0, 0, 0.15), colour),
        (block((length + 0.04, depth + 0.04, 0.06), 0, 0, h), shade(colour, 0.6)),
    ]
    parts += [
        (rod((x, y - 0.03, 0.07), (x, y + 0.03, 0.07), 0.07, 8), _TYRE)
        for x in (-length / 2 + 0.2, length / 2 - 0.2)
        for y in (-depth / 3, depth / 3)
    ]
    return _Prop(painted(parts, "dumpster"), _rect_footprint(length, depth))


def _crates(rng: np.random.Generator) -> _Prop:
    parts = []
    for i in range(int(rng.integers(2, 6))):
        x, y = rng.uniform(-0.15, 0.15, 2)
        parts.append(
            (
                block((0.6, 0.4, 0.3), x, y, 0.3 * i),
                vary(rng, pick(rng, (*_WOOD, (40, 90, 150), (200, 60, 40))), 12),
            )
        )
    return _Prop(painted(parts, "crates"), [(0, 0, 0.55)])


def _railing(rng: np.random.Generator, length: float, height: float, bar_gap: float) -> _Prop:
    """Railings along x (pedestrian guard rails, school fences): posts, rails and bars."""
    colour = vary(rng, pick(rng, (*_METAL, (210, 210, 205), (30, 90, 60))), 6)
    posts = np.linspace(-length / 2, length / 2, max(2, round(length / 2.0) + 1))
    parts = [(block((0.07, 0.07, height), x, 0, 0), colour) for x in posts]
    parts += [(block((length, 0.04, 0.05), 0, 0, z), colour) for z in (0.12, height - 0.1)]
    parts += [
        (block((0.025, 0.025, height - 0.05), x, 0, 0.03), colour)
        for x in np.arange(-length / 2 + bar_gap, length / 2, bar_gap)
    ]
    n = max(1, round(length / 0.4))
    footprint = [(-length / 2 + (i + 0.5) * length / n, 0.0, 0.2) for i in range(n)]
    return _Prop(painted(parts, "railing"), footprint)


def _hedge(rng: np.random.Generator, length: float) -> _Prop:
    h = rng.uniform(0.8, 1.3)
    return _Prop(
        painted([(block((length, 0.8, h)), shade(pick(rng, _FOLIAGE), 0.85))], "hedge"),
        _rect_footprint(length, 0.8),
    )


def _pillar(rng: np.random.Generator, h: float) -> _Prop:
    return _Prop(
        painted([(block((0.35, 0.35, h)), vary(rng, pick(rng, _BRICK), 6))], "pillar"),
        [(0, 0, 0.26)],
    )


# -- walkways -------------------------------------------------------------------------------------


def _resample(path: np.ndarray, step: float) -> np.ndarray:
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    t = np.linspace(0.0, s[-1], max(2, int(np.ceil(s[-1] / step)) + 1))
    return np.column_stack([np.interp(t, s, path[:, 0]), np.interp(t, s, path[:, 1])])


def _wander(
    rng: np.random.Generator,
    points: Sequence[Sequence[float]],
    amplitude: float,
) -> np.ndarray:
    """A walkway through control points: corners cut, resampled to 0.25 m, with a gentle
    sideways wander so that no two walkways are ruler-straight (ends stay put)."""
    pts = np.asarray(points, float)
    cut = [pts[0]]
    for a, p, c in zip(pts[:-2], pts[1:-1], pts[2:], strict=True):
        la, lc = np.linalg.norm(a - p), np.linalg.norm(c - p)
        d = min(1.2, la / 3, lc / 3)
        cut += [p + (a - p) / la * d, p + (c - p) / lc * d]
    path = _resample(np.array([*cut, pts[-1]]), 0.25)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    tangent = np.gradient(path, axis=0)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    phase, wavelength = rng.uniform(0, 2 * np.pi, 2), rng.uniform(6.0, 14.0, 2)
    wave = 0.6 * np.sin(2 * np.pi * s / wavelength[0] + phase[0])
    wave += 0.4 * np.sin(2 * np.pi * s / wavelength[1] + phase[1])
    taper = np.clip(np.minimum(s, s[-1] - s) / 2.0, 0.0, 1.0)
    return path + normal * (amplitude * wave * taper)[:, None]


def _avoid(path: np.ndarray, circles: Sequence[Circle], clearance: float) -> np.ndarray:
    """Bend a walkway around the footprints it would cross, all on one side of each (as people
    step around a fountain), keeping ``clearance`` from every footprint.

    Each point inside a footprint keeps its place along the walkway's chord through it and
    slides sideways onto the footprint's circle, so the detour is an arc; one direction per
    footprint keeps pushes off overlapping footprints (a bus shelter) all on the same side.
    """
    p = _resample(path, 0.1)
    for _ in range(8):
        moved = False
        for cx, cy, r in circles:
            d = p - (cx, cy)
            reach = r + clearance
            inside = np.hypot(d[:, 0], d[:, 1]) < reach
            if not inside.any():
                continue
            index = np.flatnonzero(inside)
            t = p[min(index[-1] + 1, len(p) - 1)] - p[max(index[0] - 1, 0)]
            t /= np.linalg.norm(t) + 1e-12
            along = d[inside] @ t
            across = t[0] * d[inside, 1] - t[1] * d[inside, 0]
            side = 1.0 if across.sum() >= 0 else -1.0
            offset = side * np.sqrt(np.maximum(reach**2 - along**2, 0.0))
            p[inside] = np.outer(along, t) + np.outer(offset, (-t[1], t[0])) + (cx, cy)
            moved = True
        if not moved:
            break
    return _resample(p, 0.25)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances from points p (N, 2) to the nearest of the segments a-b (S, 2): (N,)."""
    ab = b - a
    t = np.einsum("nsk,sk->ns", p[:, None] - a[None], ab) / np.maximum((ab * ab).sum(1), 1e-12)
    closest = a[None] + np.clip(t, 0.0, 1.0)[..., None] * ab[None]
    return np.linalg.norm(closest - p[:, None], axis=2).min(1)


# -- assembling a site ----------------------------------------------------------------------------


class _Builder:
    """Collects one site's meshes, walkways and footprints, keeping props off the walkways."""

    def __init__(self, rng: np.random.Generator, kind: str, extent: Sequence[float]) -> None:
        self.rng, self.kind = rng, kind
        x0, y0, x1, y1 = (float(v) for v in extent)
        self.extent = (x0, y0, x1, y1)
        self.ground = _Canvas(x0 - _MARGIN, y0 - _MARGIN, x1 + _MARGIN, y1 + _MARGIN, 1024)
        self.meshes: list[Mesh] = []
        self.walkways: list[np.ndarray] = []
        self.obstacles: list[Circle] = []
        self.occluders: list[str] = []
        self._counts: dict[str, int] = {}

    @property
    def exit_x(self) -> float:
        """Where walkways along x start and end: beyond the extent, on either side."""
        return self.extent[2] + _EXIT

    def add(self, mesh: Mesh, name: str, occluder: bool = False) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1
        unique = f"{name}_{self._counts[name]}"
        self.meshes.append(dataclasses.replace(mesh, name=unique))
        if occluder:
            self.occluders.append(unique)

    def walk(self, points: Sequence[Sequence[float]], wander: float = 0.25) -> np.ndarray:
        path = _avoid(_wander(self.rng, points, wander), self.obstacles, CLEARANCE + 0.15)
        self.walkways.append(path)
        return path

    def place(
        self,
        prop: _Prop,
        x: float,
        y: float,
        yaw: float = 0.0,
        region: Sequence[float] | None = None,
    ) -> bool:
        """Stand a prop at (x, y) unless it would block a walkway, overlap another prop or leave
        ``region`` (xmin, ymin, xmax, ymax)."""
        c, s = np.cos(yaw), np.sin(yaw)
        circles = [(x + c * u - s * v, y + s * u + c * v, r) for u, v, r in prop.footprint]
        centres = np.array([(u, v) for u, v, _ in circles])
        radii = np.array([r for *_, r in circles])
        if region is not None and not (
            np.all(centres - radii[:, None] >= region[:2])
            and np.all(centres + radii[:, None] <= region[2:])
        ):
            return False
        if self.walkways:
            a = np.concatenate([w[:-1] for w in self.walkways])
            b = np.concatenate([w[1:] for w in self.walkways])
            if np.any(_segment_distance(centres, a, b) < radii + CLEARANCE + 0.05):
                return False
        if self.obstacles:
            others = np.array(self.obstacles)
            gap = np.linalg.norm(centres[:, None] - others[None, :, :2], axis=2)
            if np.any(gap < radii[:, None] + others[None, :, 2] + 0.05):
                return False
        self.obstacles += [(float(u), float(v), float(r)) for u, v, r in circles]
        self.add(
            moved(prop.mesh, translation(x, y, 0) @ rotation_z(yaw)),
            prop.mesh.name,
            occluder=True,
        )
        return True

    def scatter(
        self,
        make: Callable[[np.random.Generator], _Prop],
        count: int,
        region: Sequence[float],
        yaw: float | None = None,
        tries: int = 25,
    ) -> None:
        """Place up to ``count`` props at random spots of a region (random heading unless given)."""
        x0, y0, x1, y1 = region
        for _ in range(count):
            prop = make(self.rng)
            for _ in range(tries):
                x, y = self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)
                a = self.rng.uniform(0, 2 * np.pi) if yaw is None else yaw
                if self.place(prop, x, y, a, region):
                    break

    def row(
        self,
        make: Callable[[np.random.Generator], _Prop],
        y: float,
        gap: tuple[float, float],
        yaw: float = 0.0,
        skip: float = 0.0,
        span: tuple[float, float] | None = None,
    ) -> None:
        """Props in a line along x (lamps along a kerb, parked cars, stalls), ``gap`` metres
        between footprints; each spot is left empty with probability ``skip`` or when blocked."""
        x, end = span or (self.extent[0] - 8.0, self.extent[2] + 8.0)
        x += self.rng.uniform(0, gap[1])
        reach = 0.0
        while True:
            prop = make(self.rng)
            x += reach
            reach = max(abs(u) + r for u, _, r in prop.footprint)
            x += reach + self.rng.uniform(*gap)
            if x > end:
                return
            if self.rng.random() >= skip:
                self.place(prop, x, y, yaw)

    def site(self) -> Site:
        return Site(
            self.kind,
            [self.ground.ground("ground"), *self.meshes],
            self.walkways,
            self.obstacles,
            self.extent,
            self.occluders,
        )


# -- the six kinds of site ------------------------------------------------------------------------


def _roadway(b: _Builder, y_kerb: float, y_far: float, crossing: float) -> None:
    """Paint a road between two kerbs (near kerb y_kerb, far kerb y_far < y_kerb) with lane
    markings, a zebra crossing centred on x = crossing, drains, manholes and patches."""
    g, rng = b.ground, b.rng
    g.fill(g.u0, g.w0, g.u1, y_far, _paving(rng, g))
    g.fill(g.u0, y_far, g.u1, y_kerb, _asphalt(rng, g))
    for _ in range(int(rng.integers(1, 4))):  # re-laid patches
        x, y = rng.uniform(g.u0, g.u1), rng.uniform(y_far, y_kerb)
        g.fill(x, y, x + rng.uniform(1, 4), y + rng.uniform(0.6, 2.0), (52, 52, 54), alpha=0.5)
    kerb = _grain(rng, g, (168, 166, 160), 6.0, 3.0)
    g.fill(g.u0, y_kerb, g.u1, y_kerb + 0.25, kerb)
    g.fill(g.u0, y_far - 0.25, g.u1, y_far, kerb)
    paint = (232, 232, 224)
    mid = (y_kerb + y_far) / 2
    for x in np.arange(g.u0 + rng.uniform(0, 7), g.u1, 7.5):
        if abs(x + 1.5 - crossing) > 4.5:
            g.fill(x, mid - 0.06, x + 3.0, mid + 0.06, paint, alpha=0.85)
    for y in np.arange(y_far + 0.4, y_kerb - 0.4, 1.0):
        g.fill(crossing - 1.6, y, crossing + 1.6, y + 0.5, paint, alpha=0.9)
    g.fill(crossing - 2.4, mid, crossing - 2.1, y_kerb, paint, alpha=0.85)  # give-way lines
    g.fill(crossing + 2.1, y_far, crossing + 2.4, mid, paint, alpha=0.85)
    for x in rng.uniform(g.u0, g.u1, 4):
        for y in (y_kerb - 0.3, y_far + 0.3):
            g.fill(x, y - 0.2, x + 0.6, y + 0.2, (35, 35, 36))  # drain grates
    for x in rng.uniform(g.u0, g.u1, 2):
        g.ellipse((x, rng.uniform(y_far + 1, y_kerb - 1)), (0.35, 0.35), (48, 48, 50))


def _street(rng: np.random.Generator) -> Site:
    width = rng.uniform(18.0, 28.0)
    pave, road, far = rng.uniform(3.8, 5.6), rng.uniform(6.5, 8.0), rng.uniform(4.0, 5.0)
    depth = pave + road + 0.6
    y_front = depth / 2
    y_kerb, y_far = y_front - pave, y_front - pave - road
    b = _Builder(rng, "street", (-width / 2, -depth / 2, width / 2, depth / 2))
    xc = rng.uniform(-width / 4, width / 4)
    b.ground.img[:] = _paving(rng, b.ground)
    _roadway(b, y_kerb, y_far, xc)
    _building_row(b, "north", y_front, (-width / 2 - 20, width / 2 + 20), [(xc - 2.2, xc + 2.2)])
    _building_row(b, "south", y_far - far, (-width / 2 - 20, width / 2 + 20))
    if pave > 4.6 and rng.random() < 0.6:  # stands before the walkways, which then go round it
        sx = xc + pick(rng, (-1, 1)) * rng.uniform(5.0, 7.0)
        b.place(_bus_shelter(rng), sx, y_kerb + 0.95, np.pi)
    xo = b.exit_x
    mid = y_kerb + rng.uniform(1.4, 1.7)
    b.walk([(-xo, y_front - rng.uniform(0.9, 1.3)), (xo, y_front - rng.uniform(0.9, 1.3))])
    b.walk([(xo, y_kerb + rng.uniform(1.4, 1.7)), (-xo, y_kerb + rng.uniform(1.4, 1.7))])
    b.walk(
        [(xc + rng.uniform(-0.4, 0.4), y_front + _EXIT), (xc + rng.uniform(-0.4, 0.4), y_far - 2.6)]
    )
    b.walk([(-xo, mid), (xc - 1.0, mid), (xc - 1.0, y_far - 1.3), (xo, y_far - 1.3)])
    for x in (xc - 2.1, xc + 2.1):
        b.place(_bollard(rng), x, y_kerb + 0.3)
        b.place(_bollard(rng), x, y_far - 0.3)
    b.place(_traffic_light(rng), xc + pick(rng, (-2.7, 2.7)), y_kerb + 0.4, np.pi)
    b.row(_street_lamp, y_kerb + 0.45, (13.0, 18.0), -np.pi / 2)
    b.row(_tree, y_kerb + 0.6, (7.0, 10.0), skip=0.4 if rng.random() < 0.6 else 1.0)
    b.row(_car, y_kerb - 1.15, (0.4, 1.8), pick(rng, (0.0, np.pi)), skip=0.25)
    b.row(_car, y_far + 1.15, (0.4, 1.8), pick(rng, (0.0, np.pi)), skip=0.4)
    b.place(_van(rng), rng.uniform(-width / 2, width / 2), y_kerb - 1.25, 0.0)
    zone = (-width / 2 - 4, y_kerb + 0.15, width / 2 + 4, y_kerb + 1.0)
    b.scatter(_bin, int(rng.integers(1, 4)), zone)
    b.scatter(_sign_pole, int(rng.integers(1, 3)), zone)
    if rng.random() < 0.4:
        b.scatter(_post_box, 1, zone)
    return b.site()


def _school_gate(rng: np.random.Generator) -> Site:
    width = rng.uniform(18.0, 28.0)
    pave, road, yard = rng.uniform(3.8, 5.0), rng.uniform(6.5, 7.5), 3.0
    depth = 0.6 + road + pave + yard
    y_fence = depth / 2 - yard
    y_kerb, y_far = y_fence - pave, y_fence - pave - road
    b = _Builder(rng, "school_gate", (-width / 2, -depth / 2, width / 2, depth / 2))
    g = b.ground
    xg, gate = rng.uniform(-width / 5, width / 5), rng.uniform(3.0, 4.0)
    xc = xg + pick(rng, (-1, 1)) * rng.uniform(4.0, 6.0)
    g.img[:] = _grain(rng, g, vary(rng, (92, 90, 88), 6), 8.0, 5.0)  # schoolyard
    g.fill(g.u0, y_kerb, g.u1, y_fence, _paving(rng, g))
    _roadway(b, y_kerb, y_far, xc)
    zigzag = [(xg + x, y_kerb - 0.35 - 0.6 * (x % 2)) for x in range(-9, 10)]
    g.line(zigzag, 0.1, (235, 200, 40), 0.9)
    for _ in range(int(rng.integers(2, 5))):  # playground markings
        centre = (rng.uniform(g.u0 + 5, g.u1 - 5), rng.uniform(y_fence + 2, y_fence + 8))
        colour = pick(rng, ((230, 200, 40), (235, 235, 230), (60, 120, 200), (200, 60, 60)))
        radius = rng.uniform(1.0, 2.0)
        g.ellipse(centre, (radius, radius), colour, 0.8, outline=0.1)
    _building_row(
        b,
        "north",
        y_fence + rng.uniform(9.0, 13.0),
        (-width / 2 - 20, width / 2 + 20),
        ground=lambda: "school",
        floors=(1, 4),
    )
    _building_row(b, "south", y_far - rng.uniform(4.0, 5.0), (-width / 2 - 20, width / 2 + 20))
    fence_h = rng.uniform(1.6, 2.2)
    for x in (xg - gate / 2, xg + gate / 2):
        b.place(_pillar(rng, fence_h + 0.3), x, y_fence)
    west, east = -width / 2 - 10.0, width / 2 + 10.0
    for a, z in ((west, xg - gate / 2 - 0.4), (xg + gate / 2 + 0.4, east)):
        b.place(_railing(rng, z - a, fence_h, 0.18), (a + z) / 2, y_fence)
    xo = b.exit_x
    b.walk([(-xo, y_fence - rng.uniform(1.2, 1.5)), (xo, y_fence - rng.uniform(1.2, 1.5))])
    b.walk([(xo, y_kerb + rng.uniform(1.3, 1.6)), (-xo, y_kerb + rng.uniform(1.3, 1.6))])
    b.walk(
        [
            (xg - 0.4, depth / 2 + _EXIT),
            (xg - 0.4, y_fence - 1.5),
            (xc, y_kerb + 1.0),
            (xc, y_far - 2.4),
        ]
    )
    out = -xo if xg > 0 else xo
    b.walk([(xg + 0.5, depth / 2 + _EXIT), (xg + 0.5, y_fence - 0.9), (out, y_fence - 2.0)])
    b.row(lambda r: _railing(r, r.uniform(3.0, 6.0), 1.0, 0.25), y_kerb + 0.3, (1.0, 3.0))
    for x in (xc - 2.1, xc + 2.1):
        b.place(_bollard(rng), x, y_kerb + 0.3)
    b.place(_sign_pole(rng), xg + gate / 2 + 1.0, y_fence - 0.4)
    b.row(_street_lamp, y_kerb + 0.45, (14.0, 18.0), -np.pi / 2)
    b.row(_car, y_far + 1.15, (0.4, 1.8), pick(rng, (0.0, np.pi)), skip=0.3)
    b.row(
        _car,
        y_kerb - 1.15,
        (0.4, 1.8),
        pick(rng, (0.0, np.pi)),
        skip=0.3,
        span=(xg + 10.0, width / 2 + 8.0),
    )
    yard_zone = (-width / 2 - 6, y_fence + 0.8, width / 2 + 6, y_fence + 8.0)
    b.scatter(_tree, int(rng.integers(2, 5)), yard_zone)
    b.scatter(_bench, int(rng.integers(1, 3)), yard_zone)
    b.scatter(_bin, int(rng.integers(1, 3)), (-width / 2, y_kerb + 0.2, width / 2, y_fence - 0.2))
    return b.site()


def _plaza(rng: np.random.Generator) -> Site:
    width, depth = rng.uniform(20.0, 30.0), rng.uniform(16.0, 24.0)
    b = _Builder(rng, "plaza", (-width / 2, -depth / 2, width / 2, depth / 2))
    g = b.ground
    y_front, y_road = depth / 2 + 0.8, -depth / 2 - 4.0
    fx, fy = rng.uniform(-2.0, 2.0), rng.uniform(-1.5, 1.5)
    feature = pick(rng, (_fountain, _statue, _planter))(rng)
    reach = max(float(np.hypot(u, v)) + r for u, v, r in feature.footprint)
    g.img[:] = _paving(rng, g)
    band = _paving(rng, g)
    step = rng.uniform(4.0, 7.0)
    for v in np.arange(-30, 30, step):
        g.fill(v, g.w0, v + 0.6, g.w1, band)
        g.fill(g.u0, v, g.u1, v + 0.6, band)
    g.ellipse((fx, fy), (reach + 1.5, reach + 1.5), band)
    g.fill(g.u0, g.w0, g.u1, y_road, _asphalt(rng, g))
    g.fill(g.u0, y_road, g.u1, y_road + 0.25, (168, 166, 160))
    b.place(feature, fx, fy)
    xg = rng.uniform(-width / 4, width / 4)
    _building_row(b, "north", y_front, (-width / 2 - 20, width / 2 + 20), [(xg - 2.5, xg + 2.5)])
    _building_row(b, "south", y_road - 9.0, (-width / 2 - 20, width / 2 + 20))
    xo, top = b.exit_x, depth / 2
    b.walk([(-xo, top * rng.uniform(0.35, 0.8)), (xo, top * rng.uniform(0.35, 0.8))])
    b.walk([(xo, -top * rng.uniform(0.3, 0.8)), (-xo, -top * rng.uniform(0.3, 0.8))])
    b.walk([(xg, top + 1.5), (xg + rng.uniform(-4, 4), -top - _EXIT)])
    b.walk([(-xo, -top + rng.uniform(1, 3)), (xo, top - rng.uniform(1.5, 2.5))])
    if rng.random() < 0.5:
        b.walk([(-xo, top - rng.uniform(1.5, 2.5)), (xo, -top + rng.uniform(1, 3))])
    for a in rng.uniform(0, 2 * np.pi, int(rng.integers(2, 6))):
        ring = reach + rng.uniform(1.2, 2.5)
        b.place(_bench(rng), fx + ring * np.cos(a), fy + ring * np.sin(a), a + np.pi / 2)
    inner = (-width / 2 - 3, -depth / 2, width / 2 + 3, depth / 2)
    b.scatter(_tree, int(rng.integers(3, 7)), inner)
    b.scatter(_planter, int(rng.integers(1, 4)), inner)
    b.scatter(_bench, int(rng.integers(1, 4)), inner)
    b.scatter(_park_lamp if rng.random() < 0.5 else _street_lamp, int(rng.integers(2, 5)), inner)
    b.scatter(_bin, int(rng.integers(1, 4)), inner)
    b.row(_bollard, -depth / 2 - 0.6, (1.2, 1.8))
    b.row(_car, y_road - 1.2, (0.4, 2.5), pick(rng, (0.0, np.pi)), skip=0.4)
    return b.site()


def _market(rng: np.random.Generator) -> Site:
    width, depth = rng.uniform(18.0, 28.0), rng.uniform(13.0, 18.0)
    b = _Builder(rng, "market", (-width / 2, -depth / 2, width / 2, depth / 2))
    g = b.ground
    ya, aisle = rng.uniform(-1.0, 0.5), rng.uniform(3.5, 4.2)
    y_front, xg = depth / 2 + 1.0, rng.uniform(-width / 4, width / 4)
    g.img[:] = _paving(rng, g)
    for x in np.arange(-width / 2 - 8, width / 2 + 8, 2.8):  # pitch marks
        for y in (ya + aisle / 2, ya - aisle / 2):
            g.fill(x, y - 0.3, x + 0.06, y + 0.3, (226, 226, 220), alpha=0.7)
    _building_row(
        b,
        "north",
        y_front,
        (-width / 2 - 20, width / 2 + 20),
        [(xg - 2.5, xg + 2.5)],
        ground=lambda: "shop" if rng.random() < 0.85 else "door",
    )
    xo = b.exit_x
    back = ya + aisle / 2 + 1.7
    b.walk([(-xo, ya + 0.5), (xo, ya + 0.5)], 0.15)
    b.walk([(xo, ya - 0.5), (-xo, ya - 0.5)], 0.15)
    b.walk([(xg, y_front + 1.2), (xg + rng.uniform(-0.5, 0.5), -depth / 2 - _EXIT)], 0.15)
    b.walk([(xo, (back + y_front) / 2), (-xo, (back + y_front) / 2)], 0.2)
    south = ya - aisle / 2 - 3.2
    if south > -depth / 2 + 0.5:
        b.walk([(-xo, south), (xo, south - 1.0)])
    for y, yaw in ((ya + aisle / 2 + 0.8, np.pi), (ya - aisle / 2 - 0.8, 0.0)):  # facing the aisle
        b.row(_stall, y, (0.1, 0.6), yaw, skip=0.12)  # the walkways leave gaps where they cross
    b.scatter(_crates, int(rng.integers(2, 6)), (-width / 2, -depth / 2, width / 2, depth / 2))
    b.scatter(_van, 1, (-width / 2 - 6, -depth / 2 - 6, width / 2 + 6, ya - aisle / 2 - 1.5), 0.0)
    b.scatter(_street_lamp, int(rng.integers(1, 4)), (-width / 2, back, width / 2, y_front))
    b.scatter(_bin, int(rng.integers(1, 4)), (-width / 2, -depth / 2, width / 2, y_front))
    return b.site()


def _park_path(rng: np.random.Generator) -> Site:
    width, depth = rng.uniform(20.0, 30.0), rng.uniform(16.0, 26.0)
    b = _Builder(rng, "park_path", (-width / 2, -depth / 2, width / 2, depth / 2))
    g = b.ground
    g.img[:] = _grass(rng, g)
    for _ in range(int(rng.integers(1, 4))):  # flower beds
        centre = rng.uniform(-width / 2, width / 2), rng.uniform(-depth / 2, depth / 2)
        bloom = np.clip(_noise(rng, g.shape, 2.5) - 0.3, 0, 1)[..., None]
        bed = _grain(rng, g, (70, 52, 40), 10, 4) * (1 - bloom)
        bed += bloom * np.array(vary(rng, pick(rng, _PRODUCE)), np.float32)
        g.ellipse(
            centre, (rng.uniform(1.0, 2.5), rng.uniform(0.7, 1.5)), bed, 1.0, rng.uniform(0, 180)
        )
    xo, top = b.exit_x, depth / 2
    y0, xc = rng.uniform(-depth / 6, depth / 6), rng.uniform(-width / 5, width / 5)
    paths = [
        b.walk(
            [
                (-xo, y0),
                (-width / 6, y0 + rng.uniform(-1.5, 1.5)),
                (width / 6, y0 + rng.uniform(-1.5, 1.5)),
                (xo, y0 + rng.uniform(-1.5, 1.5)),
            ]
        ),
        b.walk(
            [
                (xc, -top - _EXIT),
                (xc + rng.uniform(-2, 2), y0),
                (xc + rng.uniform(-3, 3), top + _EXIT),
            ]
        ),
        b.walk([(-xo, top - rng.uniform(1.5, 4.0)), (xc, y0), (xo, -top + rng.uniform(1.5, 4.0))]),
    ]
    surface = pick(rng, (_asphalt(rng, g), _grain(rng, g, vary(rng, (176, 160, 130), 8), 14, 6)))
    path_width = rng.uniform(2.0, 3.0)
    for path in paths:  # painted on past the walkways' ends, to the edge of the texture
        ends = [path[0] - path[1], path[-1] - path[-2]]
        ends = [e / np.linalg.norm(e) * 2 * _MARGIN for e in ends]
        surfaced = np.vstack([path[0] + ends[0], path, path[-1] + ends[1]])
        g.line(surfaced, path_width + 0.3, (110, 100, 80), 0.5)  # worn edges
        g.line(surfaced, path_width, surface)
    for path in paths[:2]:  # benches, bins and lamps beside the paths, facing them
        for i in rng.choice(len(path), 3, replace=False):
            d = path[min(i + 1, len(path) - 1)] - path[max(i - 1, 0)]
            n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9) * pick(rng, (-1, 1))
            x, y = path[i] + n * (path_width / 2 + 0.6)
            make = pick(rng, (_bench, _bench, _bin, _park_lamp))
            b.place(make(rng), x, y, float(np.arctan2(n[0], -n[1])))
    inner = (-width / 2 - 4, -depth / 2 - 2, width / 2 + 4, depth / 2 + 2)
    b.scatter(_tree, int(rng.integers(5, 11)), inner)
    b.scatter(_bush, int(rng.integers(2, 7)), inner)
    b.scatter(_park_lamp, int(rng.integers(1, 3)), inner)
    b.scatter(lambda r: _hedge(r, r.uniform(3.0, 8.0)), int(rng.integers(0, 3)), inner)
    outer = (-width / 2 - 16, -depth / 2 - 16, width / 2 + 16, depth / 2 + 16)
    b.scatter(pick(rng, (_tree, _conifer)), 14, outer)
    if rng.random() < 0.6:
        _building_row(
            b,
            "north",
            depth / 2 + rng.uniform(14.0, 20.0),
            (-width / 2 - 20, width / 2 + 20),
            ground=lambda: "door",
        )
    return b.site()


def _alley(rng: np.random.Generator) -> Site:
    length, wide = rng.uniform(16.0, 26.0), rng.uniform(5.0, 7.0)
    b = _Builder(rng, "alley", (-length / 2, -wide / 2, length / 2, wide / 2))
    g = b.ground
    g.img[:] = _asphalt(rng, g)
    concrete = _grain(rng, g, vary(rng, (128, 126, 120), 8), 7.0, 6.0)
    for _ in range(int(rng.integers(2, 6))):
        x, y = rng.uniform(g.u0, g.u1), rng.uniform(-wide, wide)
        g.fill(x, y, x + rng.uniform(2, 6), y + rng.uniform(1, 3), concrete)
    g.fill(g.u0, -0.2, g.u1, 0.2, _tiles(rng, g, (0.2, 0.13), (96, 94, 90), (60, 58, 56), 10))
    for _ in range(int(rng.integers(1, 5))):  # puddles and stains
        g.ellipse(
            (rng.uniform(-length / 2, length / 2), rng.uniform(-wide / 2, wide / 2)),
            (rng.uniform(0.3, 1.2), rng.uniform(0.2, 0.6)),
            (40, 44, 50),
            0.6,
            rng.uniform(0, 180),
        )
    gap = rng.uniform(2.6, 3.4)
    xn = rng.uniform(-length / 4, length / 4)
    xs = xn + rng.uniform(-3.0, 3.0)
    span = (-length / 2 - 20, length / 2 + 20)

    def back() -> str:
        return "back" if rng.random() < 0.8 else "door"

    _building_row(b, "north", wide / 2, span, [(xn - gap / 2, xn + gap / 2)], back, (1, 4))
    _building_row(b, "south", -wide / 2, span, [(xs - gap / 2, xs + gap / 2)], back, (1, 4))
    xo, lane = b.exit_x, rng.uniform(0.25, 0.4)
    b.walk([(-xo, lane), (xo, lane)], 0.12)
    b.walk([(xo, -lane), (-xo, -lane)], 0.12)
    b.walk([(xn, wide / 2 + _EXIT), (xn, 0.3), (xs, -0.3), (xs, -wide / 2 - _EXIT)], 0.1)
    out = -xo if xn > 0 else xo
    b.walk([(xn + 0.5, wide / 2 + _EXIT), (xn + 0.5, 0.0), (out, 0.0)], 0.1)
    for wall in (wide / 2, -wide / 2):  # against the walls
        for _ in range(int(rng.integers(3, 8))):
            prop = pick(rng, (_dumpster, _dumpster, _bin, _bin, _bin, _crates))(rng)
            y = wall - np.sign(wall) * (max(abs(v) + r for _, v, r in prop.footprint) + 0.05)
            for x in rng.uniform(-length / 2 - 3, length / 2 + 3, 12):
                if b.place(prop, x, y):
                    break
    for _ in range(int(rng.integers(1, 4))):  # overhead cables
        x = rng.uniform(-length / 2, length / 2)
        z = rng.uniform(4.5, 7.0)
        b.add(
            painted(
                [
                    (
                        rod(
                            (x, wide / 2, z), (x + rng.uniform(-2, 2), -wide / 2, z - 0.3), 0.012, 4
                        ),
                        (20, 20, 20),
                    )
                ]
            ),
            "cable",
        )
    return b.site()


_LAYOUTS: dict[str, Callable[[np.random.Generator], Site]] = {
    "street": _street,
    "plaza": _plaza,
    "alley": _alley,
    "school_gate": _school_gate,
    "park_path": _park_path,
    "market": _market,
}


def build_site(rng: np.random.Generator, kind: str | None = None) -> Site:
    """A random site of the given kind (one of ``KINDS``; drawn from rng when None)."""
    kind = pick(rng, KINDS) if kind is None else kind
    if kind not in _LAYOUTS:
        raise ValueError(f"unknown site kind {kind!r}; expected one of {KINDS}")
    return _LAYOUTS[kind](rng)


# -- light ----------------------------------------------------------------------------------------


def _smoothstep(a: float, b: float, x: float) -> float:
    t = float(np.clip((x - a) / (b - a), 0.0, 1.0))
    return t * t * (3 - 2 * t)


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> np.ndarray:
    return np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t


def daylight(rng: np.random.Generator, hour: float) -> Lighting:
    """Sun, ambient and sky light for a time of day (0-24) on a random day.

    The season shifts sunrise and sunset and the sun's highest elevation; the site's facing
    sets the sun's azimuth; cloud cover trades direct sun for ambient and greys the sky. Low sun
    is warm; after sunset the sky turns dark blue, then near-black, and the ambient becomes the
    dim orange of street lamps while a faint moon stands in for the sun's direction.
    """
    rise, sunset = 6.0 + rng.uniform(-1.0, 1.0), 18.0 + rng.uniform(-1.0, 1.5)
    noon, half = (rise + sunset) / 2, (sunset - rise) / 2
    t = (((hour - noon) + 12.0) % 24.0 - 12.0) / half  # -1 at sunrise, 0 at noon, 1 at sunset
    elevation = np.radians(rng.uniform(30.0, 65.0)) * np.cos(np.pi / 2 * np.clip(t, -2.0, 2.0))
    azimuth = rng.uniform(0.0, 2 * np.pi) + np.pi / 2 * np.clip(t, -1.2, 1.2)
    cloud = float(rng.uniform(0.0, 1.0) ** 1.6)
    height = float(np.sin(elevation))
    up = float(np.clip(height / 0.25, 0.0, 1.0))  # direct sun fades in over the first ~15°
    warm = float(1.0 - np.clip(height / 0.5, 0.0, 1.0))
    day = _smoothstep(-0.1, 0.1, elevation)  # civil twilight ends ~6° below the horizon
    if elevation > 0:
        el, az = max(float(elevation), np.radians(3.0)), azimuth
        sun = _mix((1.0, 0.97, 0.92), (1.0, 0.68, 0.42), warm) * 0.95 * up * (1 - 0.85 * cloud)
    else:  # moonlight from high up
        el, az = np.radians(55.0), azimuth + np.pi
        sun = np.array((0.05, 0.06, 0.09)) * (1 - day) * (1 - cloud)
    direction = -np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    ambient_day = np.array((0.36, 0.40, 0.46)) * (0.55 + 0.45 * up) * (1 + 0.8 * cloud)
    ambient = _mix((0.11, 0.085, 0.055), ambient_day, day)
    sky_day = _mix(
        _mix((0.50, 0.68, 0.92), (0.95, 0.66, 0.45), 0.5 * warm), (0.74, 0.76, 0.79), cloud
    )
    dusk = _mix((0.015, 0.02, 0.035), (0.10, 0.14, 0.30), _smoothstep(-0.25, -0.03, elevation))
    sky = _mix(dusk, sky_day, _smoothstep(-0.03, 0.12, elevation))
    return Lighting(
        tuple(float(v) for v in direction),
        tuple(float(v) for v in sun),
        tuple(float(v) for v in ambient),
        tuple(float(v) for v in sky),
    )

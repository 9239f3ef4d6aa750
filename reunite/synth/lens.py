"""Lens distortion for pinhole renders (OpenCV's Brown–Conrady model).

The renderer is an ideal pinhole camera; a real CCTV lens bends straight lines. We model the lens
with OpenCV's radial/tangential model so that calibrations from real cameras can be plugged in
directly. Two directions matter and are easy to mix up:

* forward (``distort_points``): a ray that the pinhole render draws at pixel ``p`` lands at
  ``distort_points(p)`` on the real sensor. This is a closed-form polynomial.
* backward (``build_distortion_maps``): to *produce* the distorted frame we need, for every
  output pixel, the pinhole pixel it came from, i.e. the inverse of the polynomial. There is no
  closed form, so it is solved per pixel with Newton's method once per camera and cached as remap
  tables. (``cv2.initUndistortRectifyMap`` builds the opposite table: it undistorts a real image.)

Barrel distortion pulls the periphery inwards, so an output frame with the same intrinsics as the
render would see past the render's edges (black corners). ``covering_intrinsics`` gives the larger
pinhole canvas to render instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_NEWTON_STEPS = 12
_INVERSE_TOLERANCE = 1e-7  # in normalised units: 1e-4 px even at a 1000 px focal length
_OUTSIDE = -1e4  # a remap coordinate far outside every image: reads the constant border (0)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels; ``(cx, cy)`` uses OpenCV's convention (pixel centres)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )


@dataclass(frozen=True)
class LensDistortion:
    """OpenCV distortion coefficients (k1, k2, p1, p2, k3) on normalised image coordinates."""

    k1: float
    k2: float
    p1: float
    p2: float
    k3: float = 0.0

    @property
    def coefficients(self) -> np.ndarray:
        """In OpenCV's ``distCoeffs`` order, for interoperability with cv2 calibration tools."""
        return np.array([self.k1, self.k2, self.p1, self.p2, self.k3], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class DistortionMaps:
    """Per-output-pixel source coordinates in the pinhole render (float32, output-sized)."""

    map_x: np.ndarray
    map_y: np.ndarray
    src: Intrinsics
    dst: Intrinsics


def _distort_normalized(
    x: np.ndarray, y: np.ndarray, dist: LensDistortion
) -> tuple[np.ndarray, np.ndarray]:
    """The forward model on normalised coordinates (the one definition every function shares)."""
    r2 = x * x + y * y
    radial = 1.0 + r2 * (dist.k1 + r2 * (dist.k2 + r2 * dist.k3))
    xy = x * y
    xd = x * radial + 2.0 * dist.p1 * xy + dist.p2 * (r2 + 2.0 * x * x)
    yd = y * radial + dist.p1 * (r2 + 2.0 * y * y) + 2.0 * dist.p2 * xy
    return xd, yd


def _forward_with_jacobian(
    x: np.ndarray, y: np.ndarray, dist: LensDistortion
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward model plus its Jacobian (d_xx, d_yy, and the symmetric off-diagonal d_xy)."""
    r2 = x * x + y * y
    radial = 1.0 + r2 * (dist.k1 + r2 * (dist.k2 + r2 * dist.k3))
    d_radial = dist.k1 + r2 * (2.0 * dist.k2 + 3.0 * dist.k3 * r2)  # d(radial)/d(r²)
    xd, yd = _distort_normalized(x, y, dist)
    d_xx = radial + 2.0 * x * x * d_radial + 2.0 * dist.p1 * y + 6.0 * dist.p2 * x
    d_yy = radial + 2.0 * y * y * d_radial + 6.0 * dist.p1 * y + 2.0 * dist.p2 * x
    d_xy = 2.0 * x * y * d_radial + 2.0 * dist.p1 * x + 2.0 * dist.p2 * y
    return xd, yd, d_xx, d_yy, d_xy


def _undistort_normalized(
    xd: np.ndarray, yd: np.ndarray, dist: LensDistortion
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Invert the forward model by Newton's method; returns (x, y, converged).

    Newton with the analytic Jacobian converges in a few steps even at the strong corners of wide
    lenses, where OpenCV's fixed-point ``undistortPoints`` iteration is slow. Points that do not
    converge, or converge beyond a fold of the polynomial (Jacobian determinant <= 0), have no
    physical source and are reported as not converged.
    """
    x, y = xd.copy(), yd.copy()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step in range(_NEWTON_STEPS + 1):
            fx, fy, d_xx, d_yy, d_xy = _forward_with_jacobian(x, y, dist)
            ex, ey = fx - xd, fy - yd
            det = d_xx * d_yy - d_xy * d_xy
            error = np.hypot(ex, ey)
            if step == _NEWTON_STEPS or np.all(error < _INVERSE_TOLERANCE):
                break
            x = x - (d_yy * ex - d_xy * ey) / det
            y = y - (d_xx * ey - d_xy * ex) / det
        return x, y, (error < _INVERSE_TOLERANCE) & (det > 0)


def _output_grid(dst: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates of every output pixel centre."""
    u = (np.arange(dst.width, dtype=np.float64) - dst.cx) / dst.fx
    v = (np.arange(dst.height, dtype=np.float64) - dst.cy) / dst.fy
    return np.meshgrid(u, v)


def build_distortion_maps(
    intr: Intrinsics, dist: LensDistortion, src: Intrinsics | None = None
) -> DistortionMaps:
    """Remap tables turning a pinhole render (intrinsics ``src``, default ``intr``) into the frame
    a lens with ``dist`` records at intrinsics ``intr``. Build once per camera (~0.3 s at 720p)."""
    src = src or intr
    xd, yd = _output_grid(intr)
    x, y, ok = _undistort_normalized(xd, yd, dist)
    map_x = np.where(ok, x * src.fx + src.cx, _OUTSIDE).astype(np.float32)
    map_y = np.where(ok, y * src.fy + src.cy, _OUTSIDE).astype(np.float32)
    return DistortionMaps(map_x=map_x, map_y=map_y, src=src, dst=intr)


def distort_image(img: np.ndarray, maps: DistortionMaps, nearest: bool = False) -> np.ndarray:
    """Resample a pinhole render through the lens; pixels with no source in the render become 0.

    Use ``nearest=True`` for identity and depth buffers: bilinear weights would invent ids (and
    depths) that exist nowhere in the scene along occlusion boundaries.
    """
    if img.shape[:2] != (maps.src.height, maps.src.width):
        raise ValueError(
            f"image is {img.shape[1]}x{img.shape[0]}, maps expect "
            f"{maps.src.width}x{maps.src.height}"
        )
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(
        img, maps.map_x, maps.map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def distort_points(
    points_xy: np.ndarray, intr: Intrinsics, dist: LensDistortion, src: Intrinsics | None = None
) -> np.ndarray:
    """Where points drawn at ``points_xy`` (N,2) in the pinhole render land in the distorted frame.

    Exactly the inverse of the ``build_distortion_maps`` lookup, so projected keypoints and boxes
    stay aligned with the distorted pixels.
    """
    src = src or intr
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    xd, yd = _distort_normalized((pts[:, 0] - src.cx) / src.fx, (pts[:, 1] - src.cy) / src.fy, dist)
    return np.stack([xd * intr.fx + intr.cx, yd * intr.fy + intr.cy], axis=1)


def covering_intrinsics(intr: Intrinsics, dist: LensDistortion, margin_px: int = 2) -> Intrinsics:
    """The smallest pinhole canvas (same focal lengths) whose render covers every output pixel.

    Render with these intrinsics and pass them as ``src`` so the distorted frame has no black
    corners. Barrel distortion makes this canvas larger than the output frame.
    """
    xd, yd = _output_grid(intr)
    # A fold-free lens maps the frame's border onto the border of its source region, so the
    # border pixels alone bound the canvas.
    border = (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1])
    x, y, ok = _undistort_normalized(
        np.concatenate([xd[b] for b in border]), np.concatenate([yd[b] for b in border]), dist
    )
    if not ok.all():
        raise ValueError("the distortion folds over inside the frame; no pinhole canvas covers it")
    u, v = x * intr.fx, y * intr.fy  # relative to the principal point
    left = int(np.ceil(-u.min())) + margin_px
    top = int(np.ceil(-v.min())) + margin_px
    right = int(np.ceil(u.max())) + margin_px
    bottom = int(np.ceil(v.max())) + margin_px
    return Intrinsics(
        fx=intr.fx,
        fy=intr.fy,
        cx=float(left),
        cy=float(top),
        width=left + right + 1,
        height=top + bottom + 1,
    )


def sample_lens(rng: np.random.Generator, wide: bool) -> LensDistortion:
    """A plausible cheap CCTV lens: barrel distortion that is monotonic over the whole plane.

    * k1: wide 2.8–3.6 mm board lenses (~90–110° HFOV) calibrate to about -0.35..-0.12; the
      4–12 mm varifocals of street cameras to about -0.12..-0.02.
    * k2 = c·k1² with c in 0.8..1.4. Real calibrations pair a negative k1 with a positive k2 of
      this size, and k2 > 0.45·k1² is exactly the condition for r(1 + k1 r² + k2 r⁴) to have no
      fold anywhere (its derivative 1 + 3k1 r² + 5k2 r⁴ stays positive, here above 0.44), which
      keeps the inverse unique and ``covering_intrinsics`` bounded.
    * p1, p2: decentring of cheaply mounted lenses, a few 1e-4.

    Coefficients live on normalised coordinates, so they do not depend on the focal length in
    pixels; the field of view enters only through ``wide``.
    """
    k1 = rng.uniform(-0.35, -0.12) if wide else rng.uniform(-0.12, -0.02)
    k2 = rng.uniform(0.8, 1.4) * k1 * k1
    p1, p2 = np.clip(rng.normal(0.0, 5e-4, size=2), -1.5e-3, 1.5e-3)
    return LensDistortion(k1=float(k1), k2=float(k2), p1=float(p1), p2=float(p2))

"""The camera image chain that turns a clean render into footage from a cheap district camera.

A re-identification model trained on clean renders learns cues (exact colours, fine texture,
sharp edges) that street CCTV destroys. The chain follows a real camera's signal path so the
degradations interact as they do in footage:

1. optics: focus blur, motion blur, vignetting (or the IR illuminator's cone and falloff);
2. sensor at the camera's *effective* resolution: shot noise (grows with signal) and read noise;
3. ISP: white balance (the colour cast when it is wrong), exposure gain, tone curve, saturation;
4. encoder: chroma subsampling and JPEG blocking, then the player's upscale to the frame size.

Stages 1–4 run on the frame downscaled to the effective resolution. Cheap DVRs record a low
resolution stream (or a soft, noisy one that their denoiser and encoder treat as such) which the
export upscales, so the blocking and noise grain are coarse like the image detail; it also keeps
the cost proportional to the effective pixel count.

Images are RGB uint8 throughout; every random draw comes from the caller's Generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

import cv2
import numpy as np

Chroma = Literal["4:4:4", "4:2:2", "4:2:0", "4:1:1"]

_JPEG_SAMPLING: dict[str, int] = {
    "4:4:4": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    "4:2:2": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "4:2:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "4:1:1": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411,
}
_CODES = np.arange(256, dtype=np.float64) / 255.0
_LUMA_601 = np.array([0.299, 0.587, 0.114])  # the luma JPEG/YCbCr keeps when chroma is scaled
_MIN_BLUR_SIGMA = 0.3  # below this a Gaussian changes nothing visible at 8 bits
_IR_AMBIENT = 0.08  # street lighting and sky glow the IR-sensitive sensor still sees past the beam

# One uniform byte per pixel through the inverse normal CDF: a 256-level Gaussian, drawn ~10x
# faster than Generator.standard_normal; rescaled to unit variance after the tails are cut.
_Z = np.array([NormalDist().inv_cdf((i + 0.5) / 256.0) for i in range(256)])
_GAUSS_LUT = (_Z / _Z.std()).astype(np.float32)


@dataclass(frozen=True)
class CameraLook:
    """One camera's fixed character. The defaults are a transparent camera (only JPEG at 95).

    Noise is specified on the linear sensor signal (full scale 1): variance
    ``shot_noise * signal + read_noise**2``. ``blur_sigma`` is in output pixels;
    ``vignetting`` is the fraction of light lost at the frame corners; ``resolution`` is the
    effective linear resolution as a fraction of the frame's. ``ir_half_range_m`` is where the IR
    illuminator's light has fallen to half (used only with ``night_ir`` and a depth map).
    """

    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure: float = 1.0
    gamma: float = 1.0
    contrast: float = 1.0
    black_lift: float = 0.0
    saturation: float = 1.0
    shot_noise: float = 0.0
    read_noise: float = 0.0
    vignetting: float = 0.0
    blur_sigma: float = 0.0
    resolution: float = 1.0
    jpeg_quality: int = 95
    chroma: Chroma = "4:2:0"
    night_ir: bool = False
    ir_half_range_m: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.resolution <= 1.0:
            raise ValueError(f"resolution must be in (0, 1], got {self.resolution}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.chroma not in _JPEG_SAMPLING:
            raise ValueError(f"chroma must be one of {sorted(_JPEG_SAMPLING)}, got {self.chroma}")


def sample_camera_look(rng: np.random.Generator, night: bool) -> CameraLook:
    """A random cheap district camera, by day or by night.

    Ranges, from what council/shop CCTV exports look like:

    * colour cast: auto white balance on cheap sensors misses by up to ~15% per channel by day
      (green and magenta casts included); at night warm sodium/LED street light pushes it to
      orange (R up to +35%, B down to -33%).
    * exposure 0.7–1.4x by day (backlit entrances, bright sunny pavements), 1.2–2.5x AGC gain
      in colour night mode, which amplifies the noise with the signal.
    * contrast 0.8–1.1 and black lift up to 6% by day (flare and dirty domes never reach black),
      low contrast at night.
    * saturation 0.55–1.15 by day; 0.3–0.7 in colour night mode (ISPs suppress chroma noise).
    * noise (std in 8-bit codes at black, before gain): 1–4 by day, 5–16 at night, plus shot
      noise that grows with the signal.
    * effective resolution 0.5–1.0 by day (a D1 stream or a soft lens behind a 720p label),
      at most 0.85–0.9 at night where temporal denoising smears detail.
    * JPEG quality 45–90 by day, 35–70 at night: bitrate-capped encoders spend their bits on
      noise.
    * chroma: mostly 4:2:0; 4:1:1 for analogue cameras digitised by a DVR (composite video
      carries about a quarter of the luma bandwidth in colour).
    * night: 75% of cameras switch to IR mode (greyscale, illuminator reaching 10–25 m, soft
      focus: lenses corrected for visible light focus 850 nm behind the sensor).
    """
    chroma = str(rng.choice(["4:2:0", "4:1:1", "4:2:2"], p=[0.7, 0.2, 0.1]))
    if night and rng.random() < 0.75:
        return CameraLook(
            exposure=float(np.exp(rng.uniform(np.log(0.9), np.log(1.8)))),
            gamma=rng.uniform(0.9, 1.3),
            contrast=rng.uniform(0.6, 0.85),
            black_lift=rng.uniform(0.02, 0.08),
            saturation=0.0,
            shot_noise=rng.uniform(1e-3, 3.5e-3),
            read_noise=rng.uniform(1e-3, 3e-3),
            vignetting=rng.uniform(0.2, 0.5),
            blur_sigma=rng.uniform(0.4, 1.2),
            resolution=rng.uniform(0.5, 0.9),
            jpeg_quality=int(rng.integers(40, 71)),
            chroma="4:2:0",
            night_ir=True,
            ir_half_range_m=rng.uniform(10.0, 25.0),
        )
    if night:
        log_gains = (rng.uniform(0.0, 0.3), rng.uniform(-0.05, 0.05), rng.uniform(-0.4, 0.0))
        return CameraLook(
            wb_gains=_gains(log_gains),
            exposure=float(np.exp(rng.uniform(np.log(1.2), np.log(2.5)))),
            gamma=rng.uniform(0.9, 1.2),
            contrast=rng.uniform(0.7, 0.95),
            black_lift=rng.uniform(0.02, 0.08),
            saturation=rng.uniform(0.3, 0.7),
            shot_noise=rng.uniform(1e-3, 4e-3),
            read_noise=rng.uniform(1.5e-3, 4e-3),
            vignetting=rng.uniform(0.1, 0.4),
            blur_sigma=rng.uniform(0.4, 1.2),
            resolution=rng.uniform(0.5, 0.85),
            jpeg_quality=int(rng.integers(35, 71)),
            chroma=chroma,
        )
    log_gains = (rng.uniform(-0.14, 0.14), rng.uniform(-0.04, 0.04), rng.uniform(-0.14, 0.14))
    return CameraLook(
        wb_gains=_gains(log_gains),
        exposure=float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))),
        gamma=rng.uniform(0.85, 1.2),
        contrast=rng.uniform(0.8, 1.1),
        black_lift=rng.uniform(0.0, 0.06),
        saturation=rng.uniform(0.55, 1.15),
        shot_noise=rng.uniform(1e-4, 6e-4),
        read_noise=rng.uniform(3e-4, 1.2e-3),
        vignetting=rng.uniform(0.0, 0.35),
        blur_sigma=rng.uniform(0.2, 1.0),
        resolution=rng.uniform(0.5, 1.0),
        jpeg_quality=int(rng.integers(45, 91)),
        chroma=chroma,
    )


def _gains(log_gains: tuple[float, float, float]) -> tuple[float, float, float]:
    """Channel gains from log-gains: casts are symmetric in ratio, not in difference."""
    r, g, b = (float(np.exp(v)) for v in log_gains)
    return (r, g, b)


def apply_cctv(
    rgb: np.ndarray,
    look: CameraLook,
    rng: np.random.Generator,
    depth: np.ndarray | None = None,
    motion: tuple[float, float] | None = None,
) -> np.ndarray:
    """Pass a rendered RGB uint8 frame through the camera; returns an RGB uint8 frame the same size.

    ``depth`` (metres per pixel; 0, negative, NaN or inf mean sky/background) drives the IR
    illuminator's falloff in ``night_ir`` looks and is ignored otherwise. ``motion`` is the
    blur vector (dx, dy) in output pixels that the frame moves during the exposure (shake, long
    night exposures). Night IR output is greyscale, R = G = B.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    if depth is not None and depth.shape != (height, width):
        raise ValueError(f"depth is {depth.shape}, frame is {(height, width)}")

    size = (max(1, round(width * look.resolution)), max(1, round(height * look.resolution)))
    img = _downscale(rgb, size)
    if look.night_ir:
        img = infrared_from_rgb(img)
    scale = look.resolution  # output pixels -> working pixels
    work_motion = None if motion is None else (motion[0] * scale, motion[1] * scale)
    img = _optics_blur(img, look.blur_sigma * scale, work_motion)

    if look.night_ir and depth is not None:
        small_depth = cv2.resize(
            np.asarray(depth, np.float32), size, interpolation=cv2.INTER_NEAREST
        )
        beam = _illuminator_gain(small_depth, look.ir_half_range_m)
        img = cv2.multiply(img, beam * _vignette(size, look.vignetting, 1), dtype=cv2.CV_8U)
    elif look.vignetting > 0.0:
        channels = 1 if img.ndim == 2 else 3
        img = cv2.multiply(img, _vignette(size, look.vignetting, channels), dtype=cv2.CV_8U)

    img = _sensor_noise(img, look, rng)
    img = cv2.LUT(img, _tone_lut(look))
    if img.ndim == 3 and abs(look.saturation - 1.0) > 1e-3:
        img = cv2.transform(img, _saturation_matrix(look.saturation))
    img = jpeg_roundtrip(img, look.jpeg_quality, look.chroma)
    if size != (width, height):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img


def jpeg_roundtrip(img: np.ndarray, quality: int, chroma: Chroma = "4:2:0") -> np.ndarray:
    """Encode and decode as JPEG: RGB HxWx3 (with ``chroma`` subsampling) or greyscale HxW."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if img.ndim == 2:
        ok, buf = cv2.imencode(".jpg", img, params)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _JPEG_SAMPLING[chroma]]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def infrared_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """Near-infrared (850 nm) brightness of surfaces from their visible colour; HxW uint8.

    Visible colour does not predict NIR reflectance, and the mismatch is what makes IR footage
    hard for re-identification, so the mapping deliberately breaks luminance order:

    * a floor of 25% for black: most textile dyes, black ones included, are transparent in the
      NIR, so dyed fabric reflects like the undyed fibre and black clothes turn mid grey
      (carbon-black pigments stay dark but cannot be told apart from an RGB albedo);
    * per-channel weights R 0.42 > G 0.20 > B 0.13: reflectance spectra that are high in the red
      (skin, red, orange and brown dyes) stay high into the NIR, while green and blue dyes tend to
      absorb towards the far red. A saturated red therefore outshines a saturated green that is
      three times brighter to the eye;
    * a square root of the linear albedo: compressing each channel shrinks the differences
      between saturated colours that an IR sensor cannot see.

    The map is fixed (no randomness) so a garment looks the same in every IR camera, and it is
    separable, so it runs as one lookup table plus a channel sum.
    """
    return cv2.transform(cv2.LUT(rgb, _IR_LUT), np.ones((1, 3), dtype=np.float32))


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def _make_ir_lut() -> np.ndarray:
    weights = np.array([0.42, 0.20, 0.13])
    floor = 1.0 - weights.sum()  # black -> 25%, white -> 100%
    table = floor / 3.0 + np.sqrt(_srgb_to_linear(_CODES))[:, None] * weights
    return np.round(255.0 * table).astype(np.uint8).reshape(256, 1, 3)


_IR_LUT = _make_ir_lut()


def _downscale(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased downscale: Gaussian pyramid halvings, then bilinear for the last factor < 2.

    ``INTER_AREA`` at fractional ratios costs 3–6 ms per 720p frame; this costs under 1 ms.
    """
    img = rgb
    while img.shape[1] >= 2 * size[0] and img.shape[0] >= 2 * size[1]:
        img = cv2.pyrDown(img)
    if (img.shape[1], img.shape[0]) != size:
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    return img


def _optics_blur(img: np.ndarray, sigma: float, motion: tuple[float, float] | None) -> np.ndarray:
    """Defocus (Gaussian of ``sigma``) and linear motion blur, both in working pixels."""
    if sigma >= _MIN_BLUR_SIGMA:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if motion is not None and np.hypot(*motion) >= 0.5:
        img = cv2.filter2D(img, -1, line_kernel(*motion), borderType=cv2.BORDER_REFLECT)
    return img


def line_kernel(dx: float, dy: float) -> np.ndarray:
    """A centred, normalised line segment of vector (dx, dy) with sub-pixel (bilinear) ends."""
    half = int(np.ceil(max(abs(dx), abs(dy)) / 2.0)) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float64)
    t = np.linspace(-0.5, 0.5, int(np.ceil(4.0 * np.hypot(dx, dy))) + 2)
    x, y = half + t * dx, half + t * dy
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for ox, oy, w in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(kernel, (y0 + oy, x0 + ox), w)
    return (kernel / kernel.sum()).astype(np.float32)


@lru_cache(maxsize=32)
def _vignette(size: tuple[int, int], strength: float, channels: int) -> np.ndarray:
    """Radial light falloff 1 - strength·r² (r = 1 at the corners), float32 with ``channels``
    (1 or 3) planes; cached because it is fixed per camera."""
    width, height = size
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32) ** 2
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32) ** 2
    gain = np.float32(1.0) - np.float32(0.5 * strength) * (xs[None, :] + ys[:, None])
    if channels == 3:
        gain = cv2.merge([gain] * 3)
    gain.setflags(write=False)
    return gain


def _illuminator_gain(depth: np.ndarray, half_range_m: float) -> np.ndarray:
    """IR illuminator irradiance 1 / (1 + (d / d_half)²): flat in the near field where the AGC
    holds it, inverse-square beyond; background (no depth) gets only the ambient level."""
    d = np.where(depth > 0.0, depth, np.inf).astype(np.float32)  # NaN > 0 is False
    beam = 1.0 / (1.0 + (d / np.float32(half_range_m)) ** 2)
    return np.float32(_IR_AMBIENT) + np.float32(1.0 - _IR_AMBIENT) * beam


def _sensor_noise(img: np.ndarray, look: CameraLook, rng: np.random.Generator) -> np.ndarray:
    """Shot + read noise, added in 8-bit display space with a per-code standard deviation."""
    if look.shot_noise <= 0.0 and look.read_noise <= 0.0:
        return img
    sigma = cv2.LUT(img, _noise_sigma_lut(look.shot_noise, look.read_noise))
    uniform = np.frombuffer(rng.bytes(img.size), dtype=np.uint8).reshape(img.shape)
    cv2.multiply(sigma, cv2.LUT(uniform, _GAUSS_LUT), dst=sigma)
    return cv2.add(img, sigma, dtype=cv2.CV_8U)


@lru_cache(maxsize=64)
def _noise_sigma_lut(shot: float, read: float) -> np.ndarray:
    """Noise std in display codes for each display code.

    The noise is physical in the linear signal (sqrt(shot·L + read²)); mapping it through the
    slope of the sRGB curve at L gives its size in display codes, which is what makes the
    shadows of gamma-encoded footage so noisy.
    """
    lin = _srgb_to_linear(_CODES)
    slope = np.where(
        lin <= 0.0031308, 12.92, (1.055 / 2.4) * np.maximum(lin, 0.0031308) ** (1 / 2.4 - 1)
    )
    return (255.0 * slope * np.sqrt(shot * lin + read * read)).astype(np.float32)


def _tone_lut(look: CameraLook) -> np.ndarray:
    """The ISP's per-channel curve: WB and exposure gain in linear light, sRGB encoding, then
    the camera's gamma, contrast about mid grey and black lift. (256,1,3), or (256,) for IR."""
    gains = np.ones(1) if look.night_ir else np.asarray(look.wb_gains)
    lin = _srgb_to_linear(_CODES)[:, None] * gains * look.exposure
    v = _linear_to_srgb(lin) ** look.gamma
    v = 0.5 + look.contrast * (v - 0.5)
    v = look.black_lift + (1.0 - look.black_lift) * v
    table = np.clip(np.round(255.0 * v), 0, 255).astype(np.uint8)
    return table[:, 0] if look.night_ir else table.reshape(256, 1, 3)


def _saturation_matrix(saturation: float) -> np.ndarray:
    """Scale chroma about Rec.601 luma, as scaling Cb and Cr in YCbCr does."""
    return (saturation * np.eye(3) + (1.0 - saturation) * _LUMA_601[None, :]).astype(np.float32)

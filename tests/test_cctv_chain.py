"""Specification of the camera image chain: lens distortion and CCTV degradation."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from reunite.synth.cctv import (
    CameraLook,
    apply_cctv,
    infrared_from_rgb,
    jpeg_roundtrip,
    sample_camera_look,
)
from reunite.synth.lens import (
    Intrinsics,
    LensDistortion,
    build_distortion_maps,
    covering_intrinsics,
    distort_image,
    distort_points,
    sample_lens,
)

INTR = Intrinsics(fx=200.0, fy=200.0, cx=159.5, cy=119.5, width=320, height=240)
WIDE = LensDistortion(k1=-0.3, k2=0.09, p1=4e-4, p2=-3e-4)
QUIET = CameraLook()  # a transparent camera: only JPEG at quality 95


def _test_card(height: int = 144, width: int = 256, seed: int = 0) -> np.ndarray:
    """Smooth gradients under random 8x8 colour blocks: both flat areas and JPEG-hard edges."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 216, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    card = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width]
    ramp = np.linspace(-30, 30, width, dtype=np.float32)[None, :, None]
    return np.clip(card + ramp, 0, 255).astype(np.uint8)


def _gaussian_dot(intr: Intrinsics, centre: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    ys, xs = np.mgrid[0 : intr.height, 0 : intr.width].astype(np.float32)
    r2 = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2
    return np.exp(-r2 / (2.0 * sigma * sigma)).astype(np.float32)


def _centroid(img: np.ndarray, near: np.ndarray, radius: int = 8) -> np.ndarray:
    x0, y0 = np.round(near).astype(int) - radius
    window = img[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
    ys, xs = np.mgrid[0 : window.shape[0], 0 : window.shape[1]]
    total = window.sum()
    return np.array([(xs * window).sum() / total + x0, (ys * window).sum() / total + y0])


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


# --- lens -----------------------------------------------------------------------------------


def test_forward_model_is_opencvs():
    pts = np.random.default_rng(0).uniform([0, 0], [INTR.width, INTR.height], size=(50, 2))
    rays = np.c_[(pts - [INTR.cx, INTR.cy]) / [INTR.fx, INTR.fy], np.ones(len(pts))]
    expected, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), INTR.matrix, WIDE.coefficients)
    np.testing.assert_allclose(distort_points(pts, INTR, WIDE), expected[:, 0], atol=1e-6)


@pytest.mark.parametrize("covering", [False, True], ids=["same-canvas", "covering-canvas"])
def test_a_dot_in_the_render_lands_where_distort_points_says(covering: bool):
    src = covering_intrinsics(INTR, WIDE) if covering else INTR
    maps = build_distortion_maps(INTR, WIDE, src=src)
    # Off-axis the lens moves points by several pixels, so maps built in the wrong direction
    # (undistorting instead of distorting) would miss the prediction by twice that.
    offsets = np.array([[-100.0, -70.0], [90.0, -60.0], [-80.0, 75.0], [110.0, 80.0], [5.0, 3.0]])
    for offset in offsets:
        drawn = np.array([src.cx, src.cy]) + offset
        without_lens = np.array([INTR.cx, INTR.cy]) + offset
        predicted = distort_points(drawn[None], INTR, WIDE, src=src)[0]
        seen = _centroid(distort_image(_gaussian_dot(src, drawn), maps), predicted)
        assert np.linalg.norm(seen - predicted) < 1.0
        if np.linalg.norm(offset) > 50:
            assert np.linalg.norm(predicted - without_lens) > 4


def test_nearest_resampling_never_invents_identities():
    ids = np.zeros((INTR.height, INTR.width), dtype=np.int32)
    ids[40:200, 30:150] = 7
    ids[60:230, 120:300] = 123_456
    ids[100:140, 100:220] = 2**30
    out = distort_image(ids, build_distortion_maps(INTR, WIDE), nearest=True)
    assert out.dtype == np.int32
    assert set(np.unique(out)) == {0, 7, 123_456, 2**30}


def test_barrel_lens_sees_past_a_same_size_render_but_not_a_covering_one():
    white = np.full((INTR.height, INTR.width), 255, dtype=np.uint8)
    out = distort_image(white, build_distortion_maps(INTR, WIDE))
    assert out[0, 0] == 0 and out[-1, -1] == 0  # corners have no source: black
    assert out[INTR.height // 2, INTR.width // 2] == 255

    canvas = covering_intrinsics(INTR, WIDE)
    assert canvas.width > INTR.width and canvas.height > INTR.height
    big_white = np.full((canvas.height, canvas.width), 255, dtype=np.uint8)
    out = distort_image(big_white, build_distortion_maps(INTR, WIDE, src=canvas))
    assert out.shape == (INTR.height, INTR.width)
    assert out.min() == 255


def test_sampled_lenses_are_barrel_and_fold_free():
    rng = np.random.default_rng(3)
    for wide in (True, False):
        for _ in range(50):
            lens = sample_lens(rng, wide=wide)
            assert -0.35 <= lens.k1 <= -0.02
            assert lens.k2 > 0.45 * lens.k1**2  # 1 + 3 k1 r² + 5 k2 r⁴ > 0 for every r
            assert max(abs(lens.p1), abs(lens.p2)) <= 1.5e-3
    assert np.mean([sample_lens(rng, wide=True).k1 for _ in range(50)]) < np.mean(
        [sample_lens(rng, wide=False).k1 for _ in range(50)]
    )


# --- CCTV chain -------------------------------------------------------------------------------


def test_same_seed_gives_the_same_frame_and_a_new_seed_new_noise():
    card = _test_card()
    look = sample_camera_look(np.random.default_rng(1), night=True)
    first = apply_cctv(card, look, np.random.default_rng(7))
    again = apply_cctv(card, look, np.random.default_rng(7))
    other = apply_cctv(card, look, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert sample_camera_look(np.random.default_rng(5), night=False) == sample_camera_look(
        np.random.default_rng(5), night=False
    )


@pytest.mark.parametrize("night", [False, True], ids=["day", "night"])
def test_frame_size_and_dtype_are_preserved(night: bool):
    card = _test_card(height=121, width=203)  # odd sizes survive the resolution round trip
    depth = np.full(card.shape[:2], 5.0, dtype=np.float32)
    rng = np.random.default_rng(2)
    for _ in range(6):
        look = sample_camera_look(rng, night=night)
        out = apply_cctv(card, look, rng, depth=depth, motion=(4.0, -2.0))
        assert out.shape == card.shape and out.dtype == np.uint8


def test_night_ir_frames_are_greyscale():
    rng = np.random.default_rng(4)
    looks = [sample_camera_look(rng, night=True) for _ in range(12)]
    ir_looks = [look for look in looks if look.night_ir]
    assert ir_looks, "most night cameras should run in IR mode"
    for look in ir_looks:
        out = apply_cctv(_test_card(), look, rng)
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_day_cameras_never_use_ir():
    rng = np.random.default_rng(6)
    assert not any(sample_camera_look(rng, night=False).night_ir for _ in range(100))


def test_in_infrared_black_and_white_clothes_are_closer_than_in_visible_light():
    pair = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    ir = infrared_from_rgb(pair).astype(float)[0]
    luma = _luma(pair)[0]
    assert ir[0] > 40  # black fabric reads grey, not black
    assert ir[1] - ir[0] < 0.8 * (luma[1] - luma[0])


def test_infrared_breaks_luminance_order():
    red, green = [200, 20, 20], [20, 200, 20]
    patches = np.array([[red, green]], dtype=np.uint8)
    ir = infrared_from_rgb(patches).astype(int)[0]
    luma = _luma(patches)[0]
    assert luma[1] > 2 * luma[0]  # green is much brighter to the eye ...
    assert ir[0] > ir[1]  # ... but red pigment is brighter at 850 nm


def test_ir_illuminator_lights_the_near_field_and_leaves_the_sky_dark():
    grey = np.full((60, 200, 3), 128, dtype=np.uint8)
    depth = np.tile(np.linspace(1.0, 40.0, 200, dtype=np.float32), (60, 1))
    depth[:, 180:] = np.inf  # sky
    depth[:, 170:180] = 0.0  # background marker of the renderer
    look = replace(QUIET, night_ir=True, ir_half_range_m=8.0)
    out = apply_cctv(grey, look, np.random.default_rng(0), depth=depth)[..., 0].astype(float)
    near, mid, far, sky = (
        out[:, 0:10].mean(),
        out[:, 40:50].mean(),
        out[:, 150:160].mean(),
        out[:, 170:].mean(),
    )
    assert near > mid > far > sky
    assert near > 3 * far


def test_a_wrong_white_balance_casts_the_expected_colour():
    card = _test_card()
    neutral = apply_cctv(card, QUIET, np.random.default_rng(0)).reshape(-1, 3).mean(axis=0)
    warm_look = replace(QUIET, wb_gains=(1.3, 1.0, 0.7))
    warm = apply_cctv(card, warm_look, np.random.default_rng(0)).reshape(-1, 3).mean(axis=0)
    assert warm[0] / warm[1] > 1.1 * neutral[0] / neutral[1]
    assert warm[2] / warm[1] < 0.9 * neutral[2] / neutral[1]


def test_the_default_look_is_a_transparent_camera_that_only_encodes():
    card = _test_card()
    out = apply_cctv(card, QUIET, np.random.default_rng(0))
    np.testing.assert_array_equal(out, jpeg_roundtrip(card, 95))
    assert np.abs(jpeg_roundtrip(card, 95, chroma="4:4:4").astype(int) - card).mean() < 1.0


def test_sensor_noise_has_the_specified_size_in_linear_light():
    grey = np.full((128, 128, 3), 128, dtype=np.uint8)
    lossless = replace(QUIET, jpeg_quality=100, chroma="4:4:4")
    signal = ((128 / 255 + 0.055) / 1.055) ** 2.4  # sRGB code 128 in linear light
    codes_per_linear_unit = 255 * (1.055 / 2.4) * signal ** (1 / 2.4 - 1)  # sRGB slope there
    for read, shot in ((0.02, 0.0), (0.0, 0.002)):
        look = replace(lossless, read_noise=read, shot_noise=shot)
        out = apply_cctv(grey, look, np.random.default_rng(0)).astype(float)
        expected = np.sqrt(read**2 + shot * signal) * codes_per_linear_unit
        assert out.std() == pytest.approx(expected, rel=0.15)
        assert out.mean() == pytest.approx(128, abs=0.5)  # noise does not shift exposure


def test_lower_jpeg_quality_loses_more():
    card = _test_card()

    def error(img: np.ndarray) -> float:
        return float(np.abs(img.astype(int) - card).mean())

    assert (
        error(jpeg_roundtrip(card, 30))
        > error(jpeg_roundtrip(card, 60))
        > error(jpeg_roundtrip(card, 90))
    )
    low = apply_cctv(card, replace(QUIET, jpeg_quality=30), np.random.default_rng(0))
    high = apply_cctv(card, replace(QUIET, jpeg_quality=90), np.random.default_rng(0))
    assert error(low) > error(high)


def test_lower_effective_resolution_removes_fine_detail():
    card = _test_card()

    def detail(img: np.ndarray) -> float:
        return float((np.diff(img.astype(float), axis=1) ** 2).mean())

    sharp = apply_cctv(card, QUIET, np.random.default_rng(0))
    soft = apply_cctv(card, replace(QUIET, resolution=0.4), np.random.default_rng(0))
    assert detail(soft) < 0.7 * detail(sharp)


def test_motion_blur_smears_along_the_motion_only():
    bars = np.where(np.arange(96) % 12 < 6, 220, 20).astype(np.uint8)
    across = np.repeat(np.tile(bars, (96, 1))[..., None], 3, axis=2)  # edges across the motion
    along = across.transpose(1, 0, 2).copy()  # edges parallel to the motion

    def edge_energy(img: np.ndarray) -> float:  # blur spreads edges and lowers it
        g = img[..., 1].astype(float)
        return float((np.diff(g, axis=0) ** 2).mean() + (np.diff(g, axis=1) ** 2).mean())

    def blurred(img: np.ndarray) -> np.ndarray:
        return apply_cctv(img, QUIET, np.random.default_rng(0), motion=(9.0, 0.0))

    assert edge_energy(blurred(across)) < 0.3 * edge_energy(across)
    assert edge_energy(blurred(along)) > 0.9 * edge_energy(along)


def test_night_cameras_are_noisier_and_more_compressed_than_day_cameras():
    rng = np.random.default_rng(9)
    day = [sample_camera_look(rng, night=False) for _ in range(200)]
    night = [sample_camera_look(rng, night=True) for _ in range(200)]
    assert np.mean([c.read_noise for c in night]) > 2.5 * np.mean([c.read_noise for c in day])
    assert np.mean([c.jpeg_quality for c in night]) < np.mean([c.jpeg_quality for c in day]) - 10
    assert 0.6 < np.mean([c.night_ir for c in night]) < 0.9

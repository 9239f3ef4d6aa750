"""Garments painted in the body's UV space, and the loose ones inflated along the normals.

All cuts are made on the body *template* (normalised height ``h`` from the feet, 0..1; ``x``
to the right and ``y`` to the front, in body heights; the body part; the coordinate along a
limb). Because every anny body shares one topology, a cut such as "sleeve ends at 35 % of the
arm" lands at the same anatomical place on a child and on a grandmother.
"""

from __future__ import annotations

import numpy as np

from reunite.synth.appearance import Identity, Outfit
from reunite.synth.bodies import (
    PART_ARM,
    PART_FOOT,
    PART_HAND,
    PART_HEAD,
    PART_HIPS,
    PART_LEG,
    PART_NECK,
    PART_TORSO,
)

SKIN, UPPER, LOWER, SHOES, HAIR, INNER, MASK, TIE = range(8)

WAIST_H = 0.585
_UPPER_END = {  # where the top ends, as normalised height (lower = longer)
    "tshirt": 0.545,
    "shirt": 0.55,
    "hoodie": 0.52,
    "jacket": 0.5,
    "coat": 0.47,
    "raincoat": 0.47,
    "cardigan": 0.5,
    "uniform": 0.5,
}
# Loose garments cover the thighs (limb coordinate from hip to ankle).
_UPPER_ON_LEGS = {"coat": 0.5, "raincoat": 0.38}
_OPEN_FRONT = {"jacket", "coat", "cardigan", "uniform"}
_HOODED = {"hoodie", "raincoat"}
_INFLATE_UPPER = {
    "tshirt": 0.006,
    "shirt": 0.008,
    "hoodie": 0.016,
    "jacket": 0.02,
    "coat": 0.03,
    "raincoat": 0.034,
    "cardigan": 0.013,
    "uniform": 0.016,
}
_LEG_LENGTH = {"trousers": 0.975, "shorts": 0.42, "skirt": 0.12}


def garment_layers(
    h: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    part: np.ndarray,
    limb: np.ndarray,
    outfit: Outfit,
    hair_long: bool,
) -> np.ndarray:
    """Label every sample (texel or vertex) with what covers it: SKIN, UPPER, LOWER, ..."""
    up, low = outfit.upper, outfit.lower
    out = np.full(h.shape, SKIN, np.int8)
    torso = (part == PART_TORSO) | (part == PART_HIPS)
    legs = part == PART_LEG
    top_end = _UPPER_END[up.kind]
    sleeve_end = 0.33 if up.sleeve == "short" else 0.96

    out[torso | legs] = LOWER
    out[legs & (limb > _LEG_LENGTH[low.kind])] = SKIN
    if low.kind == "skirt":  # tights under many skirts; the skirt itself is a cone mesh
        out[legs & (limb > 0.12)] = SKIN
    out[torso & (h >= top_end)] = UPPER
    out[(part == PART_ARM) & (limb <= sleeve_end)] = UPPER
    if up.kind in _UPPER_ON_LEGS:
        out[legs & (limb < _UPPER_ON_LEGS[up.kind])] = UPPER
    if up.kind in _HOODED or up.kind in ("coat", "uniform"):
        out[(part == PART_NECK) & (y < 0.03)] = UPPER  # collar or hood around the neck
    if up.kind in _OPEN_FRONT:
        opening = torso & (y > 0.02) & (np.abs(x) < (0.02 if up.kind != "uniform" else 0.028))
        out[opening & (h > top_end + 0.02)] = INNER
        if up.kind == "uniform":
            out[opening & (np.abs(x) < 0.006) & (h > 0.66) & (h < 0.83)] = TIE
    out[(part == PART_FOOT) | (legs & (limb > 0.985))] = SHOES

    head = part == PART_HEAD
    scalp = head & ((h > 0.952) | ((y < 0.0) & (h > 0.9)) | ((y < 0.03) & (h > 0.935)))
    if hair_long:
        scalp |= head & (np.abs(x) > 0.04) & (y < 0.055) & (h > 0.885)
        scalp |= (head | (part == PART_NECK) | torso) & (y < -0.005) & (h > 0.79)
    out[scalp] = HAIR
    if outfit.has("mask"):
        out[head & (y > 0.055) & (h > 0.878) & (h < 0.921) & (np.abs(x) < 0.045)] = MASK
    return out


def _layer_colours(identity: Identity, outfit: Outfit) -> np.ndarray:
    mask_rgb = next((a.rgb for a in outfit.accessories if a.kind == "mask"), (240, 240, 240))
    tie = (150, 30, 40) if outfit.upper.colour != "red" else (30, 40, 90)
    return np.array(
        [
            identity.skin_rgb,
            outfit.upper.rgb,
            outfit.lower.rgb,
            outfit.shoes_rgb,
            identity.hair_rgb,
            outfit.inner_rgb,
            mask_rgb,
            tie,
        ],
        np.float32,
    )


def paint_texture(
    maps: dict[str, np.ndarray], identity: Identity, outfit: Outfit, rng: np.random.Generator
) -> np.ndarray:
    """The person's UV texture (S, S, 3) uint8 RGB: skin, garments with patterns, hair."""
    valid = maps["part"] >= 0
    h = np.nan_to_num(maps["h"])
    x = np.nan_to_num(maps["x"])
    y = np.nan_to_num(maps["y"])
    limb = np.nan_to_num(maps["limb"])
    layers = garment_layers(h, x, y, maps["part"], limb, outfit, identity.hair_long)
    rgb = _layer_colours(identity, outfit)[layers]

    up = outfit.upper
    height = max(identity.height_m, 1.0)
    is_upper = layers == UPPER
    if up.pattern != "solid":
        rgb[is_upper & _pattern_mask(up.pattern, h * height, x * height, y, rng)] = up.pattern_rgb
    if outfit.lower.pattern == "checks":
        sel = (layers == LOWER) & _pattern_mask("checks", h * height, x * height, y, rng)
        rgb[sel] = outfit.lower.pattern_rgb
    # Fabric and skin are never flat: low-frequency shading and fine grain.
    grain = rng.normal(0, 1, h.shape).astype(np.float32)
    rgb *= (1 + 0.04 * grain)[..., None]
    eyes = (maps["part"] == PART_HEAD) & (y > 0.06) & (h > 0.928) & (h < 0.942)
    eyes &= (np.abs(x) > 0.012) & (np.abs(x) < 0.03)
    rgb[eyes & (layers == SKIN)] *= 0.45
    rgb[~valid] = rgb[valid].mean(axis=0)
    tex = np.clip(rgb, 0, 255).astype(np.uint8)
    return _bleed_into_gaps(tex, valid)


def _pattern_mask(
    pattern: str, z_m: np.ndarray, x_m: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Where the secondary colour of a patterned garment shows (coordinates in metres)."""
    period = rng.uniform(0.03, 0.1)
    stripes = np.sin(2 * np.pi * z_m / period) > rng.uniform(-0.3, 0.5)
    if pattern == "stripes":
        return stripes
    if pattern == "checks":
        across = np.sin(2 * np.pi * x_m / period) > 0
        return stripes ^ across
    if pattern == "print":
        field = sum(
            np.sin(rng.uniform(20, 60) * (np.cos(a) * x_m + np.sin(a) * z_m) + rng.uniform(0, 6))
            for a in rng.uniform(0, np.pi, 4)
        )
        return field > 1.2
    # logo: a patch on the chest front, sometimes on the back too
    chest = (np.abs(x_m) < rng.uniform(0.04, 0.09)) & (np.abs(z_m - 0.75 * z_m.max()) < 0.05)
    return chest & ((y > 0.0) | (rng.random() < 0.3))


def _bleed_into_gaps(tex: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Grow colours a few texels past UV island borders so mipmaps do not pull in seams."""
    import cv2

    out = tex.copy()
    filled = valid.copy()
    for _ in range(4):
        grown = cv2.dilate(out, np.ones((3, 3), np.uint8))
        ring = cv2.dilate(filled.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        new = ring & ~filled
        out[new] = grown[new]
        filled = ring
    return out


def vertex_inflation(kit, identity: Identity, outfit: Outfit) -> np.ndarray:
    """Outward offset per anny vertex (metres): loose garments, hoods and hair stand off."""
    t = kit.template_vertices_normalised
    h, x, y = t[:, 2], t[:, 0], t[:, 1]
    layers = garment_layers(h, x, y, kit.vertex_part, kit.vertex_limb_t, outfit, identity.hair_long)
    off = np.zeros(len(h), np.float32)
    off[layers == UPPER] = _INFLATE_UPPER[outfit.upper.kind]
    off[layers == INNER] = 0.006
    off[layers == LOWER] = 0.012 if outfit.lower.kind == "shorts" else 0.008
    off[layers == SHOES] = 0.008
    off[layers == HAIR] = 0.028 if identity.hair_long else 0.012
    if outfit.upper.kind in _HOODED:  # a hood lying on the upper back
        hood = (kit.vertex_part == PART_TORSO) & (y < -0.02) & (h > 0.79)
        off[hood] += 0.035
    off[kit.vertex_part == PART_HAND] = 0.0
    return off


__all__ = ["WAIST_H", "garment_layers", "paint_texture", "vertex_inflation"]

"""Who walks through the world: age, body, and what they wear — the ground truth of 인상착의.

The sampling is deliberately *hard*: colours follow what people really wear (dark tops most of
all), children in school uniforms share one look, many elderly wear dark coats, and every colour
name covers a range of shades so that "navy" and "black" overlap as they do on camera.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

# name -> (Korean label, list of RGB shades). About 12 names, as district 인상착의 search uses.
PALETTE: dict[str, tuple[str, list[tuple[int, int, int]]]] = {
    "black": ("검정", [(22, 22, 24), (35, 33, 36), (28, 30, 38), (45, 42, 40)]),
    "white": ("흰색", [(236, 236, 232), (222, 224, 226), (240, 234, 222)]),
    "grey": ("회색", [(128, 128, 130), (96, 98, 102), (160, 160, 158), (78, 80, 84)]),
    "navy": ("남색", [(28, 36, 72), (38, 46, 88), (30, 34, 56), (44, 52, 96)]),
    "blue": ("파랑", [(40, 90, 180), (70, 120, 200), (96, 140, 190), (30, 70, 150)]),
    "red": ("빨강", [(190, 30, 36), (160, 24, 40), (210, 50, 50), (130, 20, 30)]),
    "pink": ("분홍", [(236, 140, 170), (220, 110, 150), (245, 180, 196)]),
    "yellow": ("노랑", [(240, 200, 40), (250, 220, 70), (226, 180, 30)]),
    "green": ("초록", [(40, 120, 60), (70, 110, 50), (30, 90, 70), (100, 150, 80)]),
    "brown": ("갈색", [(100, 66, 40), (120, 84, 56), (80, 56, 40), (140, 100, 64)]),
    "beige": ("베이지", [(210, 190, 160), (196, 176, 140), (224, 208, 180)]),
    "purple": ("보라", [(100, 60, 140), (80, 50, 110), (130, 90, 170)]),
}
COLOUR_NAMES = list(PALETTE)

UPPER_GARMENTS = ["tshirt", "shirt", "jacket", "coat", "raincoat", "cardigan", "uniform", "hoodie"]
LOWER_GARMENTS = ["trousers", "shorts", "skirt"]
ACCESSORIES = ["backpack", "bag", "hat", "umbrella", "mask", "cane", "walker"]
PATTERNS = ["solid", "stripes", "checks", "print", "logo"]
AGE_GROUPS = ["child", "adult", "elderly"]

# Colour frequencies per garment family: dark tops dominate real street scenes.
_TOP_COLOURS = {
    "black": 0.26,
    "white": 0.12,
    "grey": 0.12,
    "navy": 0.12,
    "blue": 0.07,
    "red": 0.05,
    "pink": 0.04,
    "yellow": 0.03,
    "green": 0.05,
    "brown": 0.05,
    "beige": 0.06,
    "purple": 0.03,
}
_BOTTOM_COLOURS = {
    "black": 0.36,
    "navy": 0.18,
    "grey": 0.14,
    "blue": 0.14,
    "beige": 0.08,
    "brown": 0.05,
    "white": 0.03,
    "green": 0.01,
    "red": 0.005,
    "pink": 0.005,
    "yellow": 0.0,
    "purple": 0.0,
}
_ELDER_COAT_COLOURS = {"black": 0.3, "grey": 0.2, "brown": 0.2, "navy": 0.15, "beige": 0.15}
_RAINCOAT_COLOURS = {
    "yellow": 0.5,
    "red": 0.1,
    "blue": 0.15,
    "pink": 0.1,
    "green": 0.1,
    "navy": 0.05,
}
_SCHOOL_UNIFORMS = [  # (blazer, trousers/skirt): a few schools' looks shared by many children
    ("navy", "grey"),
    ("navy", "navy"),
    ("green", "grey"),
    ("black", "black"),
    ("red", "navy"),
]


@dataclass
class Garment:
    kind: str
    colour: str
    rgb: tuple[int, int, int]
    pattern: str = "solid"
    pattern_rgb: tuple[int, int, int] = (255, 255, 255)
    sleeve: str = "long"  # upper garments: short | long; lower: length is implied by kind

    @property
    def colour_ko(self) -> str:
        return PALETTE[self.colour][0]


@dataclass
class Accessory:
    kind: str
    colour: str
    rgb: tuple[int, int, int]


@dataclass
class Outfit:
    upper: Garment
    lower: Garment
    inner_rgb: tuple[int, int, int]  # seen where a jacket, coat or cardigan is open at the front
    shoes_rgb: tuple[int, int, int]
    accessories: list[Accessory] = field(default_factory=list)

    def has(self, kind: str) -> bool:
        return any(a.kind == kind for a in self.accessories)


@dataclass
class Identity:
    """One person of the world and the exact ground truth a description search is judged on."""

    id: int
    age_group: str
    age_years: int
    gender: str  # female | male
    height_m: float
    phenotype: dict[str, float]
    skin_rgb: tuple[int, int, int]
    hair_rgb: tuple[int, int, int]
    hair_long: bool
    outfit: Outfit
    gait: dict[str, float]
    walking_speed: float  # m/s

    def to_json(self) -> dict:
        data = asdict(self)
        o = self.outfit
        data["clothing"] = {
            "upper": {
                "type": o.upper.kind,
                "colour": o.upper.colour,
                "colour_ko": o.upper.colour_ko,
                "pattern": o.upper.pattern,
                "sleeve": o.upper.sleeve,
            },
            "lower": {
                "type": o.lower.kind,
                "colour": o.lower.colour,
                "colour_ko": o.lower.colour_ko,
                "pattern": o.lower.pattern,
            },
        }
        data["accessories"] = [{"type": a.kind, "colour": a.colour} for a in o.accessories]
        return data


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def shade(rng: np.random.Generator, colour: str) -> tuple[int, int, int]:
    """One concrete shade of a colour name, jittered like fabric under different dyes."""
    shades = PALETTE[colour][1]
    base = np.array(shades[int(rng.integers(len(shades)))], float)
    jitter = rng.normal(0, 7, 3) + rng.normal(0, 6)
    return tuple(int(v) for v in np.clip(base + jitter, 0, 255))


_SKIN_TONES = [
    (236, 200, 172),
    (224, 180, 150),
    (200, 150, 116),
    (170, 120, 90),
    (130, 88, 62),
    (96, 64, 46),
    (244, 214, 190),
]
_HAIR = [(20, 18, 18), (40, 30, 24), (70, 50, 34), (110, 80, 50), (170, 140, 90), (60, 40, 30)]
_GREY_HAIR = [(170, 170, 168), (200, 200, 196), (130, 128, 126), (220, 218, 214)]


def sample_identity(rng: np.random.Generator, pid: int, age_group: str | None = None) -> Identity:
    """Sample a person. Children ~4–12 years, adults 18–64, elderly 65–90."""
    group = age_group or _pick(rng, {"child": 0.22, "adult": 0.56, "elderly": 0.22})
    female = bool(rng.random() < 0.5)
    if group == "child":
        age = int(rng.integers(4, 13))
        # anny's age axis: 0.2 ≈ 1.11 m, 0.3 ≈ 1.34 m (measured); map 4–12 years onto 0.17–0.33.
        age_param = 0.17 + (age - 4) / 8 * 0.16 + rng.normal(0, 0.01)
        height_param = float(np.clip(rng.normal(0.5, 0.12), 0.2, 0.8))
    elif group == "adult":
        age = int(rng.integers(18, 65))
        age_param = 0.5 + (age - 18) / 47 * 0.25
        height_param = float(np.clip(rng.normal(0.42, 0.12), 0.1, 0.8))
    else:
        age = int(rng.integers(65, 91))
        age_param = 0.8 + (age - 65) / 25 * 0.2
        height_param = float(np.clip(rng.normal(0.3, 0.15), 0.05, 0.8))  # elders are shorter
    phenotype = {
        "gender": float(np.clip(rng.normal(0.15 if female else 0.85, 0.1), 0, 1)),
        "age": float(np.clip(age_param, 0.12, 1.0)),
        "muscle": float(np.clip(rng.normal(0.5, 0.12), 0.1, 0.9)),
        "weight": float(np.clip(rng.normal(0.5, 0.15), 0.15, 0.95)),
        "height": height_param,
        "proportions": float(np.clip(rng.normal(0.5, 0.1), 0.2, 0.8)),
    }
    height = _sample_height(rng, group, age, female)
    skin = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
    if group == "elderly" and rng.random() < 0.8:
        hair = _GREY_HAIR[int(rng.integers(len(_GREY_HAIR)))]
    else:
        hair = _HAIR[int(rng.integers(len(_HAIR)))]
    hair_long = bool(rng.random() < (0.7 if female else 0.06))
    outfit = sample_outfit(rng, group)
    gait = _sample_gait(rng, group, outfit)
    speed = {"child": (1.15, 0.2), "adult": (1.35, 0.15), "elderly": (0.8, 0.15)}[group]
    if outfit.has("walker") or outfit.has("cane"):
        speed = (0.6, 0.1)
    return Identity(
        id=pid,
        age_group=group,
        age_years=age,
        gender="female" if female else "male",
        height_m=height,
        phenotype=phenotype,
        skin_rgb=skin,
        hair_rgb=hair,
        hair_long=hair_long,
        outfit=outfit,
        gait=gait,
        walking_speed=float(np.clip(rng.normal(*speed), 0.4, 1.9)),
    )


def _sample_height(rng: np.random.Generator, group: str, age: int, female: bool) -> float:
    """Standing height in metres (Korean growth charts and adult surveys, rounded)."""
    if group == "child":  # about 1.03 m at 4 years to 1.52 m at 12, sd ~5 cm
        mean, sd = 1.03 + (age - 4) * 0.061, 0.05
    elif group == "adult":
        mean, sd = (1.60, 0.055) if female else (1.73, 0.06)
    else:
        mean, sd = (1.51, 0.05) if female else (1.65, 0.055)
    return round(float(np.clip(rng.normal(mean, sd), mean - 3 * sd, mean + 3 * sd)), 3)


def sample_outfit(rng: np.random.Generator, group: str) -> Outfit:
    """Clothes for one day. Called again for a family photo: other clothes, same person."""
    rainy = rng.random() < 0.1
    if group == "child" and rng.random() < 0.4:
        blazer, bottom = _SCHOOL_UNIFORMS[int(rng.integers(len(_SCHOOL_UNIFORMS)))]
        upper = Garment("uniform", blazer, shade(rng, blazer))
        lower_kind = "skirt" if rng.random() < 0.4 else "trousers"
        lower = Garment(lower_kind, bottom, shade(rng, bottom))
        inner = shade(rng, "white")
    else:
        if rainy or (group == "child" and rng.random() < 0.12):
            kind, colour = "raincoat", _pick(rng, _RAINCOAT_COLOURS)
        elif group == "elderly" and rng.random() < 0.55:
            kind = "coat" if rng.random() < 0.6 else "cardigan"
            colour = _pick(rng, _ELDER_COAT_COLOURS)
        else:
            kind = _pick(
                rng,
                {
                    "tshirt": 0.3,
                    "shirt": 0.15,
                    "jacket": 0.2,
                    "coat": 0.1,
                    "cardigan": 0.07,
                    "hoodie": 0.18,
                },
            )
            colour = _pick(rng, _TOP_COLOURS)
        sleeve = "short" if kind in ("tshirt", "shirt") and rng.random() < 0.45 else "long"
        upper = Garment(kind, colour, shade(rng, colour), sleeve=sleeve)
        if kind in ("tshirt", "hoodie", "shirt") or rng.random() < 0.3:
            upper.pattern = _pick(
                rng, {"solid": 0.55, "stripes": 0.15, "checks": 0.08, "print": 0.1, "logo": 0.12}
            )
            upper.pattern_rgb = shade(rng, _pick(rng, _TOP_COLOURS))
        lower_kind = _pick(rng, {"trousers": 0.74, "shorts": 0.12, "skirt": 0.14})
        lower_colour = _pick(rng, _BOTTOM_COLOURS)
        lower = Garment(lower_kind, lower_colour, shade(rng, lower_colour))
        if lower_kind == "skirt" and rng.random() < 0.2:
            lower.pattern, lower.pattern_rgb = "checks", shade(rng, "grey")
        inner = shade(rng, _pick(rng, _TOP_COLOURS))
    shoes = shade(rng, _pick(rng, {"black": 0.45, "white": 0.3, "grey": 0.1, "brown": 0.15}))
    accessories = _sample_accessories(rng, group, rainy)
    return Outfit(upper, lower, inner, shoes, accessories)


def _sample_accessories(rng: np.random.Generator, group: str, rainy: bool) -> list[Accessory]:
    p = {
        "child": {"backpack": 0.55, "bag": 0.05, "hat": 0.2, "umbrella": 0.04, "mask": 0.15},
        "adult": {"backpack": 0.25, "bag": 0.3, "hat": 0.12, "umbrella": 0.04, "mask": 0.15},
        "elderly": {"bag": 0.25, "hat": 0.35, "mask": 0.25, "cane": 0.22, "walker": 0.08},
    }[group]
    kinds = [k for k, pk in p.items() if rng.random() < pk]
    if rainy and "umbrella" not in kinds and group != "elderly":
        kinds.append("umbrella")
    if "walker" in kinds and "cane" in kinds:
        kinds.remove("cane")
    if "umbrella" in kinds and ("cane" in kinds or "walker" in kinds):
        kinds.remove("umbrella")
    out = []
    for k in kinds:
        if k == "mask":
            colour = _pick(rng, {"white": 0.5, "black": 0.35, "blue": 0.15})
        elif k in ("cane", "walker"):
            colour = _pick(rng, {"black": 0.4, "grey": 0.4, "brown": 0.2})
        else:
            colour = _pick(rng, _TOP_COLOURS)
        out.append(Accessory(k, colour, shade(rng, colour)))
    return out


def _sample_gait(rng: np.random.Generator, group: str, outfit: Outfit) -> dict[str, float]:
    """Walk-cycle parameters in degrees; the elderly stoop and take short steps."""
    if group == "elderly":
        g = {
            "hip": rng.uniform(12, 20),
            "knee": rng.uniform(30, 45),
            "arm": rng.uniform(4, 12),
            "stoop": rng.uniform(6, 24),
            "elbow": rng.uniform(10, 25),
            "cycle": 0.55,
        }
    elif group == "child":
        g = {
            "hip": rng.uniform(22, 30),
            "knee": rng.uniform(45, 60),
            "arm": rng.uniform(15, 30),
            "stoop": rng.uniform(-2, 3),
            "elbow": rng.uniform(10, 30),
            "cycle": 0.72,
        }
    else:
        g = {
            "hip": rng.uniform(18, 27),
            "knee": rng.uniform(40, 58),
            "arm": rng.uniform(8, 24),
            "stoop": rng.uniform(-2, 6),
            "elbow": rng.uniform(8, 25),
            "cycle": 0.78,
        }
    if outfit.has("walker"):
        g["stoop"] = max(g["stoop"], 15.0)
    return {k: float(v) for k, v in g.items()}

"""The fixed 인상착의 vocabulary: what an appearance description can name and a model predicts.

District CCTV search systems describe a person by a handful of closed fields — age group, the
colour and kind of the top and the bottom, sleeve length, carried things — with colours from a
small named palette, because that is what a caller can tell and an operator can check on a
thumbnail. The names here are the synthetic world's (``reunite.synth.appearance``), so its ground
truth maps onto them one to one; a test keeps the two in step.

Exclusive fields (one value each) get a probability distribution; accessories are independent
yes/no questions. ``bag_colour`` is the colour of the backpack or bag, defined only for people who
carry one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# name -> Korean label; the order is the models' output order and must never change silently.
COLOURS: dict[str, str] = {
    "black": "검정",
    "white": "흰색",
    "grey": "회색",
    "navy": "남색",
    "blue": "파랑",
    "red": "빨강",
    "pink": "분홍",
    "yellow": "노랑",
    "green": "초록",
    "brown": "갈색",
    "beige": "베이지",
    "purple": "보라",
}
UPPER_TYPES: dict[str, str] = {
    "tshirt": "티셔츠",
    "shirt": "셔츠",
    "jacket": "재킷",
    "coat": "코트",
    "raincoat": "우비",
    "cardigan": "가디건",
    "uniform": "교복",
    "hoodie": "후드티",
}
LOWER_TYPES: dict[str, str] = {"trousers": "바지", "shorts": "반바지", "skirt": "치마"}
SLEEVES: dict[str, str] = {"short": "반팔", "long": "긴팔"}
AGE_GROUPS: dict[str, str] = {"child": "아동", "adult": "성인", "elderly": "노인"}
GENDERS: dict[str, str] = {"female": "여성", "male": "남성"}
ACCESSORIES: dict[str, str] = {
    "backpack": "배낭",
    "bag": "가방",
    "hat": "모자",
    "umbrella": "우산",
    "mask": "마스크",
    "cane": "지팡이",
    "walker": "보행기",
}

FIELDS: dict[str, dict[str, str]] = {
    "age_group": AGE_GROUPS,
    "gender": GENDERS,
    "upper_colour": COLOURS,
    "upper_type": UPPER_TYPES,
    "sleeve": SLEEVES,
    "lower_colour": COLOURS,
    "lower_type": LOWER_TYPES,
    "bag_colour": COLOURS,
}
"""Exclusive fields, in the models' head order, each with its values in output order."""

FIELD_LABELS_KO: dict[str, str] = {
    "age_group": "연령대",
    "gender": "성별",
    "upper_colour": "상의 색",
    "upper_type": "상의 종류",
    "sleeve": "소매",
    "lower_colour": "하의 색",
    "lower_type": "하의 종류",
    "bag_colour": "가방 색",
    "accessories": "소지품",
}

NEIGHBOUR_COLOURS: dict[str, tuple[str, ...]] = {
    "black": ("navy", "grey"),
    "white": ("grey", "beige"),
    "grey": ("black", "white"),
    "navy": ("black", "blue"),
    "blue": ("navy", "purple"),
    "red": ("pink", "brown"),
    "pink": ("red", "purple"),
    "yellow": ("beige",),
    "green": ("navy", "grey"),
    "brown": ("beige", "black"),
    "beige": ("brown", "white"),
    "purple": ("navy", "pink"),
}
"""Colours a witness or a camera confuses (dark blue is "black" at dusk, beige is "brown" in
shade): used to make realistic noisy queries, and shown to operators as near alternatives."""


def values(field: str) -> list[str]:
    return list(FIELDS[field])


def korean(field: str, value: str) -> str:
    """The Korean label of a field's value (an accessory when ``field`` is ``accessories``)."""
    table = ACCESSORIES if field == "accessories" else FIELDS[field]
    return table[value]


@dataclass(frozen=True)
class Labels:
    """One person's true attributes in the vocabulary (None: not defined for this person)."""

    exclusive: dict[str, str | None]
    accessories: frozenset[str]

    def as_dict(self) -> dict[str, Any]:
        return {**self.exclusive, "accessories": sorted(self.accessories)}


def labels_from_identity(entry: Mapping[str, Any]) -> Labels:
    """Labels from a synthetic identity as ``identities.json`` records it (district or re-ID set):
    ``age_group``, ``gender``, ``clothing.upper/lower`` (type, colour, sleeve), ``accessories``."""
    upper, lower = entry["clothing"]["upper"], entry["clothing"]["lower"]
    kinds = {a["type"]: a.get("colour") for a in entry.get("accessories", [])}
    bag = kinds.get("backpack") or kinds.get("bag")
    exclusive = {
        "age_group": entry["age_group"],
        "gender": entry.get("gender"),
        "upper_colour": upper["colour"],
        "upper_type": upper["type"],
        "sleeve": upper.get("sleeve"),
        "lower_colour": lower["colour"],
        "lower_type": lower["type"],
        "bag_colour": bag,
    }
    for field, value in exclusive.items():
        if value is not None and value not in FIELDS[field]:
            raise ValueError(f"{field} value {value!r} is not in the vocabulary")
    unknown = set(kinds) - set(ACCESSORIES)
    if unknown:
        raise ValueError(f"accessories {sorted(unknown)} are not in the vocabulary")
    return Labels(exclusive, frozenset(kinds))

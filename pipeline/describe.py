"""Free-text appearance descriptions (인상착의), Korean or English, into a ``Description``.

A caller says "노란 우비, 남색 바지, 분홍 가방" or "a boy about 8, yellow raincoat, navy trousers,
pink backpack"; the operator must see at once what was understood, so the parser is a fixed
vocabulary with synonyms (no language model) and reports every word it did not use. Rules:

* a colour names the next garment or bag in the same clause ("red and blue top": both colours;
  "우비는 노란색": a colour with no noun after it goes to the last noun before it);
* Korean particles and verb endings after a known word are skipped ("노란색 우비를 입은");
  words are also found inside a token written without spaces ("노란우비");
* ages in years or decades map to age groups ("8살", "about 8", "70대", "in her 70s");
* contradictions (two age groups, both genders, short and long sleeves) are errors; an empty
  description or one in which nothing is understood is an error, never an empty search.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, field_validator

from reunite.errors import ReuniteError
from reunite.models.attributes import ACCESSORIES, FIELDS, korean

MAX_DESCRIPTION_CHARS = 500


class DescriptionError(ReuniteError):
    """The description cannot be searched: empty, not understood, or contradicting itself."""


LIST_FIELDS = ("upper_colour", "upper_type", "lower_colour", "lower_type", "bag_colour")
SINGLE_FIELDS = ("age_group", "gender", "sleeve")


class Description(BaseModel):
    """What a description asks for; every field optional. List fields mean "any of these"
    (a red-and-blue top matches either colour); ``accessories`` must all be present."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    age_group: str | None = None
    gender: str | None = None
    upper_colour: list[str] = []
    upper_type: list[str] = []
    sleeve: str | None = None
    lower_colour: list[str] = []
    lower_type: list[str] = []
    bag_colour: list[str] = []
    accessories: list[str] = []
    any_bag: bool = False
    """A bag of some kind, backpack or not ("가방", "bag": callers rarely tell them apart)."""
    ignored: list[str] = []
    """Words of the text that were not understood (shown to the operator)."""
    notes: list[str] = []
    """Things understood but not searched (a hat's colour, a negation)."""
    text: str = ""

    @field_validator(*SINGLE_FIELDS)
    @classmethod
    def _known_single(cls, value: str | None, info) -> str | None:
        if value is not None and value not in FIELDS[info.field_name]:
            known = ", ".join(FIELDS[info.field_name])
            raise ValueError(f"{value!r} is not a {info.field_name} (known: {known})")
        return value

    @field_validator(*LIST_FIELDS)
    @classmethod
    def _known_list(cls, value: list[str], info) -> list[str]:
        for v in value:
            if v not in FIELDS[info.field_name]:
                known = ", ".join(FIELDS[info.field_name])
                raise ValueError(f"{v!r} is not a {info.field_name} (known: {known})")
        return list(dict.fromkeys(value))

    @field_validator("accessories")
    @classmethod
    def _known_accessories(cls, value: list[str]) -> list[str]:
        for v in value:
            if v not in ACCESSORIES:
                raise ValueError(f"{v!r} is not an accessory (known: {', '.join(ACCESSORIES)})")
        return list(dict.fromkeys(value))

    def constraints(self) -> dict[str, list[str]]:
        """Exclusive field -> accepted values, for every field the description sets."""
        out: dict[str, list[str]] = {}
        for name in SINGLE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = [value]
        for name in LIST_FIELDS:
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        return out

    @property
    def is_empty(self) -> bool:
        return not self.constraints() and not self.accessories and not self.any_bag

    def summary(self, language: str = "en") -> str:
        """One line an operator can check against what the caller said."""
        ko = language == "ko"

        def name(f: str, v: str) -> str:
            return korean(f, v) if ko else v

        parts = []
        if self.age_group:
            parts.append(name("age_group", self.age_group))
        if self.gender:
            parts.append(name("gender", self.gender))
        top = " ".join(
            [
                "/".join(name("upper_colour", c) for c in self.upper_colour),
                name("sleeve", self.sleeve) if self.sleeve else "",
                "/".join(name("upper_type", t) for t in self.upper_type),
            ]
        ).strip()
        if top:
            parts.append(("상의 " if ko else "top: ") + " ".join(top.split()))
        bottom = " ".join(
            [
                "/".join(name("lower_colour", c) for c in self.lower_colour),
                "/".join(name("lower_type", t) for t in self.lower_type),
            ]
        ).strip()
        if bottom:
            parts.append(("하의 " if ko else "bottom: ") + " ".join(bottom.split()))
        for a in self.accessories:
            colour = (
                "/".join(name("bag_colour", c) for c in self.bag_colour)
                if a in ("backpack", "bag")
                else ""
            )
            label = korean("accessories", a) if ko else a
            parts.append(f"{colour} {label}".strip())
        if self.any_bag:
            colour = "/".join(name("bag_colour", c) for c in self.bag_colour)
            label = "가방(종류 무관)" if ko else "bag (any kind)"
            parts.append(f"{colour} {label}".strip())
        return " · ".join(parts) if parts else ("(없음)" if ko else "(nothing)")


# -- the lexicon ---------------------------------------------------------------------------------
# Each phrase maps to facts: ("colour", names...), ("upper"|"lower"|"bag"|"thing", value or ""),
# ("age", group), ("gender", g), ("sleeve", s). Nouns take the pending colours.

Fact = tuple[str, ...]


def _c(*names: str) -> list[Fact]:
    return [("colour", *names)]


_COLOUR_WORDS: dict[str, list[Fact]] = {}
for _names, _words in [
    (("black",), "black 검정 검정색 검은 검은색 까만 까만색 까망 블랙 흑색"),
    (("white",), "white 흰 흰색 하얀 하얀색 하양 화이트 백색"),
    (("grey",), "grey gray silver 회색 회색빛 그레이 은색 쥐색"),
    (("navy",), "navy 남색 곤색 네이비 감색 진파랑 진파란"),
    (("blue",), "blue 파랑 파란 파란색 파랑색 청색 블루 하늘색 하늘 푸른"),
    (("red",), "red burgundy maroon crimson 빨강 빨간 빨간색 빨강색 붉은 붉은색 적색 레드 자주"),
    (("pink",), "pink 분홍 분홍색 핑크 연분홍"),
    (("yellow",), "yellow gold 노랑 노란 노란색 노랑색 황색 옐로우 옐로 금색"),
    (("green",), "green olive 초록 초록색 녹색 연두 연두색 그린 카키색"),
    (("brown",), "brown chocolate 갈색 밤색 브라운 고동색"),
    (("beige",), "beige tan 베이지 베이지색 살구색"),
    (("purple",), "purple violet lilac 보라 보라색 퍼플 자주색"),
    (("red", "yellow"), "orange 주황 주황색 오렌지"),
    (("beige", "green"), "khaki 카키"),
    (("white", "beige"), "cream ivory 아이보리 크림색"),
    (("grey", "black"), "charcoal 차콜 진회색"),
]:
    for _w in _words.split():
        _COLOUR_WORDS[_w] = _c(*_names)
for _phrase, _names in {
    "dark blue": ("navy",),
    "navy blue": ("navy",),
    "light blue": ("blue",),
    "sky blue": ("blue",),
    "dark red": ("red",),
    "dark green": ("green",),
    "dark grey": ("grey", "black"),
    "dark gray": ("grey", "black"),
    "light grey": ("grey", "white"),
    "light gray": ("grey", "white"),
    "light brown": ("brown", "beige"),
    "dark brown": ("brown",),
    "off white": ("white", "beige"),
}.items():
    _COLOUR_WORDS[_phrase] = _c(*_names)


def _word_list(text: str) -> list[str]:
    return text.split()


def _words(kind: str, value: str, words: str) -> dict[str, list[Fact]]:
    return {w.replace("_", " "): [(kind, value)] for w in words.split()}


LEXICON: dict[str, list[Fact]] = {
    **_COLOUR_WORDS,
    # tops
    **_words("upper", "tshirt", "t_shirt tshirt tee teeshirt 티셔츠 티 티셔트 반팔티셔츠"),
    **_words("upper", "shirt", "shirt blouse polo 셔츠 남방 블라우스 와이셔츠 폴로"),
    **_words(
        "upper",
        "jacket",
        "jacket windbreaker puffer anorak padded_jacket 재킷 자켓 점퍼 잠바 패딩 바람막이",
    ),
    **_words("upper", "coat", "coat overcoat parka trench_coat 코트 외투 롱코트"),
    **_words(
        "upper", "raincoat", "raincoat rain_coat rain_jacket poncho mac 우비 비옷 레인코트 우의"
    ),
    **_words("upper", "cardigan", "cardigan 가디건 카디건"),
    **_words("upper", "uniform", "uniform school_uniform blazer 교복 유니폼 블레이저"),
    **_words("upper", "hoodie", "hoodie hoody hooded_top hooded_sweatshirt 후드티 후드 후드집업"),
    **_words(
        "upper", "", "top tops sweater jumper pullover sweatshirt 상의 윗옷 웃옷 스웨터 맨투맨"
    ),
    # bottoms
    **_words("lower", "trousers", "trousers pants slacks leggings 바지 긴바지 슬랙스 레깅스"),
    **_words("lower", "shorts", "shorts short_pants 반바지"),
    **_words("lower", "skirt", "skirt 치마 스커트"),
    **_words("lower", "", "bottoms bottom 하의 아래옷"),
    "jeans": [("default_colour", "blue"), ("lower", "trousers")],
    "청바지": [("colour", "blue"), ("lower", "trousers")],
    "dress": [("dress",)],
    "원피스": [("dress",)],
    # sleeves (may come before a top: "반팔 티셔츠", "short-sleeved shirt")
    **_words("sleeve", "short", "short_sleeved short_sleeve short_sleeves sleeveless 반팔 민소매"),
    **_words("sleeve", "long", "long_sleeved long_sleeve long_sleeves 긴팔"),
    "반팔티": [("sleeve", "short"), ("upper", "tshirt")],
    "긴팔티": [("sleeve", "long"), ("upper", "tshirt")],
    # carried and worn things
    **_words("bag", "backpack", "backpack rucksack schoolbag school_bag knapsack 배낭 백팩 책가방"),
    **_words("bag", "bag", "handbag shoulder_bag tote purse 핸드백 손가방 숄더백 크로스백 쇼핑백"),
    **_words("bag", "any", "bag bags 가방"),
    **_words("thing", "hat", "hat cap beanie 모자 캡 비니 벙거지"),
    **_words("thing", "umbrella", "umbrella parasol 우산 양산"),
    **_words("thing", "mask", "mask face_mask 마스크"),
    **_words("thing", "cane", "cane walking_stick stick crutch 지팡이 목발"),
    **_words(
        "thing", "walker", "walker walking_frame zimmer_frame rollator 보행기 보행보조기 실버카"
    ),
    # who
    **_words(
        "age",
        "child",
        "child kid kids toddler pupil student schoolchild 아이 어린이 아동 꼬마 "
        "유아 학생 초등학생 미취학아동 어린아이",
    ),
    **_words(
        "age",
        "elderly",
        "elderly old senior pensioner aged_person 노인 어르신 노인분 고령자 치매노인 노약자",
    ),
    **_words("age", "adult", "adult grown_up 성인 어른 청년 중년"),
    **_words("gender", "male", "male man men gentleman 남자 남성 남"),
    **_words("gender", "female", "female woman women lady 여자 여성 여"),
    "boy": [("age", "child"), ("gender", "male")],
    "girl": [("age", "child"), ("gender", "female")],
    "schoolboy": [("age", "child"), ("gender", "male")],
    "schoolgirl": [("age", "child"), ("gender", "female")],
    "old man": [("age", "elderly"), ("gender", "male")],
    "old woman": [("age", "elderly"), ("gender", "female")],
    "old lady": [("age", "elderly"), ("gender", "female")],
    "grandmother": [("age", "elderly"), ("gender", "female")],
    "grandma": [("age", "elderly"), ("gender", "female")],
    "granny": [("age", "elderly"), ("gender", "female")],
    "grandfather": [("age", "elderly"), ("gender", "male")],
    "grandpa": [("age", "elderly"), ("gender", "male")],
    "할머니": [("age", "elderly"), ("gender", "female")],
    "할아버지": [("age", "elderly"), ("gender", "male")],
    "노파": [("age", "elderly"), ("gender", "female")],
    "남자아이": [("age", "child"), ("gender", "male")],
    "남자애": [("age", "child"), ("gender", "male")],
    "남아": [("age", "child"), ("gender", "male")],
    "소년": [("age", "child"), ("gender", "male")],
    "여자아이": [("age", "child"), ("gender", "female")],
    "여자애": [("age", "child"), ("gender", "female")],
    "여아": [("age", "child"), ("gender", "female")],
    "소녀": [("age", "child"), ("gender", "female")],
    "아저씨": [("age", "adult"), ("gender", "male")],
    "아주머니": [("age", "adult"), ("gender", "female")],
    "아줌마": [("age", "adult"), ("gender", "female")],
    "no": [("negate",)],
    "without": [("negate",)],
    "not": [("negate",)],
    "없음": [("negate_before",)],
    "없이": [("negate_before",)],
    "없고": [("negate_before",)],
    "없는": [("negate_before",)],
    "안": [("negate_before",)],
}

FILLERS = set(
    _word_list(
        """a an the and or with wearing wears wore worn dressed in on of carrying carries carried
    holding holds held has had have using uses used walking walks walked was is were who last
    seen about around approximately approx aged age years year old yrs yo his her their he she
    person someone looks like maybe probably possibly colour color coloured colored clothes
    clothing also plus & + / - wearing, looked appeared has, is, light dark bright pale
    그리고 및 또는 입은 입고 입었음 입었고 입었다 입음 착용 착용한 착용하고 착용함 들고 든 메고 멘
    맨 쓰고 쓴 씀 끼고 낀 신고 신은 짚고 짚은 짚음 끌고 끈 있는 있음 있고 정도 약 쯤 가량 추정
    보이는 보임 색 색깔 계열 옷 차림 복장 사람 명 분 상태 착 밝은 어두운 진한 연한 진 연 에 와
    과 랑 하고 이랑 이고 이며 임 했음 한"""
    )
)
PARTICLES = sorted(
    _word_list(
        "을 를 이 가 은 는 의 에 와 과 랑 이랑 하고 에서 으로 로 도 만 께서 이고 이며 임 인 에는 "
        "으로는 이나 나 쯤 정도 색 색의 색을 색이 색인 계열 옷 차림"
    ),
    key=len,
    reverse=True,
)
_AGE = re.compile(
    r"(?:(?:about|around|approximately|approx\.?|aged?|roughly|~)\s*)?"
    r"(\d{1,3})\s*(?:(살|세|years?\s*old|years?|yrs?|yo|y/o)|(대|'?s\b))"
    r"|(?:about|around|approximately|aged?|roughly|~)\s*(\d{1,2})\b",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"[,;.\n·]+|\s+(?:and then|then)\s+")
_MAX_PHRASE_WORDS = 3


def _age_group(years: int) -> str:
    return "child" if years < 18 else "adult" if years < 65 else "elderly"


@dataclass
class _Clause:
    pending: list[str] = field(default_factory=list)  # colours waiting for a noun
    last_noun: tuple[str, str] | None = None
    default: str | None = None


@dataclass
class _State:
    single: dict[str, list[str]] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    accessories: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    negate_next: bool = False
    any_bag: bool = False
    last_noun: tuple[str, str] | None = None

    def set_single(self, name: str, value: str) -> None:
        self.single.setdefault(name, [])
        if value not in self.single[name]:
            self.single[name].append(value)

    def add(self, name: str, values: list[str]) -> None:
        seen = self.lists.setdefault(name, [])
        seen.extend(v for v in values if v not in seen)


def _thing(value: str) -> str:
    return "bag" if value == "any" else value


def _colour_target(kind: str, value: str) -> str | None:
    return {"upper": "upper_colour", "lower": "lower_colour", "bag": "bag_colour"}.get(kind)


def _noun(state: _State, clause: _Clause, kind: str, value: str) -> None:
    """A garment, bag or thing: record it and give it the clause's pending colours."""
    if kind in ("bag", "thing"):
        if state.negate_next:
            state.notes.append(f"'no {_thing(value)}' is not searched (absence is not used)")
            state.negate_next = False
            clause.pending.clear()
            return
        if value == "any":
            state.any_bag = True
        elif value not in state.accessories:
            state.accessories.append(value)
    elif kind == "upper" and value:
        state.add("upper_type", [value])
    elif kind == "lower" and value:
        state.add("lower_type", [value])
    colours = clause.pending or ([clause.default] if clause.default else [])
    _give_colours(state, kind, value, colours)
    clause.pending, clause.default = [], None
    clause.last_noun = (kind, value)


def _give_colours(state: _State, kind: str, value: str, colours: list[str]) -> None:
    if not colours:
        return
    target = _colour_target(kind, value)
    if target is None:
        state.notes.append(
            f"the colour of the {_thing(value)} ({', '.join(colours)}) is not searched"
        )
        return
    state.add(target, colours)


def _apply(state: _State, clause: _Clause, facts: list[Fact]) -> None:
    for fact in facts:
        kind = fact[0]
        if kind == "colour":
            clause.pending.extend(c for c in fact[1:] if c not in clause.pending)
        elif kind == "default_colour":
            clause.default = fact[1]
        elif kind in ("upper", "lower", "bag", "thing"):
            _noun(state, clause, kind, fact[1])
        elif kind == "dress":  # one colour for top and skirt
            colours = list(clause.pending)
            _noun(state, clause, "lower", "skirt")
            _give_colours(state, "upper", "", colours)
        elif kind == "age":
            state.set_single("age_group", fact[1])
        elif kind == "gender":
            state.set_single("gender", fact[1])
        elif kind == "sleeve":
            state.set_single("sleeve", fact[1])
        elif kind == "negate":
            state.negate_next = True
        elif (
            kind == "negate_before"
            and clause.last_noun
            and clause.last_noun[0]
            in (
                "bag",
                "thing",
            )
        ):
            value = clause.last_noun[1]
            if value in state.accessories or value == "any":
                if value == "any":
                    state.any_bag = False
                else:
                    state.accessories.remove(value)
                state.notes.append(f"'no {_thing(value)}' is not searched (absence is not used)")


def _match_korean(token: str) -> list[list[Fact]] | None:
    """Split a token written without spaces into known words and particles, or None."""
    out: list[list[Fact]] = []
    pos = 0
    while pos < len(token):
        for end in range(len(token), pos, -1):
            piece = token[pos:end]
            if piece in LEXICON:
                out.append(LEXICON[piece])
                pos = end
                break
            if piece in FILLERS or piece in PARTICLES:
                pos = end
                break
        else:
            return None
    return out


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[\"'`“”‘’()\[\]{}!?]", " ", text)
    return re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)


def parse_description(text: str) -> Description:
    """Parse free Korean / English text; raises ``DescriptionError`` when it cannot be searched."""
    if text is None or not text.strip():
        raise DescriptionError(
            "the description is empty: say what the person wore, e.g. "
            "'노란 우비, 남색 바지, 분홍 가방' or 'boy about 8, yellow raincoat, navy trousers'"
        )
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise DescriptionError(
            f"the description is {len(text)} characters long; keep it under "
            f"{MAX_DESCRIPTION_CHARS} (only clothing, age and carried things are used)"
        )
    state = _State()
    normal = _normalise(text)

    def age(match: re.Match) -> str:
        number = match.group(1) or match.group(4)
        years = int(number)
        if match.group(3):  # a decade: 70대, 70s
            years += 5
        if years > 120:
            state.ignored.append(match.group(0).strip())
        else:
            state.set_single("age_group", _age_group(years))
        return " "

    normal = _AGE.sub(age, normal)
    for part in _SPLIT.split(normal):
        clause = _Clause()
        words = part.split()
        i = 0
        while i < len(words):
            for n in range(min(_MAX_PHRASE_WORDS, len(words) - i), 0, -1):
                phrase = " ".join(words[i : i + n])
                if phrase in LEXICON:
                    _apply(state, clause, LEXICON[phrase])
                    i += n
                    break
            else:
                word = words[i]
                i += 1
                if word in FILLERS or word in PARTICLES:
                    continue
                pieces = _match_korean(word) if not word.isascii() else None
                if pieces is None:
                    state.ignored.append(word)
                    continue
                for facts in pieces:
                    _apply(state, clause, facts)
        if clause.last_noun is not None:
            state.last_noun = clause.last_noun
        if clause.pending:
            if state.last_noun is not None:  # "우비는 노란색", "T-shirt, short-sleeved, navy"
                kind, value = state.last_noun
                _give_colours(state, kind, value, clause.pending)
            else:
                state.notes.append(
                    f"colour {', '.join(clause.pending)} names no garment or bag: not searched"
                )
        state.negate_next = False
    return _finish(state, text)


def _finish(state: _State, text: str) -> Description:
    for name, label in (("age_group", "age groups"), ("gender", "genders"), ("sleeve", "sleeves")):
        values = state.single.get(name, [])
        if len(values) > 1:
            raise DescriptionError(
                f"the description contradicts itself: it gives two {label} "
                f"({' and '.join(values)}); a person has one — keep the one the caller is sure of"
            )
    description = Description(
        age_group=(state.single.get("age_group") or [None])[0],
        gender=(state.single.get("gender") or [None])[0],
        sleeve=(state.single.get("sleeve") or [None])[0],
        accessories=state.accessories,
        any_bag=state.any_bag,
        ignored=list(dict.fromkeys(state.ignored)),
        notes=state.notes,
        text=text,
        **{name: state.lists.get(name, []) for name in LIST_FIELDS},
    )
    if description.is_empty:
        unknown = ", ".join(repr(w) for w in description.ignored) or "none"
        notes = f"; {'; '.join(description.notes)}" if description.notes else ""
        raise DescriptionError(
            f"nothing in the description could be used (words not understood: {unknown}"
            f"{notes}). Name an age "
            "group, clothing colours and types, or carried things, e.g. 'elderly woman, grey "
            "cardigan, black trousers, walking stick' or '할머니, 회색 가디건, 검정 바지, 지팡이'"
        )
    return description

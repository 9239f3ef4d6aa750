"""The description parser (``reunite.pipeline.describe``): Korean and English free text into the
structured ``Description``. Bad input tried: empty and blank text, only unknown words, a colour
with no garment, contradictions (two age groups, both genders, both sleeve lengths, a number
that contradicts "할머니"), negations, over-long text, structured values outside the vocabulary."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reunite.errors import ReuniteError
from reunite.pipeline.describe import Description, DescriptionError, parse_description


def test_the_issue_examples_in_both_languages():
    ko = parse_description("노란 우비, 남색 바지, 분홍 가방")
    assert ko.upper_colour == ["yellow"] and ko.upper_type == ["raincoat"]
    assert ko.lower_colour == ["navy"] and ko.lower_type == ["trousers"]
    assert ko.any_bag and ko.bag_colour == ["pink"] and ko.ignored == []

    en = parse_description("a boy about 8, yellow raincoat, navy trousers, pink backpack")
    assert (en.age_group, en.gender) == ("child", "male")
    assert en.upper_colour == ["yellow"] and en.upper_type == ["raincoat"]
    assert en.lower_colour == ["navy"] and en.lower_type == ["trousers"]
    assert en.accessories == ["backpack"] and en.bag_colour == ["pink"]

    elder = parse_description("an elderly woman, grey cardigan, black trousers, walking stick")
    assert (elder.age_group, elder.gender) == ("elderly", "female")
    assert elder.upper_type == ["cardigan"] and elder.upper_colour == ["grey"]
    assert elder.accessories == ["cane"] and elder.ignored == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # particles, endings and "색" after a colour
        ("노란색 우비를 입은 남자아이", {"upper_colour": ["yellow"], "upper_type": ["raincoat"]}),
        # no spaces at all
        ("노란우비 남색바지", {"upper_colour": ["yellow"], "lower_colour": ["navy"]}),
        # the colour after the noun
        ("우비는 노란색", {"upper_colour": ["yellow"], "upper_type": ["raincoat"]}),
        ("분홍 가방", {"bag_colour": ["pink"], "any_bag": True}),
        ("지팡이", {"accessories": ["cane"]}),
        ("할머니", {"age_group": "elderly", "gender": "female"}),
        ("남자아이", {"age_group": "child", "gender": "male"}),
        ("80대 할아버지", {"age_group": "elderly", "gender": "male"}),
        ("8살 여자아이 흰 반팔티", {"sleeve": "short", "upper_type": ["tshirt"]}),
        ("청바지", {"lower_colour": ["blue"], "lower_type": ["trousers"]}),
        # two colours for one top are allowed: either may match
        ("red and blue top", {"upper_colour": ["red", "blue"], "upper_type": []}),
        ("T-shirt, short-sleeved, dark blue", {"upper_colour": ["navy"], "sleeve": "short"}),
        ("in her 70s", {"age_group": "elderly"}),
        ("8 years old girl", {"age_group": "child", "gender": "female"}),
        ("orange jacket", {"upper_colour": ["red", "yellow"], "upper_type": ["jacket"]}),
    ],
)
def test_korean_and_english_phrasings(text, expected):
    parsed = parse_description(text)
    for field, value in expected.items():
        assert getattr(parsed, field) == value, (text, field, parsed)
    assert parsed.ignored == []


def test_unknown_words_are_listed_not_silently_dropped():
    parsed = parse_description("노란 우비 flibber 반짝이는")
    assert parsed.upper_colour == ["yellow"]
    assert parsed.ignored == ["flibber", "반짝이는"]


def test_things_understood_but_not_searched_are_noted():
    hat = parse_description("purple hat")
    assert hat.accessories == ["hat"] and any("colour of the hat" in n for n in hat.notes)
    for text in ("woman with no hat, red coat", "모자 없음, 빨간 코트"):
        parsed = parse_description(text)
        assert "hat" not in parsed.accessories and any("no hat" in n for n in parsed.notes)
        assert parsed.upper_colour == ["red"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_description_is_an_error(text):
    with pytest.raises(DescriptionError, match="empty"):
        parse_description(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("child and elderly", "two age groups"),
        ("할머니 남자아이", "two age groups"),
        ("8살 할머니", "two age groups"),
        ("남자 여자", "two genders"),
        ("short sleeve long sleeve shirt", "two sleeves"),
    ],
)
def test_contradictions_are_errors_that_say_which(text, fragment):
    with pytest.raises(DescriptionError, match=fragment):
        parse_description(text)


def test_nothing_understood_is_an_error_naming_the_words():
    with pytest.raises(DescriptionError) as info:
        parse_description("flibber gobble")
    assert "'flibber'" in str(info.value) and "'gobble'" in str(info.value)
    with pytest.raises(DescriptionError, match="names no garment"):
        parse_description("노란색")  # a colour alone says nothing searchable
    assert issubclass(DescriptionError, ReuniteError)  # the CLI turns it into one line


def test_overlong_text_is_refused():
    with pytest.raises(DescriptionError, match="characters"):
        parse_description("노란 우비 " * 200)


def test_structured_descriptions_are_checked_against_the_vocabulary():
    assert Description(upper_colour=["navy"], accessories=["cane"]).constraints() == {
        "upper_colour": ["navy"]
    }
    with pytest.raises(ValidationError):
        Description(upper_colour=["turquoise"])
    with pytest.raises(ValidationError):
        Description(age_group="teenager")
    with pytest.raises(ValidationError):
        Description(accessories=["sword"])


def test_the_summary_shows_the_parse_in_both_languages():
    parsed = parse_description("8살 남자아이, 노란 우비, 남색 바지, 분홍 책가방")
    assert parsed.summary() == (
        "child · male · top: yellow raincoat · bottom: navy trousers · pink backpack"
    )
    assert parsed.summary("ko") == "아동 · 남성 · 상의 노랑 우비 · 하의 남색 바지 · 분홍 배낭"

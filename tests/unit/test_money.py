"""Yuan text and Chinese capital amounts (大写金额): known cases from accounting practice, and a
property test against a reference written another way (positional text, then the zero rules as
rewrites)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.money import capitals, yuan
from domain.funds import MAX_AMOUNT

# Examples from 《正确填写票据和结算凭证的基本规定》 and the issue, in the form this module writes.
KNOWN = [
    (1_200_000, "人民币壹万贰仟元整"),
    (1_005, "人民币壹拾元零伍分"),
    (1_050_000, "人民币壹万零伍佰元整"),
    (168_032, "人民币壹仟陆佰捌拾元叁角贰分"),
    (10_700_053, "人民币壹拾万柒仟元伍角叁分"),
    (1_640_902, "人民币壹万陆仟肆佰零玖元零贰分"),
    (32_504, "人民币叁佰贰拾伍元零肆分"),
    (10_000_050_000, "人民币壹亿零伍佰元整"),
    (10_000_100_000, "人民币壹亿零壹仟元整"),  # the whole 万 group is zero: read once
    (10_010_000_000, "人民币壹亿零壹拾万元整"),
    (10_001_000_000, "人民币壹亿零壹万元整"),
    (10_000_000_000, "人民币壹亿元整"),
    (101_000_000, "人民币壹佰零壹万元整"),
    (100_100, "人民币壹仟零壹元整"),
    (10_000_000, "人民币壹拾万元整"),
    (1_000, "人民币壹拾元整"),
    (150, "人民币壹元伍角整"),
    (50, "人民币伍角整"),
    (5, "人民币伍分"),
    (0, "人民币零元整"),
    (1_600_000_000, "人民币壹仟陆佰万元整"),  # Hezhou's first phase: 16 million yuan
    (-1_005, "人民币负壹拾元零伍分"),
]


@pytest.mark.parametrize(("fen", "words"), KNOWN)
def test_known_capitals(fen: int, words: str) -> None:
    assert capitals(fen) == words


@pytest.mark.parametrize(
    ("fen", "text"),
    [(1_200_000, "12,000.00"), (5, "0.05"), (0, "0.00"), (-1_234_567, "-12,345.67"), (100, "1.00")],
)
def test_yuan(fen: int, text: str) -> None:
    assert yuan(fen) == text


def test_refuses_floats() -> None:
    with pytest.raises(TypeError):
        capitals(12.5)  # type: ignore[arg-type]


_DIGITS = "零壹贰叁肆伍陆柒捌玖"


def reference(fen: int) -> str:
    whole, cents = divmod(fen, 100)
    text = ""
    digits = str(whole)
    for i, ch in enumerate(digits):
        power = len(digits) - 1 - i
        text += _DIGITS[int(ch)] + ("", "拾", "佰", "仟")[power % 4]
        if power % 4 == 0 and power:
            text += "万" if power // 4 == 1 else "亿"
    rewrites = (
        ("零[拾佰仟]", "零"),
        ("零+", "零"),
        ("零(万|亿)", r"\1"),
        ("亿万", "亿零"),
        ("零+", "零"),
        ("零+$", ""),
    )
    for pattern, to in rewrites:
        text = re.sub(pattern, to, text)
    if whole == 0:
        text = ""
    jiao, fen_digit = cents // 10, cents % 10
    tail = ""
    if jiao:
        tail += _DIGITS[jiao] + "角"
    if fen_digit:
        tail += ("零" if text and not jiao else "") + _DIGITS[fen_digit] + "分"
    if not fen_digit:
        tail += "整"
    body = (text + "元" if text else "") + tail
    return "人民币" + (body if body != "整" else "零元整")


@given(st.integers(min_value=0, max_value=MAX_AMOUNT))
def test_capitals_match_the_reference(fen: int) -> None:
    assert capitals(fen) == reference(fen)


@settings(max_examples=1000)  # cheap, and zeros in every place are where capitals go wrong
@given(st.lists(st.sampled_from("0000000123456789"), min_size=1, max_size=13).map(lambda d: int("".join(d))))
def test_capitals_with_many_zeros(fen: int) -> None:
    assert capitals(fen) == reference(fen)


@given(st.integers(min_value=0, max_value=MAX_AMOUNT))
def test_yuan_reads_back(fen: int) -> None:
    assert int(yuan(fen).replace(",", "").replace(".", "")) == fen

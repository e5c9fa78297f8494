"""One spelling for a number sent as text (api.params), whatever the endpoint."""

from __future__ import annotations

import pytest
from pydantic_core import PydanticCustomError

from api.params import parse_decimal_number, parse_whole_number

# Full-width and Arabic-Indic digits, separators, hex, blanks, signs, leading zeros, decimals.
REFUSED = ["1_0", "\uff11", "\u0663", "0x1", " 1", "1 ", "\t1", "1\n", "01", "+1", "-1", "1.0"]
REFUSED += ["1e1", ""]


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("1", 1), ("10", 10), ("2147483647", 2**31 - 1)]
)
def test_a_whole_number_is_plain_ascii_digits(text: str, value: int) -> None:
    assert parse_whole_number(text) == value


@pytest.mark.parametrize("text", [*REFUSED, "9" * 40])
def test_every_other_spelling_of_a_whole_number_is_refused(text: str) -> None:
    with pytest.raises(PydanticCustomError, match="whole number"):
        parse_whole_number(text)


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0.0), ("2", 2.0), ("0.5", 0.5), ("10.25", 10.25)]
)
def test_a_decimal_number_is_digits_and_at_most_one_point(text: str, value: float) -> None:
    assert parse_decimal_number(text) == value


@pytest.mark.parametrize(
    "text", ["1_0", "\uff11", "0x1", " 1", "01", "+1", ".5", "1.", "1e3", "inf", "nan"]
)
def test_every_other_spelling_of_a_decimal_number_is_refused(text: str) -> None:
    with pytest.raises(PydanticCustomError, match="number"):
        parse_decimal_number(text)

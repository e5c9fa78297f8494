"""One reading of a number sent as text: every form field, query parameter and path segment.

Pydantic's lax parsing takes `1_0` as 10 (Python's int() allows underscores), and ` 1`, `+1`,
`01` and `1.0` as 1. A number a client writes has one spelling here:
- a whole number (WholeNumber) is ASCII digits, with no sign, blank, leading zero (`0` itself
  is fine), separator, decimal point or exponent: `1` and `10`, never `1_0`, `0x1`, `+1`,
  ` 1`, `01`, `1.0`, `1e1` or full-width digits;
- a decimal number (DecimalNumber, for seconds) is a whole number optionally followed by a
  point and digits: `2` and `0.5`, never `.5`, `1e3`, `inf` or `1_0`.
Anything else is refused with 422 invalid_request before the route runs. A parameter declares
its range as annotated-types metadata placed before the validator (as `Id` does), not in
Query()/Form()/Path(): so the range is checked on the number and shows in the OpenAPI schema.
"""

from __future__ import annotations

import re
from typing import Annotated

from annotated_types import Gt, Le
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# [0-9], not \d: \d also matches other scripts' digits (full-width, Arabic-Indic...).
_WHOLE = re.compile(r"0|[1-9][0-9]*")
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
# Longer than any value a range of ours allows; keeps int() of a huge string off the CPU.
_MAX_CHARS = 30


def parse_whole_number(value: object) -> object:
    """The int a client's text spells, per this module's rule; ints (defaults) pass through.

    Raises PydanticCustomError (answered as 422 invalid_request) for any other spelling.
    """
    if not isinstance(value, str):
        return value
    if len(value) > _MAX_CHARS or not _WHOLE.fullmatch(value):
        raise PydanticCustomError(
            "whole_number",
            "must be a whole number written with the digits 0-9 alone (no sign, blanks, "
            "leading zeros, separators or decimal point)",
        )
    return int(value)


def parse_decimal_number(value: object) -> object:
    """The float a client's text spells, per this module's rule; numbers pass through.

    Raises PydanticCustomError (answered as 422 invalid_request) for any other spelling.
    """
    if not isinstance(value, str):
        return value
    if len(value) > _MAX_CHARS or not _DECIMAL.fullmatch(value):
        raise PydanticCustomError(
            "decimal_number",
            "must be a number written with the digits 0-9 and at most one decimal point "
            "(no sign, blanks, leading zeros, separators or exponent)",
        )
    return float(value)


WHOLE_NUMBER = BeforeValidator(parse_whole_number)
DECIMAL_NUMBER = BeforeValidator(parse_decimal_number)
# A row id (pipeline, version): PostgreSQL's integer.
Id = Annotated[int, Gt(0), Le(2**31 - 1), WHOLE_NUMBER]

"""The one rule for messages a client sees: no Python repr, address, traceback or control
character (common.messages), applied where job errors are stored and API errors answered."""

from __future__ import annotations

import pytest

from api.errors import ErrorDetail
from common.messages import MAX_LENGTH, client_text


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            "cannot identify image file <_io.BytesIO object at 0x7f3be1c21800>",
            "cannot identify image file a BytesIO object",
            id="object-repr",
        ),
        pytest.param(
            "hook <function f at 0x7f00aa11bb22> failed", "hook a function failed", id="fn"
        ),
        pytest.param("<class 'KeyError'> raised", "KeyError raised", id="class"),
        pytest.param("freed 0x00007f3be1c21800 twice", "freed 0x... twice", id="address"),
        pytest.param("bad\nline\ttab", "bad line tab", id="control"),
        pytest.param(
            'boom\nTraceback (most recent call last):\n  File "x.py", line 1',
            "boom",
            id="traceback",
        ),
        pytest.param(
            "pipeline_id: 0x1 is not a number", "pipeline_id: 0x1 is not a number", id="0x1"
        ),
    ],
)
def test_client_text_keeps_the_words_and_drops_what_python_shows(
    message: str, expected: str
) -> None:
    assert client_text(message) == expected


def test_client_text_is_bounded() -> None:
    assert len(client_text("x" * (MAX_LENGTH * 2))) == MAX_LENGTH


def test_an_api_error_never_shows_a_repr_in_its_message_or_details() -> None:
    detail = ErrorDetail(
        code="bad",
        message="step failed: <_io.BytesIO object at 0x7f3be1c21800>",
        details=[{"field": "image", "message": "<PIL.Image object at 0x7f3be1c21800>"}],
    )

    assert "0x7f" not in detail.message
    assert detail.details is not None
    assert "0x7f" not in detail.details[0]["message"]

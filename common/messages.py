"""The one rule for a message a client can see: a job's failure reason, a step's error, an API
error's message.

Such a message says in words what went wrong and what to change. It never holds:
- a Python object's repr (`<_io.BytesIO object at 0x7f...>`, `<function f at 0x...>`): it is
  replaced by the object's type name;
- a memory address (a hexadecimal number of 8 or more digits): replaced by "0x...";
- a traceback: everything from "Traceback (most recent call last)" on is dropped;
- control characters (line breaks included): each becomes a space;
and it is at most MAX_LENGTH characters. Code that builds a message writes `{exc}`, never
`{exc!r}`; `client_text` is applied where messages are stored (the job repository) and where
API errors are answered (api.errors), so whatever slips through is still cleaned.
"""

from __future__ import annotations

import re

MAX_LENGTH = 2000

_OBJECT_REPR = re.compile(r"<([^<>]*?) at 0x[0-9a-fA-F]+>")
_CLASS_REPR = re.compile(r"<class '([\w.]+)'>")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{8,}\b")
_TRACEBACK = re.compile(r"\s*Traceback \(most recent call last\).*", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name_object(found: re.Match[str]) -> str:
    words = found[1].split()
    if len(words) >= 2 and words[-1] == "object":  # <module.Type object at 0x...>
        return f"a {words[-2].rsplit('.', 1)[-1]} object"
    return f"a {words[0]}" if words else "an object"  # <function f at 0x...>


def client_text(message: str) -> str:
    """`message` made to follow the rule in this module's docstring."""
    text = _TRACEBACK.sub("", message)
    for _ in range(5):  # a repr may hold others (a bound method's): the innermost go first
        text, count = _OBJECT_REPR.subn(_name_object, text)
        if not count:
            break
    text = _CLASS_REPR.sub(r"\1", text)
    text = _ADDRESS.sub("0x...", text)
    text = _CONTROL.sub(" ", text)
    if len(text) > MAX_LENGTH:
        text = text[: MAX_LENGTH - 3] + "..."
    return text


def describe_exception(exc: BaseException) -> str:
    """An exception in words for a client: its message, or its type name when it has none."""
    return client_text(str(exc)) or type(exc).__name__

"""Scalar values from roles.json, flags and INITD_* variables: durations and
small whole numbers. Pure; every error is a ValueError whose message says what
was expected and what was got, for the caller to prefix with where.

Durations are capped at MAX_SECONDS so that `now + duration` never overflows
a timestamp (a stop_timeout of 1e10 once crashed PID 1 when the stop signal
came); anything longer (1e10, Infinity, 400 digits) means "for ever" and is
the cap, about 31 years.
"""
import re

MAX_SECONDS = 1e9

# "500ms", "30s", "2m", "1h", "1.5s", "1m30s" (Docker's and Go's spellings).
_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(us|µs|ms|s|m|h)", re.ASCII)
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_WHOLE = re.compile(r"[0-9]{1,9}", re.ASCII)


def shown(value, limit=40):
    """A value as an error message quotes it: strings in quotes, cut short."""
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def duration(value, allow_strings=True):
    """Seconds (a float, 0 <= x <= MAX_SECONDS) from a number of seconds or,
    with allow_strings, a string such as "500ms", "30s", "2m" or "1m30s"."""
    expected = ('a duration such as 5, 0.5, "500ms", "30s" or "2m"' if allow_strings
                else "a number of seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected {expected}, got {shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif allow_strings and text and _PART.sub("", text) == "":
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(f"expected {expected}, got {shown(value)}")
    else:
        try:
            seconds = float(value)  # an int of 400 digits overflows here
        except OverflowError:
            seconds = float("inf")
    if seconds != seconds or seconds < 0:
        raise ValueError(f"expected {expected} >= 0, got {shown(value)}")
    # Longer than the cap (1e10, Infinity, 400 digits) means "for ever": the
    # cap, so a deadline computed from it is still a valid timestamp.
    return min(seconds, MAX_SECONDS)


def whole(value, low, high, what="a whole number"):
    """An int in [low, high] from an int or a string of ASCII digits (not "²",
    which str.isdigit() accepts and int() refuses)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {what} {low}-{high}, got {shown(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValueError(f"expected {what} {low}-{high}, got {shown(value)}")
    if not low <= number <= high:
        raise ValueError(f"expected {what} {low}-{high}, got {shown(value)}")
    return number

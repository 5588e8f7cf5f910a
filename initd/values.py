"""Scalar values from roles.json, flags and INITD_* variables: durations and
small whole numbers. Pure; every error is a ValueError whose message says what
was expected and what was got, for the caller to prefix with where.

Durations are capped at MAX_SECONDS so that `now + duration` never overflows
a timestamp (a stop_timeout of 1e10 once crashed PID 1 when the stop signal
came); anything longer (1e10, Infinity, 400 digits) means "for ever" and is
the cap, about 31 years.

Parsed by hand, not with `re`: importing re (and the enum, functools and
collections it pulls in) costs every container start about 5 ms.
"""

MAX_SECONDS = 1e9

# "500ms", "30s", "2m", "1h", "1.5s", "1m30s" (Docker's and Go's spellings).
_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DIGITS = "0123456789"


def shown(value, limit=40):
    """A value as an error message quotes it: strings in quotes, cut short."""
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _number_end(text, i, exponent):
    """Where the decimal number starting at text[i] ends (i if none):
    digits, an optional fraction, and with exponent an optional e[+-]digits."""
    start = i
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    whole = i > start
    if i < len(text) and text[i] == ".":
        j = i + 1
        while j < len(text) and text[j] in _DIGITS:
            j += 1
        if not whole and j == i + 1:
            return start  # a lone "."
        i = j
    elif not whole:
        return start
    if exponent and i < len(text) and text[i] in "eE":
        j = i + 1
        if j < len(text) and text[j] in "+-":
            j += 1
        k = j
        while k < len(text) and text[k] in _DIGITS:
            k += 1
        if k > j:
            i = k
    return i


def _parse_seconds(text):
    """Seconds from "5", "0.5", "1e3", or "500ms", "1m30s"; None if neither."""
    end = _number_end(text, 0, exponent=True)
    if end and end == len(text):
        return float(text)
    total, i = 0.0, 0
    while i < len(text):
        end = _number_end(text, i, exponent=False)
        if end == i:
            return None
        number = float(text[i:end])
        for unit in ("ms", "us", "µs", "h", "m", "s"):  # "ms" before "m"
            if text.startswith(unit, end):
                total += number * _UNITS[unit]
                i = end + len(unit)
                break
        else:
            return None
    return total if text else None


def duration(value, allow_strings=True):
    """Seconds (a float, 0 <= x <= MAX_SECONDS) from a number of seconds or,
    with allow_strings, a string such as "500ms", "30s", "2m" or "1m30s"."""
    expected = ('a duration such as 5, 0.5, "500ms", "30s" or "2m"' if allow_strings
                else "a number of seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected {expected}, got {shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        seconds = _parse_seconds(text) if text.isascii() or "µs" in text else None
        if seconds is None or (not allow_strings
                               and _number_end(text, 0, exponent=True) != len(text)):
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
    elif (isinstance(value, str) and value.strip() and len(value.strip()) <= 9
          and all(c in _DIGITS for c in value.strip())):
        number = int(value.strip())
    else:
        raise ValueError(f"expected {what} {low}-{high}, got {shown(value)}")
    if not low <= number <= high:
        raise ValueError(f"expected {what} {low}-{high}, got {shown(value)}")
    return number

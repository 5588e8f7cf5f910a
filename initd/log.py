"""One voice: every line initd writes goes to stderr as `initd: LEVEL message`.

Written with os.write on fd 2, not through sys.stderr, so nothing is buffered
and a line is never split or held back when PID 1 exits.
"""
import os

ERROR, WARNING, INFO, DEBUG = 0, 1, 2, 3
_NAMES = ("ERROR", "WARNING", "INFO", "DEBUG")

# Set once by cli from --verbose; WARNING and ERROR are always shown.
level = WARNING


def _write(lvl, message):
    if lvl <= level:
        try:
            os.write(2, f"initd: {_NAMES[lvl]} {message}\n".encode(errors="replace"))
        except OSError:
            pass  # stderr closed: PID 1 must carry on regardless


def wants(lvl):
    """Whether lines of this level are shown: check before building a costly one."""
    return lvl <= level


def error(message):
    _write(ERROR, message)


def warning(message):
    _write(WARNING, message)


def info(message):
    _write(INFO, message)


def debug(message):
    _write(DEBUG, message)

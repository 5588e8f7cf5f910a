"""`initd install-compat DIR`: make initd answer to the names of the inits it
stands in for (tini, dumb-init), so an image keeps its ENTRYPOINT."""
import os
import sys

from initd.errors import InitdError

COMPAT_NAMES = ("tini", "dumb-init")


def install_compat(directory):
    """`initd install-compat DIR`: DIR/tini and DIR/dumb-init become symlinks
    to the initd program, which then answers to those names (compat.py), so an
    image keeps its ENTRYPOINT. An old symlink is replaced, a file never."""
    import shutil
    target = shutil.which("initd")
    if not target:
        # Not on PATH: the program we were started as, unless that is
        # `python -m initd`, which no symlink can stand for.
        argv0 = os.path.realpath(sys.argv[0])
        if os.path.basename(argv0) == "__main__.py" or not os.access(argv0, os.X_OK):
            raise InitdError("no initd program to link to: install initd with pip, which puts "
                             "`initd` on PATH, then run `initd install-compat DIR`")
        target = argv0
    target = os.path.abspath(target)
    if not os.path.isdir(directory):
        raise InitdError(f"{directory}: not a directory")
    links = [os.path.join(directory, name) for name in COMPAT_NAMES]
    for link in links:
        if os.path.lexists(link) and not os.path.islink(link):
            raise InitdError(f"{link}: exists and is not a symlink; not replacing it "
                             "(remove it first if initd should take its place)")
    for link in links:
        current = os.readlink(link) if os.path.islink(link) else None
        if current == target:
            print(f"{link} -> {target} (already there)")
            continue
        # A new link renamed over the old one: never a moment without either.
        temporary = _fresh_symlink(target, link)
        try:
            os.replace(temporary, link)
        except OSError as e:
            _remove_quietly(temporary)
            raise InitdError(f"{link}: cannot replace: {e.strerror}")
        print(f"{link} -> {target}" + (f" (was -> {current})" if current else ""))
    return 0


def _fresh_symlink(target, link, attempts=100):
    """A new symlink to target next to link, under a name nobody holds.

    symlink(2) fails with EEXIST instead of following or replacing, so it is
    its own O_EXCL: a stale `tini.initd-<pid>` left by an earlier run (pids
    repeat in every container) just means another random name, as
    tempfile.mkstemp does."""
    import secrets
    for _ in range(attempts):
        temporary = f"{link}.initd-{secrets.token_hex(6)}"
        try:
            os.symlink(target, temporary)
            return temporary
        except FileExistsError:
            continue
        except OSError as e:
            raise InitdError(f"{os.path.dirname(link) or '.'}: cannot create a symlink: {e.strerror}")
    raise InitdError(f"{link}: no free temporary name after {attempts} attempts")


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass

"""The FQDN hostname: resolve the configured name, preload the library.

Containers get a short hostname (`unicorn-1`); applications should report a
full one (`unicorn-1.server2.example.com`). initd resolves the template once at
start and runs the application with libinitd_fqdn.so preloaded and the name in
INITD_FQDN; the library (shim/fqdn_*.c) makes gethostname() and uname() return
it. See docs/fqdn.md for what it reaches and what it cannot.

Pure: no OS calls beyond path arithmetic, no import-time side effects.
"""
import os
import re

# The kernel's nodename limit (__NEW_UTS_LEN in include/uapi/linux/utsname.h):
# uname() cannot carry a longer name, and the library refuses one.
MAX_NAME = 64
# RFC 1035 2.3.4.
MAX_LABEL = 63
PLACEHOLDER = "{hostname}"
ENV_NAME = "INITD_FQDN"

_LABEL = re.compile(r"[A-Za-z0-9-]+")
_BRACED = re.compile(r"\{[^{}]*\}")


def library_path() -> str:
    """Absolute path of the LD_PRELOAD library installed with the package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "libinitd_fqdn.so")


def resolve(template: str, short_hostname: str) -> str:
    """Replace {hostname} in TEMPLATE and check the result is a DNS name.

    Raises ValueError with a short message saying what is wrong and what is
    expected; the caller adds where the template came from.
    """
    for match in _BRACED.finditer(template):
        if match.group() != PLACEHOLDER:
            raise ValueError(f"unknown placeholder {match.group()} in {template!r}"
                             f" (only {PLACEHOLDER} is replaced)")
    rest = _BRACED.sub("", template)
    if "{" in rest or "}" in rest:
        raise ValueError(f"unbalanced brace in {template!r} (write {PLACEHOLDER})")
    name = template.replace(PLACEHOLDER, short_hostname)
    _check_name(name)
    return name


def _check_name(name: str) -> None:
    if not name:
        raise ValueError("empty name (expected e.g. {hostname}.example.com)")
    if len(name) > MAX_NAME:
        raise ValueError(f"{name!r} is {len(name)} characters, the kernel allows"
                         f" a hostname of at most {MAX_NAME}")
    for label in name.split("."):
        if not label:
            raise ValueError(f"{name!r} has an empty label (expected dot-separated"
                             " labels, no leading, trailing or double dot)")
        if len(label) > MAX_LABEL:
            raise ValueError(f"label {label!r} is {len(label)} characters, at most"
                             f" {MAX_LABEL} allowed")
        if not _LABEL.fullmatch(label):
            bad = next(c for c in label if not _LABEL.fullmatch(c))
            raise ValueError(f"label {label!r} holds {bad!r} (labels may only hold"
                             " letters, digits and '-')")
        if label[0] == "-" or label[-1] == "-":
            raise ValueError(f"label {label!r} starts or ends with '-'")


def preload_env(env: dict, fqdn: str) -> dict:
    """A copy of ENV that runs a program with the library reporting FQDN.

    The library goes after an existing LD_PRELOAD (ld.so separates entries by
    spaces or colons, ld.so(8)), and is not added twice, so a child of the
    application that passes its environment on keeps one copy.
    """
    lib = library_path()
    if any(c in lib for c in " \t\n:"):
        # ld.so would split the path into pieces and preload none of them.
        raise ValueError(f"library path {lib!r} holds a space or ':' that LD_PRELOAD"
                         " cannot carry (install initd under a plain path)")
    new = dict(env)
    new[ENV_NAME] = fqdn
    existing = new.get("LD_PRELOAD", "")
    if lib not in re.split(r"[\s:]+", existing):
        new["LD_PRELOAD"] = f"{existing} {lib}" if existing.strip() else lib
    return new

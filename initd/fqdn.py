"""The FQDN hostname: resolve the configured name, preload the library.

Containers get a short hostname (`unicorn-1`); applications should report a
full one (`unicorn-1.server2.example.com`). initd resolves the template once at
start and runs the application with libinitd_fqdn.so preloaded and the name in
INITD_FQDN; the library (shim/fqdn_*.c) makes gethostname() and uname() return
it. See docs/fqdn.md for what it reaches and what it cannot.

Two placeholders, both taken from the kernel's hostname (uname's nodename):
  {hostname}  the short name: the kernel hostname up to its first dot
              (`web-0` in a pod with `setHostnameAsFQDN: true`, whose kernel
              hostname is `web-0.web.default.svc.cluster.local`);
  {fqdn}      the whole kernel hostname, dots and all.
A template ending in a domain that the substituted name already ends in does
not get it twice: "{fqdn}.example.com" on a host named "web-0.example.com"
gives "web-0.example.com".

Two kinds of failure, because a name is cosmetic but a typo is not:
  - check_template(): the template itself can never give a valid name (an
    unknown placeholder, a bad fixed label, a literal name that is invalid, a
    fixed part that alone is over 64 characters). An error: `initd check`
    reports it before any deploy, and initd refuses to start.
  - resolve_name(): the template is fine but THIS hostname makes it invalid (a
    Kubernetes pod name of 63 characters plus a domain is over 64). A warning:
    the app runs with the kernel's own hostname rather than not at all.

Pure: no OS calls beyond path arithmetic, no import-time side effects (the
one exception, resolve(), kept for today's cli.py, logs its warning).
"""
import os
import re

# The kernel's nodename limit (__NEW_UTS_LEN in include/uapi/linux/utsname.h):
# uname() cannot carry a longer name, and the library refuses one.
MAX_NAME = 64
# RFC 1035 2.3.4.
MAX_LABEL = 63
PLACEHOLDER = "{hostname}"
FULL_PLACEHOLDER = "{fqdn}"
PLACEHOLDERS = (PLACEHOLDER, FULL_PLACEHOLDER)
ENV_NAME = "INITD_FQDN"

_LABEL = re.compile(r"[A-Za-z0-9-]+")
_BRACED = re.compile(r"\{[^{}]*\}")
# The shortest valid value a placeholder can take: a template that gives an
# invalid name with it gives an invalid name with every hostname (one letter
# is the most permissive label there is), so the fault is the template's.
_PROBE_VALUE = "a"


def library_path() -> str:
    """Absolute path of the LD_PRELOAD library installed with the package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "libinitd_fqdn.so")


def check_template(template: str) -> None:
    """Raise ValueError (one line, no location) if TEMPLATE can never resolve
    to a valid name, whatever the hostname. For `initd check` and start-up."""
    for match in _BRACED.finditer(template):
        if match.group() not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {match.group()} in {template!r}"
                             f" (only {PLACEHOLDER} and {FULL_PLACEHOLDER} are replaced)")
    rest = _BRACED.sub("", template)
    if "{" in rest or "}" in rest:
        raise ValueError(f"unbalanced brace in {template!r} (write {PLACEHOLDER})")
    if not _BRACED.search(template):
        _check_name(template)  # a literal: it is the name
        return
    fixed = len(rest)
    if fixed >= MAX_NAME:
        raise ValueError(f"{template!r} is {fixed} characters without its placeholders;"
                         f" with any hostname it exceeds the kernel's {MAX_NAME}")
    probe = _substitute(template, _PROBE_VALUE, _PROBE_VALUE)
    try:
        _check_name(probe)
    except ValueError as e:
        raise ValueError(f"{template!r} can never give a valid name (with the"
                         f" hostname {_PROBE_VALUE!r}: {e})") from None


def resolve_name(template: str, nodename: str):
    """The name TEMPLATE gives on a host whose kernel hostname is NODENAME.

    Returns (name, None) when it is a valid name, or (None, warning) when
    this hostname makes it invalid (the app should then run with the
    kernel's hostname, and the caller logs the warning with its location).
    Raises ValueError when the template itself is wrong (check_template).
    """
    check_template(template)
    short = nodename.split(".", 1)[0]
    name = _substitute(template, short, nodename)
    try:
        _check_name(name)
    except ValueError as e:
        return None, (f"{template!r} on hostname {nodename!r}: {e}; the app runs"
                      " with the kernel's hostname instead")
    return name, None


def _substitute(template, short, full):
    parts = re.split(r"(\{hostname\}|\{fqdn\})", template)
    # parts alternates literal, placeholder, literal, ...: drop from a value
    # the domain the literal after it adds again (case-insensitive, as DNS),
    # so "{fqdn}.example.com" on "web-0.example.com" stays as it is.
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(part)
            continue
        value = short if part == PLACEHOLDER else full
        domain = parts[i + 1]
        if domain.startswith(".") and value.lower().endswith(domain.lower()) \
                and len(value) > len(domain):
            value = value[: -len(domain)]
        out.append(value)
    return "".join(out)


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

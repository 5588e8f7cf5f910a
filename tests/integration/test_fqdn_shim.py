"""The FQDN library (shim/fqdn_*.c) against real programs and the real libc.

Every program runs in fresh UTS + PID + mount namespaces (unshare) whose
hostname is set for that run: `unicorn-1` when the library is under test, the
full name itself when recording what the real libc returns for a real hostname
of the same length. The C probe (tests/fqdn/probe.c) prints return value, errno
and every byte of the buffer, so "behaves like glibc" is a string comparison.

The last group shows what the library cannot reach; each of those tests
asserts the real short name comes back there (docs/fqdn.md, "Limits").
"""
import errno
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from initd import fqdn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIM = os.path.join(REPO, "shim")
PROBES = os.path.join(REPO, "tests", "fqdn")

SHORT = "unicorn-1"
FQDN = "unicorn-1.server2.example.com"
LONGEST = "unicorn-1." + "s" * 42 + ".example.com"  # 64: the kernel's limit
assert len(LONGEST) == 64
TIMEOUT = 30  # seconds for one namespaced run; valgrind and go get more

# The library's hooks must see only what each test gives them.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "INITD_FQDN")}

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: unshare, hostname"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)"),
    pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler"),
]


def needs(tool):
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not installed")


# --- building ---------------------------------------------------------------

def make(*args, timeout=120):
    """shim/Makefile, the one definition of the C build (setup.py runs it too)."""
    return subprocess.run(["make", "-s", "-C", SHIM, *args], capture_output=True, text=True,
                          timeout=timeout)


def compile_c(args, timeout=120):
    r = subprocess.run(["cc", *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"cc {' '.join(args)}\n{r.stderr}"


@pytest.fixture(scope="session")
def library():
    """The installed library (fqdn.library_path(), what initd preloads).

    The tests never write into the source tree: when the library is missing
    or older than its sources (by the Makefile's own rules, `make -q`), they
    fail and say how to rebuild it."""
    path = fqdn.library_path()
    r = make("-q", f"OUT={os.path.dirname(path)}", path)
    assert r.returncode == 0, (f"{path} is missing or older than shim/: rebuild it with "
                               "`python setup.py build_py` (or `pip install .`)")
    return path


PROBE_FLAGS = {
    "O0": ["-O0"],
    # gethostname(buf, len) on a buffer of known size compiles to
    # __gethostname_chk(buf, len, sizeof buf).
    "fortify": ["-O2", "-D_FORTIFY_SOURCE=2"],
    "static": ["-O2", "-static"],
}


@pytest.fixture(scope="session")
def probes(tmp_path_factory):
    out = tmp_path_factory.mktemp("fqdn-probes")
    built = {}
    for variant, flags in PROBE_FLAGS.items():
        built[variant] = str(out / f"probe-{variant}")
        compile_c(flags + ["-Wall", "-Wextra", "-Werror", "-pthread", "-o", built[variant],
                           os.path.join(PROBES, "probe.c")])
    built["marker"] = str(out / "libmarker.so")
    compile_c(["-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", built["marker"],
               os.path.join(PROBES, "marker.c")])
    return built


# --- running ----------------------------------------------------------------

def run_ns(argv, *, hostname=SHORT, env=None, setup="", net=False, pid1=False,
           timeout=TIMEOUT):
    """Run ARGV in fresh UTS+PID+mount namespaces whose hostname is HOSTNAME.

    ENV is added for ARGV alone (through env(1)), so neither unshare nor the
    shell setting up the namespace loads the library. The shell stays PID 1
    unless PID1 (a PID-namespace init ignores its own SIGABRT, which would
    hide an abort). --kill-child: if the timeout kills unshare, its child,
    the namespace's init, dies too, and the kernel kills the rest.
    """
    script = f'hostname "$1" || exit 125\nshift\n{setup}\n'
    script += 'exec "$@"' if pid1 else '"$@"\nexit $?'
    cmd = ["unshare", "--uts", "--pid", "--mount-proc", "--kill-child"]
    cmd += ["--net"] if net else []
    cmd += ["--", "sh", "-c", script, "sh", hostname, "env"]
    cmd += [f"{k}={v}" for k, v in (env or {}).items()] + list(argv)
    return subprocess.run(cmd, env=CLEAN_ENV, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def with_fqdn(name=FQDN, env=None):
    return fqdn.preload_env(env or {}, name)


def lengths(name):
    n = len(name)
    return [str(x) for x in (0, 1, 2, n - 1, n, n + 1, 256)]


def parse_gethostname(line):
    """'gethostname len=L ret=R errno=E buf=HEX' -> (L, R, E, bytes)."""
    fields = dict(f.split("=", 1) for f in line.split()[1:])
    return (int(fields["len"]), int(fields["ret"]), int(fields["errno"]),
            bytes.fromhex(fields["buf"]))


# --- the library does what glibc does ----------------------------------------

def test_library_exports_only_the_three_hooks(library):
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) not installed")
    r = subprocess.run(["nm", "-D", "--defined-only", library], capture_output=True,
                       text=True, timeout=TIMEOUT)
    names = {line.split()[-1] for line in ok(r).splitlines() if line.split()[1] in "TW"}
    assert names == {"gethostname", "uname", "__gethostname_chk"}


def test_fortified_probe_really_calls_gethostname_chk(probes):
    with open(probes["fortify"], "rb") as f:
        assert b"__gethostname_chk" in f.read()


def test_glibc_short_buffers_copy_what_fits_and_fail(probes):
    """What the library mirrors, recorded from the real libc (glibc 2.36):
    len <= strlen(name) copies len bytes (no NUL) and fails ENAMETOOLONG;
    len == 0 writes nothing; success leaves errno alone."""
    n = len(FQDN)
    out = ok(run_ns([probes["O0"], "gethostname", "0", "2", str(n), str(n + 1)],
                    hostname=FQDN))
    fill = b"\xaa"
    rows = [parse_gethostname(line) for line in out.splitlines()]
    name = FQDN.encode()
    assert rows[0] == (0, -1, errno.ENAMETOOLONG, fill * 300)
    assert rows[1] == (2, -1, errno.ENAMETOOLONG, name[:2] + fill * 298)
    assert rows[2] == (n, -1, errno.ENAMETOOLONG, name + fill * (300 - n))
    # EXDEV is the probe's sentinel: errno untouched on success.
    assert rows[3] == (n + 1, 0, errno.EXDEV, name + b"\0" + fill * (299 - n))


@pytest.mark.parametrize("variant", ["O0", "fortify"])
@pytest.mark.parametrize("name", [FQDN, LONGEST, "a.b"])
def test_gethostname_and_uname_match_real_libc_byte_for_byte(library, probes, variant, name):
    probe = probes[variant]
    for argv in ([probe, "gethostname", *lengths(name)], [probe, "uname"]):
        real = ok(run_ns(argv, hostname=name))
        hooked = ok(run_ns(argv, hostname=SHORT, env=with_fqdn(name)))
        assert hooked == real


@pytest.mark.parametrize("variant", ["O0", "fortify"])
def test_clean_under_valgrind(library, probes, variant):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind not installed")
    for argv in ([probes[variant], "gethostname", *lengths(FQDN)], [probes[variant], "uname"]):
        plain = ok(run_ns(argv, env=with_fqdn()))
        r = run_ns(["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", *argv],
                   env=with_fqdn(), timeout=180)
        assert ok(r) == plain
        assert r.stderr == ""


@pytest.mark.parametrize("hooked", [False, True], ids=["real", "hooked"])
def test_fortify_overflow_aborts_like_glibc(library, probes, hooked):
    # The probe claims 65 bytes of a 64-byte buffer: __chk_fail, SIGABRT.
    env = with_fqdn() if hooked else {}
    r = run_ns([probes["fortify"], "overflow", "65"], env=env)
    assert r.returncode == 128 + signal.SIGABRT
    assert "buffer overflow detected" in r.stderr
    assert "overflow ret" not in r.stdout
    # The whole buffer is fine.
    assert ok(run_ns([probes["fortify"], "overflow", "64"], env=env)) == "overflow ret=0\n"


def test_safe_from_a_signal_handler(library, probes):
    out = ok(run_ns([probes["O0"], "signal"], env=with_fqdn()))
    assert out == f"signal ok=1 name={FQDN}\n"


def test_safe_from_many_threads(library, probes):
    out = ok(run_ns([probes["O0"], "threads"], env=with_fqdn()))
    assert out == f"threads bad=0 name={FQDN}\n"


# --- what programs see --------------------------------------------------------

TOOLS = {
    "hostname": ["hostname"],
    "uname -n": ["uname", "-n"],
    "python socket.gethostname": [sys.executable, "-c",
                                  "import socket; print(socket.gethostname())"],
    "python os.uname": [sys.executable, "-c", "import os; print(os.uname().nodename)"],
    "python platform.node": [sys.executable, "-c", "import platform; print(platform.node())"],
    "perl Sys::Hostname": ["perl", "-MSys::Hostname", "-e", "print hostname, qq(\\n)"],
    "ruby Socket.gethostname": ["ruby", "-rsocket", "-e", "puts Socket.gethostname"],
}


def skip_missing(argv):
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} not installed")


@pytest.mark.parametrize("tool", TOOLS)
def test_programs_see_the_fqdn(library, tool):
    skip_missing(TOOLS[tool])
    assert ok(run_ns(TOOLS[tool], env=with_fqdn())) == FQDN + "\n"


@pytest.mark.parametrize("tool", TOOLS)
def test_programs_see_the_real_name_without_initd_fqdn(library, tool):
    skip_missing(TOOLS[tool])
    assert ok(run_ns(TOOLS[tool], env={"LD_PRELOAD": library})) == SHORT + "\n"


@pytest.mark.parametrize("value", [
    None,                                   # unset
    "",                                     # empty
    "{hostname}.server2.example.com",       # not resolved
    "x" * 65,                               # longer than the kernel allows
    "a" * 64,                               # label longer than 63
    "bad_name.example.com",
    "-unicorn.example.com",
    "unicorn..example.com",
    "unicorn.example.com.",
])
def test_missing_or_invalid_name_passes_every_call_through(library, probes, value):
    env = {"LD_PRELOAD": library}
    if value is not None:
        env["INITD_FQDN"] = value
    for variant in ("O0", "fortify"):
        for argv in ([probes[variant], "gethostname", *lengths(SHORT)], [probes[variant], "uname"]):
            assert ok(run_ns(argv, env=env)) == ok(run_ns(argv))


def test_children_of_the_app_see_the_fqdn(library):
    out = ok(run_ns(["sh", "-c", "hostname; sh -c 'uname -n'"], env=with_fqdn()))
    assert out == f"{FQDN}\n{FQDN}\n"


def test_existing_ld_preload_is_kept(library, probes):
    env = with_fqdn(env={"LD_PRELOAD": probes["marker"]})
    assert env["LD_PRELOAD"] == f"{probes['marker']} {library}"
    r = run_ns([probes["O0"], "name"], env=env)
    assert ok(r) == f"name={FQDN}\n"
    assert r.stderr == "marker preload loaded\n"


# --- through initd --------------------------------------------------------------

APP = ["sh", "-c", f"hostname; uname -n; {sys.executable} -c "
       "'import socket, os; print(socket.gethostname()); print(os.uname().nodename)'"]
INITD = [sys.executable, "-m", "initd"]
PYENV = {"PYTHONPATH": REPO}


def test_initd_fqdn_option_reaches_the_app_and_its_children(library):
    r = run_ns(INITD + ["--fqdn", "{hostname}.server2.example.com", "--"] + APP,
               env=PYENV, pid1=True)
    assert ok(r) == f"{FQDN}\n" * 4


def test_initd_fqdn_environment_variable_is_resolved_for_the_app(library):
    app = ["sh", "-c", 'hostname; echo "$INITD_FQDN"']
    r = run_ns(INITD + ["--"] + app,
               env={**PYENV, "INITD_FQDN": "{hostname}.server2.example.com"}, pid1=True)
    assert ok(r) == f"{FQDN}\n" * 2


def test_initd_keeps_an_existing_ld_preload(library, probes):
    r = run_ns(INITD + ["--fqdn", "{hostname}.server2.example.com", "--",
                        probes["O0"], "name"],
               env={**PYENV, "LD_PRELOAD": probes["marker"]}, pid1=True)
    assert ok(r) == f"name={FQDN}\n"
    assert "marker preload loaded" in r.stderr


def test_initd_role_fqdn_from_roles_json(library, tmp_path):
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"web": {"command": APP,
                                         "fqdn": "{hostname}.server2.example.com"}}))
    r = run_ns(INITD + ["--roles", str(roles), "--role", "web"], env=PYENV, pid1=True)
    assert ok(r) == f"{FQDN}\n" * 4
    # `initd check` shows the name the role gets in this container.
    r = run_ns(INITD + ["check", "--roles", str(roles)], env=PYENV)
    assert f"(here: {FQDN})" in ok(r)


@pytest.mark.parametrize("template, words", [
    ("{host}.example.com", "unknown placeholder {host}"),
    ("{hostname}.exa_mple.com", "holds '_'"),
    ("{hostname}." + "x" * 63, "without its placeholders"),  # can never fit 64
    ("x" * 30 + "." + "y" * 34, "65 characters"),  # a literal too long
])
def test_initd_refuses_a_bad_fqdn_before_starting_the_app(library, template, words):
    r = run_ns(INITD + ["--fqdn", template, "--", "echo", "app ran"], env=PYENV, pid1=True)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("initd: ") and words in lines[0], r.stderr


# A Kubernetes pod name: Deployment name, ReplicaSet hash, pod suffix, 63 in all.
POD_63 = ("shop-web-payments-eu-west-1-production-canary-7d9f8b6c5d-x2x4z" + "z" * 63)[:63]


def test_a_pod_hostname_too_long_for_the_fqdn_warns_and_the_app_runs(library):
    # 63 + ".server2.example.com" = 83 > 64: a cosmetic name must not keep the
    # app from starting; it runs with the kernel's name, and one line says why.
    r = run_ns(INITD + ["--fqdn", "{hostname}.server2.example.com", "--"] + APP,
               env=PYENV, pid1=True, hostname=POD_63)
    assert ok(r) == f"{POD_63}\n" * 4
    warnings = [line for line in r.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "83 characters" in warnings[0], r.stderr


# --- limits: where the real short name comes back -------------------------------

def test_limit_static_binaries(library, probes):
    # No dynamic loader, so nothing is preloaded.
    assert ok(run_ns([probes["O0"], "name"], env=with_fqdn())) == f"name={FQDN}\n"
    assert ok(run_ns([probes["static"], "name"], env=with_fqdn())) == f"name={SHORT}\n"


def test_limit_proc_sys_kernel_hostname(library):
    assert ok(run_ns(["cat", "/proc/sys/kernel/hostname"], env=with_fqdn())) == SHORT + "\n"


@needs("go")
def test_limit_go_os_hostname(library, tmp_path):
    exe = tmp_path / "hostname-go"
    go_env = {**CLEAN_ENV, "CGO_ENABLED": "0", "GO111MODULE": "off", "GOFLAGS": "",
              "HOME": str(tmp_path), "GOCACHE": str(tmp_path / "cache"),
              "GOPATH": str(tmp_path / "gopath")}
    r = subprocess.run(["go", "build", "-o", str(exe), os.path.join(PROBES, "hostname.go")],
                       env=go_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    ok(r)
    assert ok(run_ns([str(exe)], env=with_fqdn())) == f"name={SHORT}\n"


@needs("setpriv")
def test_limit_setuid_programs(library, probes):
    """ld.so in secure mode (AT_SECURE) ignores LD_PRELOAD entries with a '/'
    (ld.so(8)): a setuid-root program run by another user gets the real name."""
    # tmp_path's parents are mode 0700; nobody must reach the files.
    d = tempfile.mkdtemp(prefix="initd-fqdn-suid-")
    try:
        os.chmod(d, 0o755)
        if os.statvfs(d).f_flag & os.ST_NOSUID:
            pytest.skip(f"{d} is on a nosuid mount")
        lib = shutil.copy(library, os.path.join(d, "libinitd_fqdn.so"))
        plain = shutil.copy(probes["O0"], os.path.join(d, "probe"))
        suid = shutil.copy(probes["O0"], os.path.join(d, "probe-suid"))
        os.chmod(lib, 0o755)
        os.chmod(plain, 0o755)
        os.chown(suid, 0, 0)
        os.chmod(suid, 0o4755)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        env = {"LD_PRELOAD": lib, "INITD_FQDN": FQDN}
        assert ok(run_ns(nobody + [suid, "ids"], env=env)) == "uid=65534 euid=0\n"
        assert ok(run_ns(nobody + [suid, "name"], env=env)) == f"name={SHORT}\n"
        # The same program without the setuid bit, same user: hooked.
        assert ok(run_ns(nobody + [plain, "name"], env=env)) == f"name={FQDN}\n"
    finally:
        shutil.rmtree(d)


DOCKER_HOSTS = f"127.0.0.1 localhost\n172.17.0.2 {SHORT}\n"


@needs("hostname")
def test_limit_hostname_f_asks_the_resolver(library, tmp_path):
    """`hostname -f` looks the name up (getaddrinfo, AI_CANONNAME), so its
    answer comes from /etc/hosts or DNS, not from the library. With the
    /etc/hosts Docker writes, it gives the real short name, and with the
    library it looks up a name nothing knows and fails. An /etc/hosts line for
    the FQDN (docker run --add-host) fixes it. No network (--net): DNS fails
    at once instead of timing out."""
    def hostname_f(hosts, env):
        path = tmp_path / "hosts"
        path.write_text(hosts)
        return run_ns(["hostname", "-f"], env=env, net=True,
                      setup=f"mount --bind {shlex.quote(str(path))} /etc/hosts || exit 125")

    assert ok(hostname_f(DOCKER_HOSTS, {})) == SHORT + "\n"
    r = hostname_f(DOCKER_HOSTS, with_fqdn())
    assert r.returncode != 0 and FQDN not in r.stdout
    fixed = DOCKER_HOSTS + f"172.17.0.2 {FQDN}\n"
    assert ok(hostname_f(fixed, with_fqdn())) == FQDN + "\n"

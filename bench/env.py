"""What the benchmarks run: the inits under test, the compiled helper apps,
and a description of the machine."""
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from bench.procs import BenchError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
APPS = ("launch", "sigecho", "sigstamp", "orphans")

# Debian package that provides each reference init.
PACKAGES = {"tini": "tini", "dumb-init": "dumb-init", "catatonit": "catatonit"}


@dataclass
class Init:
    name: str
    argv: list                                  # up to and including "--"
    translate: list | None = None               # argv with TERM -> QUIT, None: cannot
    own_children: bool = False                  # its direct children are its own helpers
    env: dict | None = None                     # None: the harness's container environment
    version: str = ""
    role: dict | None = None                    # initd only: run the app as a role with these keys
    base_argv: list | None = None               # initd only: the command before its options


@dataclass
class Tools:
    tmp: str
    launch: str
    sigecho: str
    sigstamp: str
    orphans: str
    log_path: str
    log_fd: int
    env: dict = field(default_factory=dict)
    counter: int = 0

    def fifo(self):
        """A fresh fifo path in the temp dir."""
        self.counter += 1
        path = os.path.join(self.tmp, f"fifo{self.counter}")
        os.mkfifo(path, 0o600)
        return path

    def close(self):
        os.close(self.log_fd)
        shutil.rmtree(self.tmp, ignore_errors=True)


def default_initd():
    """The `initd` command installed with this interpreter (a virtualenv's, as
    `./dev` makes), which is how an image starts initd: since issue 15 a small
    C launcher that runs `python -I -S`, so PYTHONPATH is ignored and it
    imports the installed copy. It is used when that copy is this checkout's
    (`./dev` reinstalls on every change); else `python -m initd`, which
    imports the checkout through PYTHONPATH and costs runpy's imports (about
    9 ms) more."""
    script = os.path.join(os.path.dirname(sys.executable), "initd")
    if os.access(script, os.X_OK) and _installed_is_checkout():
        return shlex.quote(script)
    return f"{shlex.quote(sys.executable)} -m initd"


def _installed_is_checkout():
    """Whether the initd package in site-packages has the checkout's sources."""
    import hashlib
    import sysconfig
    installed = os.path.join(sysconfig.get_paths()["purelib"], "initd")
    checkout = os.path.join(REPO, "initd")

    def digest(folder):
        h = hashlib.sha256()
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith((".py", ".json")))
            for name in names:
                with open(os.path.join(folder, name), "rb") as f:
                    h.update(name.encode() + b"\0" + f.read())
        except OSError:
            return None
        return h.hexdigest()

    return digest(installed) is not None and digest(installed) == digest(checkout)


def prepare_tools(pythonpath=REPO):
    """Compile the helper apps into a temp dir; the environment every
    container gets (initd importable from this checkout)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler (cc or gcc) to build the benchmark apps")
    _remove_stale_tmp()
    tmp = tempfile.mkdtemp(prefix=f"initd-bench-{os.getpid()}-")
    paths = {}
    for app in APPS:
        out = os.path.join(tmp, app)
        cmd = [cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
               os.path.join(APPS_DIR, f"{app}.c")]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BenchError(f"cannot compile {app}.c: {done.stderr.strip()}")
        paths[app] = out
    log_path = os.path.join(tmp, "containers.log")
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    return Tools(tmp=tmp, log_path=log_path, log_fd=log_fd,
                 env=container_env(tmp, pythonpath), **paths)


def _remove_stale_tmp():
    """Temp dirs of harnesses that were SIGKILLed (nothing else can leak:
    their containers died with them)."""
    base = tempfile.gettempdir()
    for entry in os.listdir(base):
        parts = entry.split("-")
        if entry.startswith("initd-bench-") and len(parts) >= 4 and parts[2].isdigit():
            if not os.path.exists(f"/proc/{parts[2]}"):
                shutil.rmtree(os.path.join(base, entry), ignore_errors=True)


def container_env(tmp, pythonpath):
    """The environment of every container, with initd importable from pythonpath."""
    env = dict(os.environ)
    # A container ships its .pyc files (pip compiles them on install); without
    # them initd would recompile itself on every start. Cache them in the temp
    # dir, not in the checkout.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    return env


def check_unshare():
    if not shutil.which("unshare"):
        raise BenchError("unshare not found (util-linux)")
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise BenchError("cannot create PID namespaces here (`unshare --pid --fork "
                         f"--mount-proc true`: {done.stderr.strip()}); run as root or in a "
                         "privileged container")


def ensure_shim(pythonpath=REPO):
    shim = os.path.join(pythonpath, "initd", "_bin", "ppidshim")
    if os.access(shim, os.X_OK):
        return
    if os.path.abspath(pythonpath) != REPO:
        raise BenchError(f"{shim} missing: build it in that copy (setup.py build_py)")
    print(f"bench: {shim} missing; building it with `setup.py build_py`", file=sys.stderr)
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_py"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not os.access(shim, os.X_OK):
        raise BenchError(f"cannot build {shim}: {done.stderr.strip()[-500:]}")


def ensure_reference_inits(install=True):
    """Install missing reference inits with apt-get when we can; the names
    still missing afterwards (their columns are then empty)."""
    missing = [name for name in PACKAGES if not shutil.which(name)]
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        pkgs = [PACKAGES[n] for n in missing]
        print(f"bench: installing {' '.join(pkgs)} with apt-get", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            done = subprocess.run(["apt-get", "install", "-y", "-q", *pkgs], env=env,
                                  capture_output=True, timeout=600)
            if done.returncode != 0:
                subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True,
                               timeout=600)
                subprocess.run(["apt-get", "install", "-y", "-q", *pkgs], env=env,
                               capture_output=True, timeout=600)
        except subprocess.TimeoutExpired:
            pass
        missing = [name for name in PACKAGES if not shutil.which(name)]
    for name in missing:
        print(f"bench: {name} not installed (apt-get install {PACKAGES[name]}); "
              "its column is left empty", file=sys.stderr)
    return missing


def _version(argv, env):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else ""


def inits(initd_argv, missing, tools, compare=()):
    """The inits under test, initd first (the order of every round); for each
    (directory, argv) in compare, another initd imported from that directory
    (a patched copy): initd*, initd**, ..."""
    result = [_initd("initd", initd_argv)]
    for k, (where, argv) in enumerate(compare):
        ensure_shim(where)
        result.append(_initd("initd" + "*" * (k + 1), argv, container_env(tools.tmp, where)))
    result += [Init("tini", ["tini", "--"]),
               Init("dumb-init", ["dumb-init", "--"], translate=["dumb-init", "-r", "15:3", "--"]),
               Init("catatonit", ["catatonit", "--"])]
    result = [i for i in result if i.name not in missing]
    for i in result:
        i.version = _version([*i.argv[:-1], "--version"], i.env or tools.env)
    return result


def initd_with_role(name, initd_argv, keys, tools):
    """initd running its app as a role with these extra keys (for the
    forwarding benchmark), or None and a one-line reason when this initd
    rejects them (`initd check`): a key still being built, say."""
    path = os.path.join(tools.tmp, "check-roles.json")
    with open(path, "w") as f:
        json.dump({"bench": {**keys, "command": ["/bin/true"]}}, f)
    try:
        done = subprocess.run([*initd_argv, "check", "--roles", path, "--role", "bench"],
                              capture_output=True, text=True, timeout=30, env=tools.env,
                              cwd="/")
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"`initd check` failed: {e}"
    finally:
        os.unlink(path)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return None, lines[-1] if lines else f"`initd check` exited {done.returncode}"
    init = _initd(name, initd_argv)
    init.role, init.base_argv = keys, list(initd_argv)
    return init, None


def _initd(name, initd_argv, env=None):
    return Init(name, [*initd_argv, "--"],
                # A stop timer would SIGKILL the app 7 s after the first TERM:
                # this benchmark sends thousands of TERMs the app survives.
                translate=[*initd_argv, "--map", "TERM:QUIT", "--stop-timeout", "86400", "--"],
                own_children=True,  # the ppidshim, PID 2; the app is PID 3
                env=env)


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "commit": machine_commit(),
    }


def machine_commit():
    """The checkout's commit, +dirty when tracked files have changes."""
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "an unknown commit"
    return (commit or "an unknown commit") + ("+dirty" if dirty else "")

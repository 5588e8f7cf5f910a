"""initd is PID 1, the ppidshim PID 2, the app PID 3 whose parent is the shim."""
import json
import os
import shutil
import subprocess
import sys
import signal

from helpers import MODES, REPO, app, children, proc_status, run_initd, signal_set, sleep_until


def test_pid_1_2_3_tree_and_getppid():
    code, out, err = run_initd(["--", "sh", "-c",
                                "echo app=$$ parent=$PPID; ps -o pid=,ppid=,args= -p 1,2"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "app=3 parent=2"
    assert lines[1].split(None, 2) == ["1", "0", "initd: sh"]
    assert lines[2].split(None, 2) == ["2", "1", "ppidshim: sh"]


def test_python_app_sees_ppid_2_not_1():
    code, out, _ = run_initd(["--", app("printsig.py")[0], "-c",
                              "import os; print(os.getpid(), os.getppid())"])
    assert (code, out.split()) == (0, ["3", "2"])


def test_role_titles_in_ps(tmp_path):
    roles = tmp_path / "roles.json"
    roles.write_text('{"web": "ps -o args= -p 1,2"}')
    code, out, err = run_initd(["--roles", str(roles), "--role", "web"])
    assert code == 0, err
    assert out.splitlines() == ["initd: web", "ppidshim: web"]


def test_subreaper_when_not_pid1(initd):
    proc = initd(["-v", "--"] + app("printsig.py", "--exit-on", "TERM:7"), mode="subreaper")
    proc.expect("ready")
    proc.expect("registered as a child subreaper", stream="err")
    status = proc_status(proc.pid)
    assert status["PPid"] == str(os.getpid())
    shim = sleep_until(lambda: children(proc.pid))[0]
    app_pid = sleep_until(lambda: children(shim))[0]
    assert proc_status(app_pid)["PPid"] == str(shim)
    proc.kill(signal.SIGTERM)
    proc.expect("got SIGTERM")
    assert proc.wait() == 7


def test_child_starts_clean(initd):
    """Empty signal mask, nothing ignored (Python ignores PIPE and XFSZ), no fds >= 3."""
    proc = initd(["--"] + app("printsig.py", "--exit-on", "TERM:0"))
    line = proc.expect("ready")
    app_pid = sleep_until(lambda: children(sleep_until(lambda: children(proc.pid))[0]))[0]
    status = proc_status(app_pid)
    assert signal_set(status["SigBlk"]) == set()
    # printsig installs handlers (SigCgt) but ignores nothing.
    assert signal_set(status["SigIgn"]) == set()
    fds = sorted(int(fd) for fd in os.listdir(f"/proc/{app_pid}/fd"))
    assert fds == [0, 1, 2], line
    proc.kill(signal.SIGTERM)
    assert proc.wait() == 0


def test_child_of_exec_gets_default_dispositions():
    # `sh` would reset nothing itself: read the exec'd program's own view.
    code, out, _ = run_initd(["--", "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
    assert code == 0
    for line in out.splitlines():
        assert signal_set(line.split()[1]) == set(), line


def test_initd_runs_from_root_and_app_from_caller_cwd(tmp_path):
    code, out, _ = run_initd(["--", "sh", "-c", "pwd; readlink /proc/1/cwd"], cwd=tmp_path)
    assert code == 0
    assert out.splitlines() == [str(tmp_path), "/"]


def test_role_user_env_and_workdir(tmp_path):
    """Supplementary groups, then gid, then uid; HOME from passwd; the role's
    env and workdir."""
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"web": {
        "command": ["sh", "-c", 'id -u; id -g; id -G; echo "$HOME $GREETING"; pwd'],
        "user": "nobody", "env": {"GREETING": "hello"}, "workdir": "/tmp"}}))
    code, out, err = run_initd(["--roles", str(roles), "--role", "web"])
    assert code == 0, err
    import pwd
    nobody = pwd.getpwnam("nobody")
    assert out.splitlines() == [str(nobody.pw_uid), str(nobody.pw_gid),
                                " ".join(map(str, os.getgrouplist("nobody", nobody.pw_gid))),
                                f"{nobody.pw_dir} hello", "/tmp"]


def test_string_command_execs_so_the_app_is_pid3(tmp_path):
    """Debian's dash does not exec the last command of sh -c by itself."""
    probe = "import os; print(os.getpid(), os.getppid(), os.environ['GREETING'])"
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({
        "web": f"GREETING='hello there' {sys.executable} -c \"{probe}\"",
        "compound": f"true | {sys.executable} -c \"import os; print(os.getppid())\""}))
    assert run_initd(["--roles", str(roles), "--role", "web"])[1] == "3 2 hello there\n"
    # A pipeline keeps the shell (PID 3) as the app's parent (see test_procfile*.py).
    assert run_initd(["--roles", str(roles), "--role", "compound"])[1] == "3\n"


def test_user_switch_works_when_the_user_cannot_reach_initd(tmp_path):
    """Regression: initd installed under a 0700 directory (a root-only venv or
    checkout): the shim is exec'd from an fd opened before the user switch."""
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    checkout = hidden / "checkout"
    shutil.copytree(os.path.join(REPO, "initd"), checkout / "initd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"web": {"command": ["id", "-un"], "user": "nobody",
                                         "workdir": "/"}}))
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                           sys.executable, "-m", "initd", "--roles", str(roles), "--role", "web"],
                          capture_output=True, text=True, timeout=20, cwd="/",
                          env={**os.environ, "PYTHONPATH": str(checkout)})
    assert (proc.returncode, proc.stdout) == (0, "nobody\n"), proc.stderr
    # The FQDN library is loaded by the app as that user: say it cannot be.
    roles.write_text(json.dumps({"web": {"command": ["hostname"], "user": "nobody",
                                         "workdir": "/", "fqdn": "app.example.com"}}))
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                           sys.executable, "-m", "initd", "--roles", str(roles), "--role", "web"],
                          capture_output=True, text=True, timeout=20, cwd="/",
                          env={**os.environ, "PYTHONPATH": str(checkout)})
    assert "libinitd_fqdn.so: not readable by the app's user" in proc.stderr, proc.stderr


def test_app_output_passes_through_untouched(mode):
    """Bytes, not lines: NULs, invalid UTF-8, no trailing newline, both streams."""
    script = ("import os; os.write(1, bytes(range(256)) + b'no newline'); "
              "os.write(2, b'\\xff\\xfe err \\x00 end')")
    proc = subprocess.run(MODES[mode] + [sys.executable, "-m", "initd", "--", sys.executable,
                                         "-c", script],
                          capture_output=True, timeout=20, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0
    assert proc.stdout == bytes(range(256)) + b"no newline"
    assert proc.stderr == b"\xff\xfe err \x00 end"

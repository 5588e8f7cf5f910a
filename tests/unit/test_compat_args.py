"""tini's and dumb-init's command lines and environment -> Settings, and
initd's own long options for the same things. Pure parsing, no processes."""
import signal

import pytest

from initd import cli, compat, plan
from initd.errors import InitdError


def tini(*argv, env=None):
    return compat.parse_tini(list(argv), env or {})


def dumb(*argv, env=None):
    return compat.parse_dumb_init(list(argv), env or {})


def error(parse, *argv, env=None):
    with pytest.raises(InitdError) as e:
        parse(*argv, env=env)
    return e.value


# -- who we are ------------------------------------------------------------------

@pytest.mark.parametrize("prog, env, expected", [
    ("/usr/bin/tini", {}, "tini"),
    ("tini-static-amd64", {}, "tini"),
    ("/sbin/docker-init", {}, "tini"),
    ("/usr/local/bin/dumb-init", {}, "dumb-init"),
    ("dumb-init_1.2.5_x86_64", {}, "dumb-init"),
    ("/usr/local/bin/initd", {}, "initd"),
    ("/x/initd/__main__.py", {}, "initd"),
    ("tinier", {}, "initd"),
    ("/usr/local/bin/initd", {"INITD_AS": "dumb-init"}, "dumb-init"),
    ("/usr/bin/tini", {"INITD_AS": "initd"}, "initd"),   # the variable wins over the name
    ("/usr/bin/tini", {"INITD_AS": ""}, "tini"),
])
def test_personality(prog, env, expected):
    assert compat.personality(prog, env) == expected


def test_unknown_initd_as_is_an_error():
    with pytest.raises(InitdError, match='INITD_AS: expected tini, dumb-init or initd, got "tiny"'):
        compat.personality("initd", {"INITD_AS": "tiny"})


# -- tini -------------------------------------------------------------------------

def test_tini_defaults():
    s = tini("--", "app", "-x")
    assert s.personality == "tini"
    assert s.command == ["app", "-x"]
    assert s.subreaper is False          # only with -s, unlike plain initd
    assert s.process_group is None and s.warn_on_reap is None and s.exit_zero == []
    assert s.pdeathsig is None and s.setsid is None and s.job_control is None
    assert s.verbose == 0                # tini's level 1: warnings


@pytest.mark.parametrize("argv, field, value", [
    (["-s", "app"], "subreaper", True),
    (["-g", "app"], "process_group", True),
    (["-w", "app"], "warn_on_reap", True),
    (["-p", "SIGKILL", "app"], "pdeathsig", "SIGKILL"),
    (["-pSIGTERM", "app"], "pdeathsig", "SIGTERM"),
    (["-e", "143", "app"], "exit_zero", ["143"]),
    (["-e", "3", "-e4", "-e", "+5", "app"], "exit_zero", ["3", "4", "5"]),
    (["-v", "app"], "verbose", 1),
    (["-vvv", "app"], "verbose", 3),
    (["-sgwv", "-e", "1", "app"], "exit_zero", ["1"]),
])
def test_tini_flags(argv, field, value):
    assert getattr(tini(*argv), field) == value


def test_tini_cluster_sets_everything():
    s = tini("-sgwvv", "-e", "143", "-p", "SIGTERM", "--", "app")
    assert (s.subreaper, s.process_group, s.warn_on_reap, s.verbose, s.exit_zero, s.pdeathsig) == \
        (True, True, True, 2, ["143"], "SIGTERM")


@pytest.mark.parametrize("argv, command", [
    (["app", "a", "b"], ["app", "a", "b"]),
    (["--", "app", "-s"], ["app", "-s"]),
    (["app", "--", "-x"], ["app", "-x"]),          # tini's documented PROGRAM -- ARGS
    (["-g", "app", "--", "-g"], ["app", "-g"]),
    (["-", "x"], ["-", "x"]),
])
def test_tini_operands(argv, command):
    assert tini(*argv).command == command


def test_tini_permutes_options_after_the_program_like_gnu_getopt():
    s = tini("app", "-g", "x")
    assert s.command == ["app", "x"] and s.process_group is True
    assert tini("ls", "-l").action == "license"    # tini's own trap, kept


def test_tini_posixly_correct_stops_at_the_program():
    s = tini("app", "-g", "x", env={"POSIXLY_CORRECT": "1"})
    assert s.command == ["app", "-g", "x"] and s.process_group is None


@pytest.mark.parametrize("argv, action", [
    (["--version"], "version"), (["-h"], "help"), (["-l"], "license"),
    (["-s", "-h", "-p", "BAD"], "help"),   # acted on in order, as getopt does
])
def test_tini_actions(argv, action):
    assert tini(*argv).action == action


@pytest.mark.parametrize("argv, message", [
    ([], "no program to run"),
    (["-s"], "no program to run"),
    (["-x", "app"], "invalid option -- 'x'"),
    (["--version", "app"], "unrecognized option '--version'"),
    (["--subreaper", "app"], "unrecognized option '--subreaper'"),
    (["-p"], "option requires an argument -- 'p'"),
    (["app", "-e"], "option requires an argument -- 'e'"),
    (["-p", "KILL", "app"], "-p: not a valid signal: KILL"),
    (["-p", "SIGRTMIN", "app"], "-p: not a valid signal"),
    (["-p", "9", "app"], "-p: not a valid signal"),
    (["-e", "256", "app"], "-e: not a valid exit code: 256"),
    (["-e", "-1", "app"], "-e: not a valid exit code"),
    (["-e", "3x", "app"], "-e: not a valid exit code"),
    (["-e", "", "app"], "-e: not a valid exit code"),
])
def test_tini_errors_exit_1(argv, message):
    e = error(tini, *argv)
    assert e.exit_code == 1
    assert message in str(e) and str(e).startswith("tini: ")


@pytest.mark.parametrize("env, field, value", [
    ({"TINI_SUBREAPER": ""}, "subreaper", True),         # set at all counts
    ({"TINI_SUBREAPER": "0"}, "subreaper", True),
    ({"TINI_KILL_PROCESS_GROUP": "1"}, "process_group", True),
    ({"TINI_KILL_PROCESS_GROUP": ""}, "process_group", True),
    ({"TINI_VERBOSITY": "0"}, "verbose", -1),            # errors only
    ({"TINI_VERBOSITY": "1"}, "verbose", 0),
    ({"TINI_VERBOSITY": "3"}, "verbose", 2),
    ({"TINI_VERBOSITY": "junk"}, "verbose", -1),         # atoi
])
def test_tini_environment(env, field, value):
    assert getattr(tini("app", env=env), field) == value


def test_tini_verbosity_variable_replaces_the_v_count():
    assert tini("-vvv", "app", env={"TINI_VERBOSITY": "0"}).verbose == -1


# -- dumb-init -------------------------------------------------------------------

def test_dumb_init_defaults_setsid_group_job_control():
    s = dumb("app", "-x")
    assert s.personality == "dumb-init"
    assert s.command == ["app", "-x"]
    assert s.setsid is True and s.process_group is True and s.job_control is True
    assert s.exec_error == 2
    assert s.maps == [] and s.verbose == 0 and s.subreaper is None


@pytest.mark.parametrize("argv", [["-c", "app"], ["--single-child", "app"], ["--single", "app"]])
def test_dumb_init_single_child(argv):
    s = dumb(*argv)
    assert s.setsid is False and s.process_group is False and s.job_control is True


@pytest.mark.parametrize("argv, maps", [
    (["-r", "15:3", "app"], ["15:3"]),
    (["-r15:3", "app"], ["15:3"]),
    (["--rewrite", "15:3", "app"], ["15:3"]),
    (["--rewrite=15:3", "app"], ["15:3"]),
    (["--rew=10:0", "app"], ["10:0"]),
    (["-r", "15:3", "-r", "15:2", "app"], ["15:2"]),      # the last one wins
    (["-r", " 15: 3junk", "app"], ["15:3"]),               # sscanf("%d:%d")
    (["-r", "9:15", "-r", "17:1", "-r", "11:1", "app"], []),  # never received: no effect
])
def test_dumb_init_rewrite(argv, maps):
    assert dumb(*argv).maps == maps


def test_dumb_init_rewrite_maps_parse_as_initd_maps():
    s = dumb("-r", "10:12", "-r", "1:0", "app")
    assert plan._signal_overrides(s) == {signal.SIGUSR1: signal.SIGUSR2, signal.SIGHUP: 0}


@pytest.mark.parametrize("argv", [["-v", "app"], ["--verbose", "app"], ["--verb", "app"]])
def test_dumb_init_verbose_is_debug(argv):
    assert dumb(*argv).verbose == 2


@pytest.mark.parametrize("argv, action", [
    (["-h"], "help"), (["--help"], "help"), (["--he"], "help"),
    (["-V"], "version"), (["--version"], "version"), (["--vers"], "version"),
    (["-c", "-h", "app"], "help"),
])
def test_dumb_init_actions(argv, action):
    assert dumb(*argv).action == action


def test_dumb_init_options_stop_at_the_program():
    s = dumb("app", "-c", "-v")
    assert s.command == ["app", "-c", "-v"] and s.setsid is True and s.verbose == 0
    assert dumb("--", "-c").command == ["-c"]


@pytest.mark.parametrize("argv, message", [
    ([], "no program to run"),
    (["-c"], "no program to run"),
    (["-x", "app"], "invalid option -- 'x'"),
    (["--nope", "app"], "unrecognized option '--nope'"),
    (["--ver", "app"], "option '--ver' is ambiguous"),
    (["--help=1"], "option '--help' doesn't allow an argument"),
    (["-r"], "option requires an argument -- 'r'"),
    (["--rewrite"], "option '--rewrite' requires an argument"),
    (["-r", "99:1", "app"], "-r takes <signum>:<signum>"),
    (["-r", "15:32", "app"], "-r takes"),
    (["-r", "0:1", "app"], "-r takes"),
    (["-r", "TERM:QUIT", "app"], "-r takes"),
    (["-r", "15", "app"], "-r takes"),
])
def test_dumb_init_errors_exit_1(argv, message):
    e = error(dumb, *argv)
    assert e.exit_code == 1
    assert message in str(e) and str(e).startswith("dumb-init: ")


@pytest.mark.parametrize("env, setsid, verbose", [
    ({"DUMB_INIT_SETSID": "0"}, False, 0),
    ({"DUMB_INIT_SETSID": "1"}, True, 0),
    ({"DUMB_INIT_SETSID": "no"}, True, 0),     # only exactly "0" counts
    ({"DUMB_INIT_DEBUG": "1"}, True, 2),
    ({"DUMB_INIT_DEBUG": "yes"}, True, 0),     # only exactly "1" counts
])
def test_dumb_init_environment(env, setsid, verbose):
    s = dumb("app", env=env)
    assert (s.setsid, s.process_group, s.verbose) == (setsid, setsid, verbose)


# -- the resolved role: setsid turns TSTP/TTIN/TTOU into STOP -----------------------

def test_setsid_delivers_job_control_signals_as_stop():
    role = plan._role(dumb("app"))
    for sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        assert role.signals[sig] == signal.SIGSTOP
    assert role.process_group is True


def test_setsid_stop_default_yields_to_a_rewrite():
    role = plan._role(dumb("-r", "20:10", "app"))
    assert role.signals[signal.SIGTSTP] == signal.SIGUSR1
    assert role.signals[signal.SIGTTIN] == signal.SIGSTOP


@pytest.mark.parametrize("s", [dumb("-c", "app"), dumb("app", env={"DUMB_INIT_SETSID": "0"}),
                               tini("app"), cli.parse_args(["app"], {})])
def test_no_setsid_no_stop_rewrite(s):
    assert signal.SIGTSTP not in plan._role(s).signals


# -- plain initd: the same under readable names -----------------------------------

@pytest.mark.parametrize("argv, env, expected", [
    (["--subreaper"], {}, {"subreaper": True}),
    (["--no-subreaper"], {}, {"subreaper": False}),
    ([], {"INITD_SUBREAPER": "1"}, {"subreaper": True}),
    ([], {"INITD_SUBREAPER": "0"}, {"subreaper": False}),
    (["--subreaper"], {"INITD_SUBREAPER": "0"}, {"subreaper": True}),   # option wins
    (["--parent-death-signal", "KILL"], {}, {"pdeathsig": "KILL"}),
    (["--parent-death-signal=SIGTERM"], {}, {"pdeathsig": "SIGTERM"}),
    ([], {"INITD_PARENT_DEATH_SIGNAL": "TERM"}, {"pdeathsig": "TERM"}),
    (["--exit-zero", "143", "--exit-zero=130"], {}, {"exit_zero": ["143", "130"]}),
    ([], {"INITD_EXIT_ZERO": "143 130,3"}, {"exit_zero": ["143", "130", "3"]}),
    (["--warn-on-reap"], {}, {"warn_on_reap": True}),
    ([], {"INITD_WARN_ON_REAP": "1"}, {"warn_on_reap": True}),
    ([], {"INITD_WARN_ON_REAP": "0"}, {"warn_on_reap": None}),
    (["--setsid"], {}, {"setsid": True}),
    (["--no-setsid"], {"INITD_SETSID": "1"}, {"setsid": False}),
    ([], {"INITD_SETSID": "1"}, {"setsid": True}),
    ([], {"INITD_SETSID": "0"}, {"setsid": False}),
    (["--single-child"], {}, {"setsid": False, "process_group": False}),
    (["--process-group", "--single-child"], {}, {"process_group": False}),
    ([], {"INITD_SINGLE_CHILD": "1"}, {"setsid": False, "process_group": False}),
    (["--job-control"], {}, {"job_control": True}),
    ([], {"INITD_JOB_CONTROL": "true"}, {"job_control": True}),
    ([], {}, {"subreaper": None, "setsid": None, "job_control": None, "warn_on_reap": None,
              "exit_zero": [], "pdeathsig": None, "personality": "initd"}),
])
def test_initd_long_options_and_environment(argv, env, expected):
    s = cli.parse_args(argv + ["--", "app"], env)
    assert {k: getattr(s, k) for k in expected} == expected
    assert s.command == ["app"]


def test_initd_flag_variable_must_be_a_flag():
    with pytest.raises(InitdError, match='INITD_SETSID: expected 1 or 0'):
        cli.parse_args(["app"], {"INITD_SETSID": "maybe"})


@pytest.mark.parametrize("argv, message", [
    (["--exit-zero", "256"], '--exit-zero: expected an exit code 0-255, got "256"'),
    (["--exit-zero", "x"], '--exit-zero: expected an exit code 0-255, got "x"'),
])
def test_initd_bad_exit_code(argv, message):
    with pytest.raises(InitdError, match=message):
        plan._exit_codes(cli.parse_args(argv + ["app"], {}))


def test_initd_bad_parent_death_signal():
    s = cli.parse_args(["app"], {"INITD_PARENT_DEATH_SIGNAL": "TREM"})
    with pytest.raises(InitdError, match='INITD_PARENT_DEATH_SIGNAL: unknown signal "TREM" '
                                         r'\(try TERM\)'):
        plan._parent_death_signal(s)


def test_parent_death_signal_from_tini_spelling():
    assert plan._parent_death_signal(tini("-p", "SIGKILL", "app")) == signal.SIGKILL
    assert plan._parent_death_signal(tini("app")) == 0


def test_install_compat_command_line():
    s = cli.parse_args(["install-compat", "/usr/local/bin"], {})
    assert (s.action, s.install_dir) == ("install-compat", "/usr/local/bin")
    for argv in (["install-compat"], ["install-compat", "a", "b"], ["install-compat", "-h"]):
        with pytest.raises(InitdError, match="usage: initd install-compat DIR"):
            cli.parse_args(argv, {})


def test_usage_names_every_new_option_and_variable():
    for text in ("--subreaper", "--no-subreaper", "--parent-death-signal", "--exit-zero",
                 "--warn-on-reap", "--setsid", "--no-setsid", "--single-child", "--job-control",
                 "INITD_SUBREAPER", "INITD_PARENT_DEATH_SIGNAL", "INITD_EXIT_ZERO",
                 "INITD_WARN_ON_REAP", "INITD_SETSID", "INITD_SINGLE_CHILD", "INITD_JOB_CONTROL",
                 "install-compat", "INITD_AS"):
        assert text in cli.USAGE, text


# -- what they print --------------------------------------------------------------

@pytest.mark.parametrize("parse, argv, stream, text", [
    (tini, ["-h"], "out", "Usage: tini [OPTIONS] PROGRAM -- [ARGS] | --version"),
    (tini, ["--version"], "out", f"tini version {compat.TINI_VERSION}"),
    (tini, ["-l"], "out", "MIT License"),
    (dumb, ["--help"], "err", "Usage: dumb-init [option] command [[arg] ...]"),
    (dumb, ["-V"], "err", f"dumb-init v{compat.DUMB_INIT_VERSION}"),
])
def test_show_prints_where_the_original_does(capsys, parse, argv, stream, text):
    assert compat.show(parse(*argv)) == 0
    out, err = capsys.readouterr()
    assert text in (out if stream == "out" else err)
    assert not (err if stream == "out" else out)

"""procfile.plan_line: which Procfile lines get `exec` before their last
command, and why the others keep /bin/sh as the receiver of the signals."""
import json

import pytest

from initd import config, procfile


@pytest.mark.parametrize("line, script", [
    # one simple command (as before)
    ("bundle exec unicorn -c x.rb", "exec bundle exec unicorn -c x.rb"),
    ('FOO=1 BAR="a b" app --x', 'FOO=1 BAR="a b" exec app --x'),
    ("RACK_ENV=production rake resque:work QUEUE=mail",
     "RACK_ENV=production exec rake resque:work QUEUE=mail"),
    ("app > /tmp/log 2>&1", "exec app > /tmp/log 2>&1"),
    ("  app  ", "  exec app  "),
    ("app --host $(hostname) `id -u`", "exec app --host $(hostname) `id -u`"),
    ("app ${PORT:-5000;x} $((1 + 2))", "exec app ${PORT:-5000;x} $((1 + 2))"),
    # lists joined by && and ;
    ("migrate && serve", "migrate && exec serve"),
    ("a; b", "a; exec b"),
    ("a;b", "a;exec b"),
    ("a&&b", "a&&exec b"),
    ("a; b;", "a; exec b;"),
    ("cd dir && B", "cd dir && exec B"),
    ("A && B && C", "A && B && exec C"),
    ("A; B && C; D", "A; B && C; exec D"),
    ("A && X=1 Y='a b' Z=\"c d\" B", "A && X=1 Y='a b' Z=\"c d\" exec B"),
    ("A=1 && b", "A=1 && exec b"),
    ("bundle exec rake db:migrate && bundle exec unicorn -c config/unicorn.rb",
     "bundle exec rake db:migrate && exec bundle exec unicorn -c config/unicorn.rb"),
    ("a > log 2>&1 && b >>log 2>&1 </dev/null", "a > log 2>&1 && exec b >>log 2>&1 </dev/null"),
    ("a | b > x && c", None),  # a pipeline before: see the reasons below
    # quotes, escapes and comments: the operators inside are not the line's
    ("a && 'b && c'", "a && exec 'b && c'"),
    ('a "&&" b', 'exec a "&&" b'),
    (r"a \&\& b \; c", r"exec a \&\& b \; c"),
    ('a "x \\" && y" && b', 'a "x \\" && y" && exec b'),
    ("a && app 'it''s' \"$HOME\"", "a && exec app 'it''s' \"$HOME\""),
    ("a # && b | c", "exec a # && b | c"),
    ("a && b # c | d", "a && exec b # c | d"),
    ("a#b && c", "a#b && exec c"),
    ("app $(echo a && b | c)", "exec app $(echo a && b | c)"),
    ("app \"$(x; y)\" `a | b`", "exec app \"$(x; y)\" `a | b`"),
    ("true $(echo ')') && b", "true $(echo ')') && exec b"),
    # already there
    ("exec app", "exec app"),
    ("a && exec b", "a && exec b"),
    ("FOO=1 exec app", "FOO=1 exec app"),
])
def test_lists_of_simple_commands_exec_the_last_one(line, script):
    argv, receiver = procfile.plan_line(line)
    if script is None:
        assert receiver is not None and argv == ("/bin/sh", "-c", line)
    else:
        assert (argv, receiver) == (("/bin/sh", "-c", script), None)


@pytest.mark.parametrize("line, why", [
    ("app | logger", "the line is a pipeline"),
    ("a && b | c", "the line is a pipeline"),
    ("a |& b", "the line is a pipeline"),
    ("app &", "in the background (&)"),
    ("a & b", "in the background (&)"),
    ("a &> log", "&> (bash only"),
    ("a || b", "uses ||"),
    ("a && b || c", "uses ||"),
    ("(a; b)", "subshell"),
    ("a && (b)", "subshell"),
    ("f() { a; }", "subshell or a function"),
    ("a <<< x", "here-string"),
    ("cat << EOF", "here-document"),
    ("a;;b", "case"),
    ("if true; then app; fi", "'if'"),
    ("while true; do app; done", "'while'"),
    ("for i in 1; do app; done", "'for'"),
    ("a && { b; }", "'{'"),
    ("! a", "'!'"),
    ("time a", "'time'"),
    ("a\nb", "several lines"),
    ("a && \\\nb", "several lines"),
    ("a\r", "several lines"),
    ("X=1", "only sets variables"),
    ("A && X=$(b)", "only sets variables"),
    ("A;exec", "runs no command"),
    ("a && exec >log", "runs no command"),
    ("a && exit 3", "exit, is a shell builtin"),
    ("cd x", "cd, is a shell builtin"),
    ("a; . ./env", "., is a shell builtin"),
    ("a && 2>x b", "starts with a redirection"),
    ("a && >x b", "starts with a redirection"),
    ("a && $(which b) c", "command name comes from $(...)"),
    ("`which b` c", "command name comes from $(...)"),
    ('app "unbalanced', 'unbalanced " quote'),
    ("app 'unbalanced", "unbalanced ' quote"),
    ("app `x", "unbalanced ` quote"),
    ("app $(x", "unbalanced ("),
    ("app ${x", "unbalanced {"),
    ("app \\", "ends with a backslash"),
    ("x=$(case a in a) b;; esac) && c", "$(...) initd cannot read"),
    ("a &&", "not a complete list"),
    ("; a", "not a complete list"),
    ("a;; ", "case"),
    ("", "not a complete list"),
])
def test_other_lines_run_as_written_and_say_why(line, why):
    argv, receiver = procfile.plan_line(line)
    assert argv == ("/bin/sh", "-c", line)
    assert receiver.startswith("/bin/sh, not your app: ")
    assert why in receiver
    assert receiver.endswith("(put exec before the last command, or run a script that ends with exec)")


def test_the_rewrite_only_inserts_exec():
    """Every byte of the line is kept: the five inserted are `exec `."""
    line = "  A='x  y' cd \"d  \" ;\tK=\\ v  app\t-x  '#' # c"
    script = procfile.plan_line(line)[0][2]
    assert script == "  A='x  y' cd \"d  \" ;\tK=\\ v  exec app\t-x  '#' # c"
    assert script.replace("exec ", "", 1) == line


def test_plan_command_runs_an_argv_list_as_is():
    assert procfile.plan_command(["a", "&&", "b"]) == (("a", "&&", "b"), None)
    assert procfile.plan_command("a && b") == (("/bin/sh", "-c", "a && exec b"), None)


def test_config_stores_the_rewritten_argv(tmp_path):
    path = tmp_path / "roles.json"
    path.write_text(json.dumps({"web": "migrate && serve -p 5000", "log": "app | logger"}))
    data = config.load(str(path))
    assert (config.parse_role(data, "web", str(path)).argv
            == ("/bin/sh", "-c", "migrate && exec serve -p 5000"))
    assert config.parse_role(data, "log", str(path)).argv == ("/bin/sh", "-c", "app | logger")

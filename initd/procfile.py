"""A Procfile line -> the argv that runs it, and who receives the signals.

A string command runs as `/bin/sh -c LINE`. Debian's dash does not exec the
last command of `-c` by itself (bash does, for a single command only), so
without help the shell stays the app's parent and gets the stop signal: a
Unicorn behind `migrate && unicorn` never hears `docker stop`, the shell dies
of the QUIT and Unicorn is cut off. So when the line is a list of simple
commands joined by `&&` or `;`, `exec` goes in front of the last one (after
its `NAME=value` words): `A && exec B` still stops before B when A fails,
`A; exec B` still runs B when A fails, and B replaces the shell and keeps its
pid. Everything else is run as written, and plan_line says why, so the start
log and `initd check` can tell the user the stop signal reaches /bin/sh.

The scanner below reads the line the way a POSIX shell splits it into words
and operators (quotes, backslashes, `$(...)`, `${...}`, backquotes, comments),
keeping each token's position so the rewrite only inserts five bytes and
leaves the rest of the line exactly as written. When it is unsure it does
not rewrite. Pure: no OS calls.
"""

SHELL = "/bin/sh"
HINT = "put exec before the last command, or run a script that ends with exec"
NOT_THE_APP = "/bin/sh, not your app"

# Operators, longest first (a shell reads the longest it can).
_OPERATORS = ("<<<", "<<-", "&&", "||", ";;", "|&", "&>", ">>", "<<", "<&", ">&", "<>", ">|",
              ";", "&", "|", "(", ")", "<", ">")
_OPERATOR_START = set(";&|()<>")
_REDIRECTIONS = {">", ">>", "<", "<&", ">&", "<>", ">|"}
# Operators that make the line something other than a list of simple commands.
_WHY = {
    "|": "the line is a pipeline",
    "|&": "the line is a pipeline",
    "&": "the line runs a command in the background (&)",
    "&>": "the line uses &> (bash only; /bin/sh reads it as & and >)",
    "||": "the line uses ||",
    "(": "the line uses a subshell or a function ( )",
    ")": "the line uses a subshell or a function ( )",
    ";;": "the line uses case",
    "<<": "the line uses a here-document",
    "<<-": "the line uses a here-document",
    "<<<": "the line uses a here-string (bash only)",
}
# Reserved words and bash keywords: as a command word they start a compound
# command, whose end the splitting on && and ; below would cut in the middle.
_KEYWORDS = {"if", "then", "else", "elif", "fi", "while", "until", "for", "do", "done",
             "case", "esac", "in", "{", "}", "!", "[[", "]]", "function", "select",
             "time", "coproc"}
# Builtins with no program of the same name (or whose program could not do
# their job): `exec cd dir` would fail with 127 where `cd dir` works.
_BUILTINS = {"cd", ".", "source", "eval", "exit", "return", "export", "readonly", "local",
             "set", "unset", "shift", "trap", "wait", "read", "ulimit", "umask", "alias",
             "unalias", "jobs", "fg", "bg", "getopts", "hash", "type", "command", "builtin",
             "times", "break", "continue", ":", "let", "declare", "typeset", "shopt",
             "disown", "suspend", "enable", "history", "pushd", "popd", "dirs", "logout",
             "mapfile", "readarray", "caller", "bind", "complete", "compgen", "compopt"}


class _Unsure(Exception):
    """The line holds something the scanner does not read with certainty."""


def plan_line(line):
    """(argv, receiver) for a Procfile line. receiver is None when the app
    itself receives the signals (it replaces the shell), else a short reason
    with the fix, for the start warning and `initd check`."""
    as_written = (SHELL, "-c", line)
    if "\n" in line or "\r" in line:
        return as_written, _reason("the line has several lines")
    try:
        tokens = _tokens(line)
    except _Unsure as e:
        return as_written, _reason(str(e))
    steps = [[]]
    for kind, text, start, adjacent in tokens:
        if kind == "op" and text in ("&&", ";"):
            steps.append([])
        elif kind == "op" and text not in _REDIRECTIONS:
            return as_written, _reason(_WHY[text])
        else:
            steps[-1].append((kind, text, start, adjacent))
    if len(steps) > 1 and not steps[-1] and tokens[-1][1] == ";":
        steps.pop()  # `A; B;`: a trailing ; ends the list and starts nothing
    if any(not step for step in steps):
        return as_written, _reason("the line is not a complete list of commands")
    for step in steps:
        word = _command_word(step)
        if word is not None and step[word][1] in _KEYWORDS:
            return as_written, _reason(f"the line uses the shell's {step[word][1]!r}")
    last = steps[-1]
    word = _command_word(last)
    if word is None:
        return as_written, _reason("the line runs no command, only sets variables")
    kind, text, start, adjacent = last[word]
    if kind == "op" or (adjacent and word + 1 < len(last) and last[word + 1][0] == "op"):
        return as_written, _reason("the last command starts with a redirection")
    if text == "exec":
        rest = last[word + 1:]
        if rest and rest[0][0] == "word":
            return as_written, None  # the user already wrote it
        return as_written, _reason("the line runs no command")
    if "$(" in text or "`" in text:
        # An empty result would leave a bare `exec` (status 0) where the shell
        # reports the status of the substitution: not the same line.
        return as_written, _reason("the command name comes from $(...)")
    if text in _BUILTINS:
        return as_written, _reason(f"the last command, {text}, is a shell builtin")
    return (SHELL, "-c", f"{line[:start]}exec {line[start:]}"), None


def plan_command(command):
    """plan_line for a string; an argv list runs as is, the app itself."""
    if isinstance(command, str):
        return plan_line(command)
    return tuple(command), None


def shell_argv(line):
    """The argv of plan_line (what config.parse_command stores as Role.argv)."""
    return plan_line(line)[0]


def _reason(why):
    return f"{NOT_THE_APP}: {why} ({HINT})"


def _is_assignment(text):
    name, eq, _ = text.partition("=")
    return bool(eq) and name != "" and not name[0].isdigit() and all(
        c == "_" or (c.isascii() and c.isalnum()) for c in name)


def _command_word(step):
    """Index of the first token after the leading NAME=value words."""
    for i, (kind, text, _, _) in enumerate(step):
        if not (kind == "word" and _is_assignment(text)):
            return i
    return None


def _tokens(line):
    """[(kind, text, start, adjacent_to_next)] with kind "word" or "op".
    Comments are dropped; text is the raw text as written."""
    tokens = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t":
            i += 1
        elif c == "#":
            break  # at the start of a token, # starts a comment to the end of the line
        elif c in _OPERATOR_START:
            op = next(o for o in _OPERATORS if line.startswith(o, i))
            tokens.append(["op", op, i, False])
            i += len(op)
        else:
            end = _word_end(line, i)
            tokens.append(["word", line[i:end], i, False])
            i = end
        last = tokens[-1] if tokens else None
        if (last and last[0] == "word" and last[1].isdigit() and i < n
                and line[i] in "<>"):
            last[3] = True  # `2>`: the digits are the redirection's fd number
    return [tuple(t) for t in tokens]


def _word_end(line, i):
    n = len(line)
    while i < n:
        c = line[i]
        if c in " \t" or c in _OPERATOR_START:
            return i
        i = _skip(line, i)
    return i


def _skip(line, i):
    """The index after the quoted or expanded unit starting at line[i]."""
    c = line[i]
    if c == "\\":
        if i + 1 >= len(line):
            raise _Unsure("the line ends with a backslash")
        return i + 2
    if c == "'":
        end = line.find("'", i + 1)
        if end < 0:
            raise _Unsure("the line has an unbalanced ' quote")
        return end + 1
    if c == '"':
        i += 1
        while i < len(line) and line[i] != '"':
            i = _skip_in_double_quotes(line, i)
        if i >= len(line):
            raise _Unsure('the line has an unbalanced " quote')
        return i + 1
    if c in "$`":
        return _skip_expansion(line, i)
    return i + 1


def _skip_in_double_quotes(line, i):
    if line[i] == "\\":
        return i + 2  # past the end: the caller reports the unbalanced quote
    if line[i] in "$`":
        return _skip_expansion(line, i)
    return i + 1


def _skip_expansion(line, i):
    """$(...), $((...)), ${...}, `...`: skipped whole, so the operators inside
    are not the line's. A `case` or a here-document inside $(...) defeats
    counting parentheses: unsure."""
    if line[i] == "`":
        j = i + 1
        while j < len(line) and line[j] != "`":
            j += 2 if line[j] == "\\" else 1
        if j >= len(line):
            raise _Unsure("the line has an unbalanced ` quote")
        return j + 1
    if line.startswith("${", i):
        return _balanced(line, i + 2, "{", "}")
    if line.startswith("$(", i):
        inner_end = _balanced(line, i + 2, "(", ")")
        inner = line[i + 2:inner_end - 1]
        if "case" in inner.split() or "<<" in inner or "\n" in inner:
            raise _Unsure("the line has a $(...) initd cannot read with certainty")
        return inner_end
    return i + 1  # a lone $ or $NAME: an ordinary character here


def _balanced(line, i, opening, closing):
    """The index after the `closing` that balances an already open one."""
    depth = 1
    while i < len(line):
        c = line[i]
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        elif c in "\\'\"$`":
            i = _skip(line, i)
            continue
        i += 1
    raise _Unsure(f"the line has an unbalanced {opening}")

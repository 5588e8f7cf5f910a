"""What the command line and environment asked for, before validation, and
whose grammar to read it with.

Filled by cli.parse_args (initd's own grammar) or compat.parse (tini's and
dumb-init's), then turned into a Plan by plan.build; nothing else reads it.
"""


import os

from initd.errors import InitdError

PERSONALITIES = ("initd", "tini", "dumb-init")


def personality(prog, environ):
    """Who to be: INITD_AS if set, else the name we were run under."""
    forced = environ.get("INITD_AS", "").strip()
    if forced:
        if forced not in PERSONALITIES:
            raise InitdError(f'INITD_AS: expected tini, dumb-init or initd, got "{forced}"')
        return forced
    name = os.path.basename(prog or "")
    # Release file names carry suffixes (tini-static-amd64,
    # dumb-init_1.2.5_x86_64); Docker runs its bundled tini as docker-init.
    if name in ("tini", "docker-init") or name.startswith("tini-"):
        return "tini"
    if name.startswith(("dumb-init", "dumb_init")):
        return "dumb-init"
    return "initd"



class Settings:
    """What the command line and environment asked for, before validation, and
whose grammar to read it with."""

    def __init__(self):
        self.action = "run"          # run, check, help, version
        self.role = None
        self.roles = None
        self.maps = []               # raw "SRC:DST" strings
        self.stop_timeout = None
        self.orphan_grace = None
        self.fqdn = None
        self.process_group = None
        self.verbose = 0
        self.command = []
        self.origin = {}             # field -> the option or variable it came from, for errors
        # Also what tini and dumb-init offer (compat.py parses their command lines):
        self.personality = "initd"   # or tini, dumb-init: whose command line this was
        self.subreaper = None        # None: register when not PID 1
        self.pdeathsig = None        # raw signal for initd itself when its parent dies
        self.exit_zero = []          # raw exit codes reported as 0
        self.warn_on_reap = None
        self.setsid = None           # the app in a session of its own
        self.job_control = None      # stop ourselves after passing on TSTP/TTIN/TTOU
        self.exec_error = None       # exit code when the command cannot be run (None: 127/126)
        self.install_dir = None      # install-compat DIR
        self.control = None          # --control PATH for the control socket
        self.no_control = None       # --no-control
        self.metrics = None          # --metrics HOST:PORT
        self.exit_delay = None       # --exit-delay SECS
        self.environ_role = None     # INITD_ROLE, even when --role wins
        self.inherited_mask = ()     # the signal mask initd was started with (tini hands it on)

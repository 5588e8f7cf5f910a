"""A job-control shell in miniature, for the terminal tests.

  jobshell.py COMMAND [ARG...]
Run on a terminal as its session leader (pty.fork), it starts COMMAND as a
job in a process group of its own, gives that group the terminal, and reports
what becomes of the job, one line each:
  shell: stopped SIGNUM     (then it takes the terminal back and reads a line:
                             "fg" hands the terminal back and sends SIGCONT to
                             the job's group, as a shell's fg does)
  shell: continued
  shell: exited CODE        (128+N for a death by signal N), and it exits
"""
import os
import signal
import sys

# A shell ignores these for itself: Ctrl-C and Ctrl-Z are for the job, and
# tcsetpgrp from a background group would stop it with SIGTTOU.
for sig in (signal.SIGINT, signal.SIGTSTP, signal.SIGTTOU, signal.SIGQUIT):
    signal.signal(sig, signal.SIG_IGN)


def say(text):
    os.write(1, f"shell: {text}\n".encode())


job = os.fork()
if job == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpgrp())
    for sig in (signal.SIGINT, signal.SIGTSTP, signal.SIGTTOU, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    os.execvp(sys.argv[1], sys.argv[1:])
try:
    os.setpgid(job, job)  # both sides, against the race with the child's own
except OSError:
    pass
try:
    os.tcsetpgrp(0, job)
except OSError:
    pass
while True:
    _, status = os.waitpid(job, os.WUNTRACED | os.WCONTINUED)
    if os.WIFSTOPPED(status):
        say(f"stopped {os.WSTOPSIG(status)}")
        os.tcsetpgrp(0, os.getpgrp())
        line = sys.stdin.readline()
        if line.strip() == "fg":
            os.tcsetpgrp(0, job)
            os.killpg(job, signal.SIGCONT)
    elif os.WIFCONTINUED(status):
        say("continued")
    else:
        code = os.waitstatus_to_exitcode(status)
        say(f"exited {128 - code if code < 0 else code}")
        break

"""Builds the C parts in shim/ into initd/_bin/ before the package is copied.

setuptools has no notion of a plain executable or an LD_PRELOAD library (they
are not Python extensions), so build_py compiles them with the C compiler
Python was built with, into the source tree, where package_data picks them up.
That also makes `pip install -e .` and running from a checkout work.
"""
import os
import shlex
import subprocess
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE"]

# (output under initd/_bin, sources under shim/, extra flags)
TARGETS = [
    ("ppidshim", ["ppidshim.c"], []),
    ("libinitd_fqdn.so", ["fqdn_name.c", "fqdn_hooks.c"], ["-shared", "-fPIC", "-fvisibility=hidden", "-ldl"]),
]


def compile_targets():
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[:1]
    out_dir = os.path.join(HERE, "initd", "_bin")
    os.makedirs(out_dir, exist_ok=True)
    for name, sources, extra in TARGETS:
        srcs = [os.path.join(HERE, "shim", s) for s in sources]
        out = os.path.join(out_dir, name)
        cmd = cc + CFLAGS + ["-o", out] + srcs + extra
        print("compiling", " ".join(cmd))
        subprocess.run(cmd, check=True)


class BuildWithShim(build_py):
    def run(self):
        compile_targets()
        super().run()


class BinaryDistribution(Distribution):
    # The wheel holds machine code, so it must not be tagged py3-none-any.
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithShim}, distclass=BinaryDistribution)

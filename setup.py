"""The build hook, and nothing else (the metadata is in setup.cfg).

The C parts are no Python extensions, so build_py runs the one definition of
their build, shim/Makefile, before the package is copied:
  - ppidshim and libinitd_fqdn.so into initd/_bin/ of the source tree, where
    package_data picks them up (and a checkout or `pip install -e .` runs);
  - the `initd` command (shim/launcher.c, python -I -S) into build/launcher/,
    which setup.cfg's `scripts` installs in place of a console_scripts wrapper.
"""
import os
import shlex
import subprocess
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

# setuptools has no build_scripts of its own; importing setuptools first makes
# this its bundled distutils (also on Python 3.12+, which has no distutils).
from distutils.command.build_scripts import build_scripts  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def make_shim():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    launcher = os.path.join(HERE, "build", "launcher", "initd")
    if os.path.exists(launcher):
        os.unlink(launcher)  # it embeds this interpreter's version: rebuild for each
    cmd = ["make", "-C", os.path.join(HERE, "shim"), f"CC={shlex.split(cc)[0]}",
           f"OUT={os.path.join(HERE, 'initd', '_bin')}",
           f"LAUNCHER_OUT={os.path.dirname(launcher)}", f"PYTHON={sys.executable}"]
    print(" ".join(shlex.quote(c) for c in cmd))
    subprocess.run(cmd, check=True)


class BuildWithShim(build_py):
    def run(self):
        make_shim()
        super().run()


class CopyLauncher(build_scripts):
    # The launcher is machine code: copied as it is (build_scripts would read
    # it as Python source to rewrite a `#!python` line it does not have).
    def copy_scripts(self):
        self.mkpath(self.build_dir)
        outfiles = []
        for script in self.scripts:
            out = os.path.join(self.build_dir, os.path.basename(script))
            self.copy_file(script, out)
            os.chmod(out, 0o755)
            outfiles.append(out)
        return outfiles, outfiles


class BinaryDistribution(Distribution):
    # The wheel holds machine code, so it must not be tagged py3-none-any.
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithShim, "build_scripts": CopyLauncher},
      distclass=BinaryDistribution)

/*
 * The `initd` command: starts Python isolated and without `site`
 * (python3 -I -S), then initd.
 *
 * Why not setuptools' console_scripts wrapper: its `#!python` line runs the
 * interpreter's `site`, which reads every .pth file of the environment
 * (matplotlib's, setuptools' distutils hack, ...) before initd runs a line;
 * that is most of the gap between initd's start and a bare interpreter's.
 * Why not a script with `#!/path/python -I -S`: installers rewrite a wheel's
 * `#!python` line to their interpreter and drop its arguments, and the
 * install location is not known when the wheel is built. So this program
 * finds both at run time:
 *   - the interpreter: python3.X next to this program (a venv's bin/, or
 *     /usr/local/bin of a Python image), else python3 or python there, else
 *     the interpreter the package was built with (PY_FALLBACK);
 *   - the import path: BOOTSTRAP below, run by that interpreter, adds the
 *     environment's site-packages without reading .pth files, and falls back
 *     to the full `site` only when initd cannot be imported that way (an
 *     editable install, a --user install).
 * argv[0] is passed on unchanged, so `tini` and `dumb-init` symlinks to this
 * program keep their personality. The signal mask and everything else is
 * inherited by the interpreter as it is.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PY_VERSION
#error "build with -DPY_VERSION='\"3.X\"' (shim/Makefile does)"
#endif
#ifndef PY_FALLBACK
#define PY_FALLBACK "/usr/bin/python3"
#endif

/* sys.argv arrives as ['-c', ARGV0, ARGS...]: ARGV0 becomes sys.argv[0]. */
static const char BOOTSTRAP[] =
    "import sys\n"
    "del sys.argv[0]\n"
    "def _initd_path():\n"
    "    import os, site\n"
    /* sys.executable is the unresolved path we exec'd, so in a venv its
     * bin/'s parent holds pyvenv.cfg; without `site`, sys.prefix is still
     * the base interpreter's, so the venv's site-packages is computed here
     * the way site.venv() does it. */
    "    prefix = os.path.dirname(os.path.dirname(sys.executable))\n"
    "    cfg = os.path.join(prefix, 'pyvenv.cfg')\n"
    "    if not os.path.isfile(cfg):\n"
    "        return site.getsitepackages()\n"
    "    ver = 'python%d.%d' % sys.version_info[:2]\n"
    "    dirs = [os.path.join(prefix, d, ver, 'site-packages')\n"
    "            for d in dict.fromkeys((sys.platlibdir, 'lib'))]\n"
    "    with open(cfg) as f:\n"
    "        system = any(line.replace(' ', '').lower() == 'include-system-site-packages=true\\n'\n"
    "                     for line in f)\n"
    "    return dirs + (site.getsitepackages() if system else [])\n"
    "sys.path.extend(p for p in _initd_path() if p not in sys.path)\n"
    "try:\n"
    "    from initd.cli import main\n"
    "except ImportError:\n"
    /* An editable install (a .pth finder) or a --user install: what the
     * usual start would have found, at the usual cost. */
    "    import site\n"
    "    site.main()\n"
    "    sys.path.append(site.getusersitepackages())\n"
    "    from initd.cli import main\n"
    "raise SystemExit(main())\n";

static int executable(const char *path)
{
    return access(path, X_OK) == 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[PATH_MAX], python[PATH_MAX + 32];
    const char *found = NULL;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            static const char *const names[] = {"python" PY_VERSION, "python3", "python"};
            for (size_t i = 0; !found && i < sizeof names / sizeof names[0]; i++) {
                snprintf(python, sizeof python, "%s/%s", self, names[i]);
                if (executable(python))
                    found = python;
            }
        }
    }
    if (!found)
        found = PY_FALLBACK;

    /* python -I -S -c BOOTSTRAP ARGV0 ARGS... */
    char **args = calloc((size_t)argc + 6, sizeof *args);
    if (!args) {
        fputs("initd: ERROR out of memory\n", stderr);
        return 126;
    }
    int i = 0;
    args[i++] = (char *)found;
    args[i++] = "-I";
    args[i++] = "-S";
    args[i++] = "-c";
    args[i++] = (char *)BOOTSTRAP;
    args[i++] = argv[0] ? argv[0] : "initd";
    for (int a = 1; a < argc; a++)
        args[i++] = argv[a];
    args[i] = NULL;
    execv(found, args);
    fprintf(stderr, "initd: ERROR cannot run the Python interpreter %s: %s\n", found, strerror(errno));
    return errno == ENOENT ? 127 : 126;
}

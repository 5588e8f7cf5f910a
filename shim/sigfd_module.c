/*
 * initd._bin._sigfd: signalfd(2) for initd's loop, as a tiny Python
 * extension. The stdlib has none; through ctypes it costs every container
 * start about 1.5 ms and a few hundred KiB resident (libffi, _ctypes), which
 * this avoids. initd falls back to ctypes when this module cannot be loaded
 * (an interpreter other than the one it was built for).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <signal.h>
#include <sys/signalfd.h>

/* open_signalfd(signums) -> fd: non-blocking, close-on-exec. */
static PyObject *open_signalfd(PyObject *self, PyObject *arg)
{
    (void)self;
    sigset_t set;
    sigemptyset(&set);
    PyObject *it = PyObject_GetIter(arg);
    if (!it)
        return NULL;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        long signum = PyLong_AsLong(item);
        Py_DECREF(item);
        if (signum == -1 && PyErr_Occurred())
            break;
        if (sigaddset(&set, (int)signum) < 0) {
            PyErr_Format(PyExc_ValueError, "signal %ld cannot be added to a set", signum);
            break;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

static PyMethodDef methods[] = {
    {"open_signalfd", open_signalfd, METH_O, "signalfd(-1, signums, SFD_NONBLOCK|SFD_CLOEXEC)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sigfd", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__sigfd(void)
{
    return PyModule_Create(&module);
}

"""C extension modules loaded by path, through the import machinery the
interpreter has already loaded (_frozen_importlib_external), not through the
importlib package, whose import pulls in warnings and more at every start."""
import os
import sys


def load(name, path):
    """The extension module at path, as `name`. Raises ImportError or OSError."""
    import _frozen_importlib as bootstrap            # always loaded: no cost
    import _frozen_importlib_external as external
    loader = external.ExtensionFileLoader(name, path)
    spec = bootstrap.spec_from_loader(name, loader)
    module = loader.create_module(spec)
    loader.exec_module(module)
    return module


def find_in_package(package, prefix):
    """The path of package/prefix*.so on sys.path (setproctitle's C module),
    or None."""
    for entry in sys.path:
        folder = os.path.join(entry or ".", package)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(".so"):
                return os.path.join(folder, name)
    return None

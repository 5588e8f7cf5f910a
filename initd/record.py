"""Frozen records for PID 1: namedtuple's interface (keyword construction with
defaults, _replace, _fields) without importing collections, which costs PID 1
about 3 ms and 0.3 MiB at every container start."""


def record(name, fields, defaults=()):
    fields = tuple(fields.split()) if isinstance(fields, str) else tuple(fields)
    default_of = dict(zip(fields[len(fields) - len(defaults):], defaults))

    def __init__(self, *args, **kwargs):
        values = {**default_of, **dict(zip(fields, args)), **kwargs}
        missing = [f for f in fields if f not in values]
        if missing or len(values) != len(fields):
            raise TypeError(f"{name}: expected fields {fields}, missing {missing}")
        for field in fields:
            object.__setattr__(self, field, values[field])

    def __setattr__(self, key, value):
        raise AttributeError(f"{name} is frozen; use _replace()")

    def _replace(self, **changes):
        return cls(**{**{f: getattr(self, f) for f in fields}, **changes})

    def __eq__(self, other):
        return type(other) is cls and all(getattr(self, f) == getattr(other, f) for f in fields)

    def __repr__(self):
        return f"{name}(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in fields) + ")"

    cls = type(name, (), {"__slots__": fields, "__init__": __init__, "__setattr__": __setattr__,
                          "_replace": _replace, "__eq__": __eq__, "__repr__": __repr__,
                          "__hash__": None, "_fields": fields})
    return cls

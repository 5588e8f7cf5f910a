"""initd: PID 1 for application containers."""

__version__ = "0.1.0"

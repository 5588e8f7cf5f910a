"""Benchmarks of initd against tini, dumb-init and catatonit as PID 1.

Run from the repository root, as root: `python -m bench` (a few minutes) or
`python -m bench --quick` (under a minute, for CI). See docs/benchmarks.md.
"""

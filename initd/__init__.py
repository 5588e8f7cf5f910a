"""initd: PID 1 for application containers.

argv/env/roles.json -> Settings -> plan.build -> a frozen Plan -> loop.run
(one poll over a signalfd and the components' descriptors, driving the pure
lifecycle state machine) -> spawn (ppidshim -> app). docs/design.md has the
module map and the rules that keep data flowing one way.
"""

__version__ = "0.1.0"

class InitdError(Exception):
    """A problem the user can fix: one line on stderr and an exit code, no traceback."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code

"""The one exception type users see.

Every refusal in spc names the offending thing (a layer, a file, a flag), says why, and says what
to do. The CLI prints it without a traceback and exits with `SpcError.exit_code`.
"""


class SpcError(Exception):
    """A problem with the user's input that spc cannot (and should not) work around."""

    exit_code = 2

    def __init__(self, subject: str, problem: str, fix: str = ""):
        self.subject, self.problem, self.fix = subject, problem, fix
        message = f"{subject}: {problem}"
        if fix:
            message += f"\n  fix: {fix}"
        super().__init__(message)

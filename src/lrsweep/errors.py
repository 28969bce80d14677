"""The one exception type users see: a problem and its fix, printed as one line by the CLI."""

from __future__ import annotations

__all__ = ["LrsweepError", "NotReproduced"]


class LrsweepError(Exception):
    """A user-facing error: ``problem`` says what is wrong, ``fix`` what to do about it."""

    exit_code = 2  # the CLI's exit status for it (a usage error)

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.problem}; {self.fix}" if self.fix else self.problem


class NotReproduced(LrsweepError):
    """``lrsweep reproduce`` ran, and its metrics differ from the recorded ones: exit status 1, not 2."""

    exit_code = 1

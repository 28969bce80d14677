"""The one exception type users see: a problem and its fix, printed as one line by the CLI; SIGTERM as an
interruption; and the argparse parser of the commands that only read MLflow, whose usage errors are such an
exception too."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["BackendLost", "LrsweepError", "NotReproduced", "OneLineParser", "Terminated"]


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


class BackendLost(LrsweepError):
    """The backend can run nothing more (its Spark driver stopped: out of memory, killed): no configuration is at
    fault, so the running trials are marked interrupted (run again on resume), not failed, and the sweep stops
    with this line, exit status 1."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``kill``, a container stopping), raised where Ctrl-C would be: the sweep stops the
    same way (the running trial marked interrupted, the call recorded KILLED) and says which signal it was."""


class OneLineParser(argparse.ArgumentParser):
    """argparse's usage and message become one LrsweepError line pointing at ``PROG --help``."""

    def error(self, message: str) -> NoReturn:
        raise LrsweepError(message, f"see `{self.prog} --help`")

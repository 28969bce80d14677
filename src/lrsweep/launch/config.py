"""The ``launch`` settings (STUB: fields to be completed with issue 9)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LaunchConfig"]


@dataclass
class LaunchConfig:
    # a built wheel to send; None: `pip wheel` of the source checkout lrsweep runs from
    wheel: str | None = None

"""The ``launch`` settings: what `lrsweep launch` sends to a cluster and how the cluster installs it.

Kept apart from the launch code so that ``lrsweep.config`` imports no boto3, and nothing heavy, to type them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lrsweep.errors import LrsweepError

__all__ = ["LaunchConfig"]


@dataclass
class LaunchConfig:
    # a built wheel to send; None: `pip wheel` of the source checkout lrsweep runs from (cached per source state)
    wheel: str | None = None
    # the staging folder's name under cluster.s3_uri; None: <study name>-<digest of the staged config and the
    # package>, so a dry run names exactly the keys and the request a launch of the same config sends
    id: str | None = None
    # the interpreter on the EMR nodes that the bootstrap action installs the wheel into and the step runs
    # (Amazon Linux 2023, EMR 7's OS, has python3.9 as python3; the bootstrap installs python3.11 when missing)
    python: str = "python3.11"
    # the wheel's extras the bootstrap installs with it: spark (pyspark) for backend=spark, s3 (s3fs) for reading
    # the staged config and s3:// data
    extras: list[str] = field(default_factory=lambda: ["spark", "s3"])
    # cluster=standalone (the rehearsal): its fresh virtual environment and logs go to <rehearsal_dir>/<launch id>
    rehearsal_dir: str = ".lrsweep/rehearsal"

    def check(self) -> None:
        if self.id is not None and not _is_key_part(self.id):
            raise LrsweepError(
                f"launch.id={self.id!r} cannot name an S3 folder", "use letters, digits, '.', '_' and '-' only"
            )
        if not self.python.strip():
            raise LrsweepError("launch.python is empty", "name the nodes' interpreter, e.g. launch.python=python3.11")
        for extra in self.extras:
            if not _is_key_part(extra):
                raise LrsweepError(
                    f"launch.extras holds {extra!r}, not an extra's name", "e.g. launch.extras=[spark,s3]"
                )


def _is_key_part(text: str) -> bool:
    import re

    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", text))

"""Calibration: small, cheap local Spark runs the runtime model is fitted on (cached per data and hardware).

STUB: interface fixed, body to be written (issue 9). Keep module-level imports light: config.py imports
:class:`CalibrationConfig` from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CalibrationConfig"]


@dataclass
class CalibrationConfig:
    # the largest fraction of the rows a calibration run reads (the "at most 10%")
    max_fraction: float = 0.1
    # where calibrations are cached, one file per data fingerprint and hardware
    cache_dir: str = ".lrsweep/calibration"

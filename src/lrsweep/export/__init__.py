"""``lrsweep export RUN_ID --out DIR``: a self-contained hand-in bundle of a logged sweep (or trial).

:mod:`lrsweep.export.bundle` reads the run from MLflow and writes the bundle; :mod:`lrsweep.export.page`
renders its one-page report (HTML with embedded images; PDF through a headless Chromium when there is one).
"""

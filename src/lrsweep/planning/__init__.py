"""Planning a cluster sweep before paying for it.

- ``prices.py``: the price table's schema (the ``prices`` config group) and its lookups;
- ``cost.py``: the billing arithmetic (per-second, one-minute minimum, every node);
- ``ernest.py``: the Ernest runtime model (non-negative least squares on small runs);
- ``calibrate.py``: the small local Spark runs the model is fitted on, cached per data and hardware;
- ``history.py``: per-trial times of finished sweeps in MLflow, which correct the model;
- ``plan.py``: the plan itself (time with a range, cost, trials a budget affords), printed and logged;
- ``budget.py``: the guard inside a sweep that stops starting trials before a budget is passed.
"""

"""Generated-scenario checker: saga programs x interruption schedules vs an independent oracle.

See docs/guarantees.md ("Generated scenarios"): :mod:`scenarios.programs` (the data and
hypothesis strategies), :mod:`scenarios.oracle` (what must happen, from the docs alone),
:mod:`scenarios.interpret` (a real ``@saga`` over a keyed ledger), :mod:`scenarios.drive`
(runs and compares), :mod:`scenarios.schedules` (interruption schedules).
"""

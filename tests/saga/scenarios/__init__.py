"""Generated-scenario checker: saga programs x interruption schedules vs an independent oracle.

See docs/guarantees.md ("Generated scenarios") and FOUND.md. Modules:
:mod:`scenarios.programs` (programs and schedules as data, program strategies),
:mod:`scenarios.schedules` (schedule strategies), :mod:`scenarios.oracle` (what must
happen, from the docs alone), :mod:`scenarios.interpret` (a real ``@saga`` over a keyed
ledger), :mod:`scenarios.drive` (runs one scenario in process and compares),
:mod:`scenarios.processes` / :mod:`scenarios.proc_worker` (the same on real worker
processes killed with SIGKILL), :mod:`scenarios.campaign` (many scenarios, crash sweeps,
shrinking; used by ``python -m bench.scenarios``), :mod:`scenarios.found` (the failures
found, as named scenarios), :mod:`scenarios.profiles` (hypothesis settings).
"""

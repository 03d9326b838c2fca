"""The benchmark harness: ``python -m bench --help``.

It measures the executor on every storage backend with fixed workloads (W1 to W6, peak memory)
and measures the *floor* — the same rows pushed through the minimum SQL of a task lifecycle with
plain driver calls — so that each figure can be read as a fraction of what the database allows
on the machine at hand. Results are a printed table and a JSON document (see :mod:`bench.report`).

Timings are reported, never asserted: the harness fails only when a workload produced wrong
results or could not run.
"""

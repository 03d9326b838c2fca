"""The workloads, one module each; :mod:`bench.catalog` lists them."""

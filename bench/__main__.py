"""``python -m bench``: see :func:`bench.cli.main`."""

from bench.cli import main

raise SystemExit(main())

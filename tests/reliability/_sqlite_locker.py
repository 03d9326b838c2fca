"""Holds a SQLite database's write lock for a while: ``_sqlite_locker.py PATH SECONDS``.

Prints ``locked`` once ``BEGIN IMMEDIATE`` succeeded, sleeps, then commits (nothing written).
Run by the outage tests as a separate process, as another application would.
"""

from __future__ import annotations

import sqlite3
import sys
import time


def main() -> None:
    path, seconds = sys.argv[1], float(sys.argv[2])
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


if __name__ == "__main__":
    main()

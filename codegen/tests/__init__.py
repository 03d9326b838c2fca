"""Tests of the sqlc process plugin (real sqlc, real SQLite files, real PostgreSQL)."""

"""Tests that run every generated query against a real SQLite file and a real PostgreSQL server."""

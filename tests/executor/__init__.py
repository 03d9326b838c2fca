"""The executor scenario suite: every scenario runs once per storage backend (see conftest)."""

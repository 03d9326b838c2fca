"""Unit tests of the executor's internals: serializer, ids, options, in-memory storage, helpers."""

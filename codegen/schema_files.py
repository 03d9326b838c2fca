"""Read the ordered migration files (``NNNN_name.sql``) that sqlc also compiled as the schema.

The request only carries the parsed catalog, not the DDL, so the files are read again from
the paths in ``settings.schema``. sqlc gives those relative to sqlc.yaml and runs the plugin
in the directory it was started from, so sqlc must be started from the sqlc.yaml directory
(``python -m codegen.regenerate`` does that).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import CodegenError
from codegen.sqltext import split_statements, table_identifiers
from codegen.tokenizer import tokenize

_FILE_NAME = re.compile(r"([0-9]{4})_([A-Za-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class MigrationFile:
    version: int
    name: str
    path: str
    statements: tuple[str, ...]  # templated for str.format, comments removed
    table_identifiers: frozenset[str]  # the names derived from the table name, as templates


def _sql_files(schema_path: str) -> list[Path]:
    path = Path(schema_path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".sql" and p.is_file())
    raise CodegenError(
        f"schema path {schema_path!r} not found from {Path.cwd()}; "
        "run sqlc from the directory that holds sqlc.yaml"
    )


def read_migrations(schema_paths: tuple[str, ...], dialect: str, table: str) -> list[MigrationFile]:
    migrations: list[MigrationFile] = []
    for schema_path in schema_paths:
        for path in _sql_files(schema_path):
            match = _FILE_NAME.fullmatch(path.name)
            if match is None:
                raise CodegenError(f"schema file {path}: its name must look like 0001_name.sql")
            try:
                tokens = tokenize(path.read_text(encoding="utf-8"), dialect)
            except CodegenError as error:
                raise CodegenError(f"schema file {path}: {error}") from None
            migrations.append(
                MigrationFile(
                    version=int(match.group(1)),
                    name=match.group(2),
                    path=path.as_posix(),
                    statements=tuple(split_statements(tokens, table, dialect)),
                    table_identifiers=table_identifiers(tokens, table),
                )
            )
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    for previous, current in itertools.pairwise(versions):
        if previous == current:
            raise CodegenError(f"two schema files have version {current:04d}")
    return migrations

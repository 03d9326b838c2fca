"""The sqlc process plugin: read a GenerateRequest (JSON) on stdin, write the response.

sqlc runs it once per ``codegen`` entry of sqlc.yaml, through the ``codegen/sqlc-plugin``
shim. It emits one package per dialect: ``__init__``, ``_table``, ``models``, ``queries`` and
``migrations``, plus the manifest that ``codegen.vet`` checks the queries with. Anything it
cannot type makes it exit 1 with a message naming the query; sqlc then prints that message
and fails.
"""

from __future__ import annotations

import sys

from codegen import emit_psycopg, emit_sqlite
from codegen.analyze import plan_package
from codegen.emit_common import init_module, migrations_module, models_module, table_module
from codegen.errors import CodegenError
from codegen.request import decode_request, encode_response
from codegen.schema_files import read_migrations
from codegen.table_name import table_name_limit
from codegen.vet import MANIFEST, manifest


def generate(data: bytes) -> dict[str, str]:
    """File name (relative to the codegen ``out`` directory) -> contents."""
    request = decode_request(data)
    package = plan_package(request)
    migrations = read_migrations(request.schema_paths, request.engine, request.options.table)
    # Every name derived from the table name, in the schema or in a query, must fit.
    derived = [m.table_identifiers for m in migrations]
    derived += [plan.table_identifiers for plan in package.queries]
    limit = table_name_limit(frozenset().union(*derived), request.options.table)
    if request.options.target == "psycopg":
        queries = emit_psycopg.queries_module(package)
        classes = ["AsyncQueries"]
        if emit_psycopg.has_sync(package):
            classes.append("Queries")
    else:
        queries = emit_sqlite.queries_module(package)
        classes = ["Queries"]
    return {
        "__init__.py": init_module(package, classes),
        "_table.py": table_module(package, limit),
        "models.py": models_module(package),
        "queries.py": queries,
        "migrations.py": migrations_module(package, migrations),
        # Not part of the package: regenerate prepares these texts on a scratch database.
        MANIFEST: manifest(package, migrations),
    }


def main() -> int:
    try:
        files = generate(sys.stdin.buffer.read())
    except CodegenError as error:
        print(f"codegen: {error}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(encode_response(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())

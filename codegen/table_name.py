"""How long a table name may be: computed from the names the SQL derives from it.

Every identifier that contains the table name as a ``_``-separated part (``{table}``,
``{table}_migrations``, ``ix_{table}_status_is_closed_expires_at``) is filled in at run time.
PostgreSQL silently truncates identifiers longer than 63 bytes (a NOTICE, not an error), so a
table name is only safe if every such name still fits once it is filled in. The limit is
therefore 63 minus the length of the longest name's fixed part, and it is computed per dialect
package from what its schema and queries actually contain. SQLite has no such limit, but it
gets the same rule so that both dialects accept exactly the same table names.

Names PostgreSQL makes up itself (``<table>_pkey``, ``<table>_id_seq`` of an unnamed constraint
or an identity column) are not counted: PostgreSQL shortens the table part of those to fit,
it never truncates their suffix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from codegen.errors import CodegenError

# Checked here for the default table, and by the generated validate_table_name() at run time.
TABLE_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PATTERN_RULE = "a table name must match ^[A-Za-z_][A-Za-z0-9_]*$"
IDENTIFIER_MAX_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1

# Words that cannot be a bare table name in every statement of one dialect or the other (the SQL
# pastes the name unquoted, so that `Jobs` means `jobs` on PostgreSQL, as users expect), compared
# without case. PostgreSQL: its reserved and type/function-name keywords (pg_get_keywords()
# categories R and T, PostgreSQL 15); its column-name and unreserved keywords work. SQLite: the
# keywords (sqlite3_keyword_name, SQLite 3.40) with which migrating, claiming or listing failed;
# the others fall back to identifiers. tests/storage/test_reserved_table_names.py checks both
# lists against the servers and library in use.
_RESERVED_TEXT = (
    "add all alter analyse analyze and any array as asc asymmetric authorization autoincrement "
    "between binary both case cast check collate collation column commit concurrently "
    "constraint create cross current_catalog current_date current_role current_schema "
    "current_time current_timestamp current_user default deferrable delete desc distinct do "
    "drop else end escape except exists false fetch for foreign freeze from full grant group "
    "having if ilike in index initially inner insert intersect into is isnull join lateral "
    "leading left like limit localtime localtimestamp natural not nothing notnull null offset "
    "on only or order outer overlaps placing primary references returning right select "
    "session_user set similar some symmetric table tablesample then to trailing transaction "
    "true union unique update user using values variadic verbose when where window with"
)
RESERVED_WORDS = frozenset(_RESERVED_TEXT.split())
RESERVED_RULE = "it is a reserved word of SQLite or PostgreSQL; choose another table name"


def reserved_problem(table: str) -> str | None:
    return RESERVED_RULE if table.lower() in RESERVED_WORDS else None


@dataclass(frozen=True, slots=True)
class TableNameLimit:
    max_length: int
    longest_name: str  # the derived name that sets the limit, shown as `ix_<table>_status`

    @property
    def rule(self) -> str:
        return (
            f"{PATTERN_RULE} and be at most {self.max_length} characters (the longest name "
            f"derived from it, {self.longest_name}, must fit PostgreSQL's "
            f"{IDENTIFIER_MAX_BYTES}-byte identifier limit)"
        )


def shown(template: str) -> str:
    """A ``str.format`` template as people read it: ``ix_{table}_x`` -> ``ix_<table>_x``."""
    return template.format(table="<table>")


def _room(template: str) -> int:
    """The longest table name for which ``template`` filled in still fits the limit."""
    fixed = len(template.format(table="").encode())
    # A name may hold the table name more than once; each copy takes its share of the room.
    copies = len(template.format(table="x").encode()) - fixed
    if copies == 0:  # not derived from the table name after all
        return IDENTIFIER_MAX_BYTES
    return (IDENTIFIER_MAX_BYTES - fixed) // copies


def table_name_limit(templates: Iterable[str], default_table: str) -> TableNameLimit:
    """The limit the templates allow, checked against the default table name.

    ``templates`` are identifiers with ``{table}`` placeholders (other braces doubled), as
    ``sqltext.table_identifiers`` returns them. Raises CodegenError when the default table
    does not fit or when some name leaves no room for any table name.
    """
    limit = TableNameLimit(IDENTIFIER_MAX_BYTES, shown("{table}"))
    # Sorted, so that among names of equal room the message always names the same one.
    for template in sorted(templates):
        room = _room(template)
        if room < limit.max_length:
            limit = TableNameLimit(room, shown(template))
    if limit.max_length < 1:
        raise CodegenError(
            f"the derived name {limit.longest_name} leaves no room for a table name within "
            f"PostgreSQL's {IDENTIFIER_MAX_BYTES}-byte identifier limit; shorten it"
        )
    if len(default_table) > limit.max_length:
        raise CodegenError(f"plugin option table {default_table!r}: {limit.rule}")
    return limit

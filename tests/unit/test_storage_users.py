"""Deleting a user reaches every table of the schema that holds a user_id."""

from __future__ import annotations

from avrec.storage import tables as t
from avrec.storage.users import USER_TABLES


def test_every_table_with_a_user_id_is_deleted_from():
    with_users = {tab.name for tab in t.metadata.tables.values() if "user_id" in tab.c}
    assert with_users == {tab.name for tab in USER_TABLES}

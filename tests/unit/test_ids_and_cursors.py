"""ULIDs sort by time; cursors carry only a sort key."""

from __future__ import annotations

import pytest

from agentfiles.data.errors import BadCursor
from agentfiles.data.table import decode_cursor, encode_cursor
from agentfiles.ids import is_ulid, new_ulid, next_ulid, ulid_time_ms


def test_ulids_sort_by_creation_time():
    earlier, later = new_ulid(1_000), new_ulid(2_000)
    assert earlier < later and is_ulid(earlier) and ulid_time_ms(later) == 2_000


def test_the_next_ulid_sorts_right_after_and_keeps_the_time():
    ulid = new_ulid(123_456)
    following = next_ulid(ulid)
    assert following > ulid and ulid_time_ms(following) == 123_456 and is_ulid(following)


def test_a_cursor_round_trips_within_its_partition():
    cursor = encode_cursor({"pk": {"S": "OWNER#a"}, "sk": {"S": "FILE#01ABC"}})
    assert decode_cursor(cursor, "OWNER#b", "FILE#") == {"pk": {"S": "OWNER#b"}, "sk": {"S": "FILE#01ABC"}}


@pytest.mark.parametrize("cursor", ["!!!", "e30", encode_cursor({"pk": {"S": "x"}, "sk": {"S": "HASH#1"}})])
def test_a_cursor_for_another_kind_of_row_or_garbage_is_refused(cursor):
    with pytest.raises(BadCursor):
        decode_cursor(cursor, "OWNER#a", "FILE#")

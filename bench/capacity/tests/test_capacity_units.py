"""The arithmetic the cost model bills with: item sizes, DynamoDB request units, index
writes, request chunks, Lambda GB-seconds and prices, on cases worked by hand from
the AWS developer guides and pricing pages."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from bench.capacity import pricing, units

KEYS = ("pk", "sk")
GC_KEYS = ("gcShard", "lastTouchedAt")


def _item_of_size(size: int) -> dict:
    """An item whose DynamoDB size is exactly `size` bytes: pk "k" (3) + "sk" "s" (3) +
    "data" (4) + a string filling the rest."""
    item = {"pk": {"S": "k"}, "sk": {"S": "s"}, "data": {"S": ""}}
    item["data"]["S"] = "x" * (size - units.item_size(item))
    assert units.item_size(item) == size
    return item


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"name": {"S": "abc"}}, 4 + 3),  # name bytes + UTF-8 bytes
        ({"é": {"S": "日本"}}, 2 + 6),  # names and strings count UTF-8 bytes, not characters
        ({"n": {"N": "123"}}, 1 + 2 + 1),  # 3 significant digits: 2 bytes, + 1
        ({"n": {"N": "1000"}}, 1 + 1 + 1),  # trailing zeros trimmed: 1 significant digit
        ({"n": {"N": "-12.50"}}, 1 + 2 + 1),  # sign, point and trailing zero are not digits
        ({"n": {"N": "0"}}, 1 + 1),
        ({"b": {"B": b"\x00\x01\x02"}}, 1 + 3),  # raw bytes, not their base64
        ({"ok": {"BOOL": True}}, 2 + 1),
        ({"x": {"NULL": True}}, 1 + 1),
        ({"l": {"L": []}}, 1 + 3),  # an empty list is its 3 bytes of overhead
        ({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}, 1 + 3 + (1 + 2) + (1 + 2)),  # + 1 byte per element
        ({"m": {"M": {"k": {"S": "v"}}}}, 1 + 3 + (1 + 1 + 1)),  # a member: 1 + its name + its value
        ({"s": {"SS": ["a", "bc"]}}, 1 + 1 + 2),
        ({"a": {"S": "x"}, "bb": {"N": "7"}}, (1 + 1) + (2 + 2)),  # attributes add up
    ],
)
def test_item_size_adds_attribute_names_and_values_as_aws_defines_them(item, size):
    # Given an item in DynamoDB JSON / When it is sized / Then it has the size worked by hand
    assert units.item_size(item) == size


def test_a_missing_item_has_no_size():
    assert units.item_size(None) == 0
    assert units.item_size({}) == 0


def test_a_3_5_kib_item_write_is_4_units_and_8_in_a_transaction():
    # Given an item of 3.5 KiB
    item = _item_of_size(3584)
    # When it is written alone, then inside TransactWriteItems
    alone = units.write_units(units.item_size(item))
    in_transaction = units.write_units(units.item_size(item), transactional=True)
    # Then each started KiB is one unit, doubled in the transaction
    assert (alone, in_transaction) == (4, 8)


@pytest.mark.parametrize(("size", "wru"), [(0, 1), (1, 1), (1024, 1), (1025, 2), (400 * 1024, 400)])
def test_write_units_count_started_kibibytes_and_at_least_one(size, wru):
    assert units.write_units(size) == wru


def test_a_5_kib_read_is_2_units_strongly_consistent_1_eventually_and_4_in_a_transaction():
    # Given an item of 5 KiB
    size = units.item_size(_item_of_size(5 * 1024))
    # When it is read with each consistency / Then each started 4 KiB is one unit, scaled
    assert units.read_units(size, "strong") == 2
    assert units.read_units(size, "eventual") == 1
    assert units.read_units(size, "transactional") == 4


def test_reading_an_item_that_is_not_there_still_costs_one_step():
    assert units.read_units(0, "strong") == 1
    assert units.read_units(0, "eventual") == 0.5


def test_a_query_rounds_its_page_once_and_batch_get_rounds_each_item():
    # Given the developer guide's two items of 1.5 KB and 6.5 KB
    sizes = [1536, 6656]
    # When a Query page reads both, and when BatchGetItem does (strongly consistent)
    query = units.query_read_units(sizes, "strong")
    batch = units.batch_get_read_units(sizes, "strong")
    # Then the Query bills 8 KiB (2 units) and BatchGetItem 4 + 8 KiB (3 units)
    assert (query, batch) == (2, 3)
    assert units.query_read_units([], "eventual") == 0.5  # an empty page still reads


def test_a_sparse_index_is_written_when_an_item_enters_leaves_or_moves_in_it():
    # Given a file row without the gc marker, with it, and with it at a later time
    row = {"pk": {"S": "OWNER#a"}, "sk": {"S": "FILE#f"}, "refcount": {"N": "0"}}
    marked = {**row, "gcShard": {"S": "GC#3"}, "lastTouchedAt": {"N": "1700000000000"}}
    touched = {**marked, "lastTouchedAt": {"N": "1700000000999"}}
    recounted = {**marked, "refcount": {"N": "1"}}
    # When it moves between them / Then the KEYS_ONLY index takes 1, 1, 2 or 0 writes
    assert len(units.index_writes(row, marked, GC_KEYS, KEYS)) == 1  # enters
    assert len(units.index_writes(marked, row, GC_KEYS, KEYS)) == 1  # leaves
    assert len(units.index_writes(marked, touched, GC_KEYS, KEYS)) == 2  # its sort key moves
    assert units.index_writes(marked, recounted, GC_KEYS, KEYS) == []  # no projected change
    assert units.index_writes(None, row, GC_KEYS, KEYS) == []  # never in it
    only_shard = {**row, "gcShard": {"S": "GC#3"}}
    assert units.index_writes(row, only_shard, GC_KEYS, KEYS) == []  # half a key is not in it


def test_an_index_entry_holds_only_the_keys():
    marked = {
        "pk": {"S": "OWNER#a"},
        "sk": {"S": "FILE#f"},
        "gcShard": {"S": "GC#3"},
        "lastTouchedAt": {"N": "1700000000000"},
        "filename": {"S": "x" * 5000},
    }
    (entry,) = units.index_writes(None, marked, GC_KEYS, KEYS)
    assert set(entry) == {"pk", "sk", "gcShard", "lastTouchedAt"}
    assert units.write_units(units.item_size(entry)) == 1


@pytest.mark.parametrize(
    ("size", "chunk", "requests"),
    [
        (0, units.SQS_REQUEST_CHUNK_BYTES, 1),
        (64 * 1024, units.SQS_REQUEST_CHUNK_BYTES, 1),
        (64 * 1024 + 1, units.SQS_REQUEST_CHUNK_BYTES, 2),
        (256 * 1024, units.SQS_REQUEST_CHUNK_BYTES, 4),
        (512 * 1024 + 1, units.HTTP_API_REQUEST_CHUNK_BYTES, 2),
        (32 * 1024 + 1, units.WEBSOCKET_MESSAGE_CHUNK_BYTES, 2),
    ],
)
def test_requests_are_billed_per_started_chunk_of_payload(size, chunk, requests):
    assert units.chunks(size, chunk) == requests


def test_lambda_compute_is_billed_duration_in_whole_milliseconds_times_memory():
    assert units.gb_seconds(0.1, 512) == pytest.approx(0.05)
    assert units.billed_ms(0.1001) == 101
    assert units.gb_seconds(15.0, 1024) == pytest.approx(15.0)


def test_prices_turn_quantities_into_dollars_by_service():
    # Given a million of each DynamoDB unit, a million API requests and one GB out
    usage = {
        pricing.DDB_READ_UNITS: 1e6,
        pricing.DDB_WRITE_UNITS: 1e6,
        pricing.HTTP_API_REQUESTS: 1e6,
        pricing.TRANSFER_OUT_BYTES: pricing.GB,
        pricing.S3_DELETE_REQUESTS: 1e6,
    }
    # When priced at the default table
    cost = pricing.cost_by_service(usage, pricing.PriceTable())
    # Then each is its list price, and deletes are free
    assert cost["DynamoDB"] == pytest.approx(0.125 + 0.625)
    assert cost["API Gateway"] == pytest.approx(1.0)
    assert cost["Data transfer out"] == pytest.approx(0.09)
    assert "S3" not in cost


def test_prices_can_be_overridden_inline_or_from_a_file(tmp_path):
    # Given an override inline and one in a file
    inline = pricing.load_prices(
        {"CAPACITY_PRICES": '{"region": "eu-west-1", "sqs_request_per_million": 0.5}'}
    )
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"lambda_gb_second_arm64": 0.00001}))
    from_file = pricing.load_prices({"CAPACITY_PRICES": str(path)})
    # Then only the fields given change
    assert (inline.region, inline.sqs_request_per_million) == ("eu-west-1", 0.5)
    assert inline.lambda_gb_second_arm64 == pricing.PriceTable().lambda_gb_second_arm64
    assert from_file.lambda_gb_second_arm64 == 0.00001
    # And a misspelt field is refused rather than ignored
    with pytest.raises(ValidationError):
        pricing.load_prices({"CAPACITY_PRICES": '{"lambda_gb_seconds": 1}'})


def test_image_tokens_follow_openais_high_detail_tiling():
    # Given gpt-4o's published per-image figures (85 + 170 per 512 px tile)
    from bench.capacity.cost_model import Workload

    w = Workload(image_base_tokens=85, image_tile_tokens=170)
    # When images are fitted in 2048 px, their short side brought to 768 px, and tiled
    # Then the counts are OpenAI's worked examples
    assert w.image_tokens(1024, 1024) == 765  # 768 x 768: 4 tiles
    assert w.image_tokens(2048, 4096) == 1105  # 768 x 1536: 6 tiles
    assert w.image_tokens(200, 100) == 255  # small: 1 tile


def test_a_watching_page_reads_the_thread_once_per_interval_and_once_more_at_the_end():
    from bench.capacity.cost_model import Workload

    assert Workload(stream_seconds=15, poll_interval_s=0.4).polls_per_reply == 38
    assert Workload(stream_seconds=2, poll_interval_s=1).polls_per_reply == 3


def test_generated_tables_replace_only_what_is_between_their_markers():
    from bench.capacity.doc import replace_blocks

    text = "intro\n<!-- capacity:cost -->\nold\n<!-- /capacity:cost -->\nafter\n"
    assert replace_blocks(text, {"cost": "new"}) == (
        "intro\n<!-- capacity:cost -->\nnew\n<!-- /capacity:cost -->\nafter\n"
    )
    with pytest.raises(ValueError, match="capacity:limits"):
        replace_blocks(text, {"limits": "x"})

"""moto, patched where it differs from AWS in ways the local stack and the integration
tests feel: its DynamoDB made to cost what a request costs on DynamoDB and to keep its
transaction guarantees when requests arrive on several threads, and its server made
to stop re-reading its own files on every request.

moto 5.2.5 (the version this was written against, read from its source) differs from
DynamoDB in four ways that matter here:

- `TransactWriteItems` deep-copies every table it touches, once per action, so that it
  can roll back: a save costs time in proportion to the whole table. Here a
  transaction keeps a copy of the items it touches only, and a cancelled one puts
  exactly those back (the indexes follow: moto derives them from the items).
- A `Query` sorts every item of the table, and weighs each one (its size in bytes),
  before it looks for what it wants. Here a query on the table reads the rows of its
  partition that its sort key condition selects (a `begins_with` on a thread's
  subscriptions no longer weighs each of its messages), and one on an index walks the
  items once without sorting them (moto keeps no index to read).
- Its server answers requests on a thread each with no isolation: the checks and
  writes of one transaction interleave with other requests. Here DynamoDB requests
  run one at a time, which gives the serializability DynamoDB promises transactions.
- It ignores `ClientRequestToken` (which botocore fills in on every call). Here a
  transaction that succeeded under a token is not applied again when the same token
  comes back with the same actions within 10 minutes, and the same token with other
  actions is refused with `IdempotentParameterMismatchException`, as DynamoDB does.

And its server, to find the service a request is for, lists moto's package directory
(a stat per entry) and inspects the service's response class, on every request. Both
answers are fixed once moto is imported; here they are computed once.

`apply()` installs this into moto once per process, and only on the versions listed
in `MOTO_VERSIONS`; on any other it changes nothing and warns, since it replaces moto
internals that another version may have changed.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

MOTO_VERSIONS = frozenset({"5.2.5"})
TOKEN_WINDOW_SECONDS = 600

_applied = False
_apply_lock = threading.Lock()
# One lock for every DynamoDB request of the process: moto's state is plain Python.
_requests = threading.RLock()
_partition = threading.local()


def apply() -> bool:
    """Patch moto (idempotent). False, with a warning, on a moto version this module
    was not written against."""
    global _applied
    with _apply_lock:
        if _applied:
            return True
        found = version("moto")
        if found not in MOTO_VERSIONS:
            warnings.warn(
                f"moto {found} is not one of {sorted(MOTO_VERSIONS)}: it is left as it is "
                "(DynamoDB transactions copy whole tables; requests are not isolated)",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
        _install()
        _applied = True
        return True


def _install() -> None:
    _install_dynamodb()
    _install_dispatch()


def _install_dispatch() -> None:
    import moto.core.responses
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    moto.core.responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        moto.core.responses.method_names_from_class
    )


def _install_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    mismatch = _mismatch_class()
    call_action = DynamoHandler.call_action
    transact_response = DynamoHandler.transact_write_items
    query = Table.query
    all_items = Table.all_items

    def isolated_call_action(self: Any) -> Any:
        with _requests:
            return call_action(self)

    def idempotent_transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return transact_response(self)
        tokens = _tokens(self.dynamodb_backend)
        fingerprint = _fingerprint(self.body["TransactItems"])
        seen = tokens.get(token)
        if seen is not None:
            if seen == fingerprint:
                from moto.core.responses import ActionResult

                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
            raise mismatch()
        result = transact_response(self)
        tokens.put(token, fingerprint)
        return result

    def partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        # A table query reads the rows of its partition that its sort key condition
        # selects; an index query (moto keeps no index) walks the items once, unsorted:
        # it sorts what it found by the index's keys.
        if index_name:
            _partition.wanted = (self, None, None)
        else:
            comparison = args[0] if args else kwargs.get("range_comparison")
            values = args[1] if len(args) > 1 else kwargs.get("range_objs")
            _partition.wanted = (self, hash_key, _sort_key_test(comparison, values))
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _partition.wanted = None

    def partition_items(self: Any) -> Any:
        wanted = getattr(_partition, "wanted", None)
        if wanted is None or wanted[0] is not self:
            return all_items(self)
        _, hash_key, selects = wanted
        if hash_key is None:
            if not self.range_key_attr:
                return list(self.items.values())
            return [item for partition in self.items.values() for item in partition.values()]
        found = self.items.get(hash_key)
        if found is None:
            return []
        if not self.range_key_attr:
            return [found]
        if selects is None:
            return list(found.values())
        return [item for sort_key, item in found.items() if selects(sort_key)]

    DynamoHandler.call_action = isolated_call_action
    DynamoHandler.transact_write_items = idempotent_transact_write_items
    DynamoDBBackend.transact_write_items = transact_write_items
    Table.query = partition_query
    Table.all_items = partition_items


def _sort_key_test(comparison: str | None, values: list[Any] | None) -> Callable[[Any], bool] | None:
    """A string sort key condition (`=`, `<`, `BETWEEN`, `begins_with`...) as a test of
    a row's sort key, made of moto's own comparison on the keys' plain strings, or None
    (every row of the partition) for any other. moto applies its condition again to
    what this selects, after it has weighed each row it reads: this only spares it the
    rows the condition would drop."""
    from moto.dynamodb.comparisons import get_comparison_func

    test = get_comparison_func(comparison) if comparison else None
    if test is None or not values or any(value.type != "S" for value in values):
        return None
    strings = [value.value for value in values]
    return lambda sort_key: sort_key.type == "S" and bool(test(sort_key.value, *strings))


# ---- transactions ------------------------------------------------------------------


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's `DynamoDBBackend.transact_write_items`, action for action, with the
    whole-table copies replaced by copies of the items the actions touch."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    before = _Snapshot()
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if op_type != "ConditionCheck":
                before.keep(self.get_table(table_name), self.get_keys_value(self.get_table(table_name), key))
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression, expression_attribute_names, expression_attribute_values
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            before.restore()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]
        except Exception as e:
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]
    if any(code is not None for code, _, _ in errors):
        before.restore()
        raise TransactionCanceledException(errors)


class _Snapshot:
    """The items one transaction may change, as they were before it: each restored in
    place on rollback (an item that did not exist is removed again)."""

    def __init__(self) -> None:
        self._items: list[tuple[Any, Any, Any, Any]] = []
        self._streams: dict[int, tuple[Any, int]] = {}

    def keep(self, table: Any, key: tuple[Any, Any]) -> None:
        hash_key, range_key = key
        current = table.get_item(hash_key, range_key)
        self._items.append((table, hash_key, range_key, copy.deepcopy(current)))
        if table.stream_shard is not None and id(table) not in self._streams:
            self._streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))

    def restore(self) -> None:
        for table, hash_key, range_key, old in reversed(self._items):
            if range_key is None:
                if old is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = old
            elif old is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = old
        for shard, length in self._streams.values():
            del shard.items[length:]


# ---- client request tokens -----------------------------------------------------------


def _fingerprint(transact_items: list[dict[str, Any]]) -> bytes:
    return hashlib.sha256(json.dumps(transact_items, sort_keys=True).encode()).digest()


class _Tokens:
    """Tokens of the transactions that succeeded in the last 10 minutes."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, token: str) -> bytes | None:
        self._expire()
        found = self._seen.get(token)
        return None if found is None else found[1]

    def put(self, token: str, fingerprint: bytes) -> None:
        self._seen[token] = (time.monotonic(), fingerprint)
        self._seen.move_to_end(token)

    def _expire(self) -> None:
        cutoff = time.monotonic() - TOKEN_WINDOW_SECONDS
        while self._seen:
            token, (at, _) = next(iter(self._seen.items()))
            if at > cutoff:
                return
            del self._seen[token]


def _tokens(backend: Any) -> _Tokens:
    """One token store per account and region (a moto reset makes new backends)."""
    store = backend.__dict__.get("_agentfiles_tokens")
    if store is None:
        store = backend.__dict__["_agentfiles_tokens"] = _Tokens()
    return store


def _mismatch_class() -> type[Exception]:
    from moto.dynamodb.exceptions import DynamodbException

    class IdempotentParameterMismatchException(DynamodbException):
        error_type = "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"

        def __init__(self) -> None:
            super().__init__(
                self.error_type,
                message="The request uses the same client token as a previous, but non-identical request.",
            )

    return IdempotentParameterMismatchException

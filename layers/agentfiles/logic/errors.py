"""What the data layer's errors mean to a caller of the API. The API's one exception
handler uses this for any data error a use case did not map with more context."""

from __future__ import annotations

from agentfiles.data.errors import BadCursor, ConditionFailed, Contention, DataError, Fenced, Unavailable
from agentfiles.errors import AgentFilesError, BadRequest, Conflict, ServiceUnavailable


def domain_error(error: DataError) -> AgentFilesError:
    if isinstance(error, Fenced):
        return Conflict("this account is being erased", code="account_erasing")
    if isinstance(error, BadCursor):
        return BadRequest(str(error), code="invalid_cursor")
    if isinstance(error, Contention | ConditionFailed):
        return Conflict("the resource changed while the request ran; retry", code="conflict")
    if isinstance(error, Unavailable):
        return ServiceUnavailable("a store is unavailable; retry the request", code="service_unavailable")
    return ServiceUnavailable("the request could not be completed; retry", code="service_unavailable")

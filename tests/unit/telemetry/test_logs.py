"""Kopf's refused event posts into a namespace being deleted are routine: not logged as errors."""

from __future__ import annotations

import logging

import pytest

from milvusops.telemetry.logs import EventsIntoGoingNamespaces

RETRY = (
    "Request attempt #1/9 failed; will retry: POST https://k/api/v1/namespaces/t/events -> APIForbiddenError('events "
    '"kopf-event-" is forbidden: unable to create new content in namespace t because it is being terminated\', {})'
)
GONE = (
    'Failed to post an event. Ignoring and continuing. Code: 404. Message: namespaces "t" not found. '
    "Details: {'name': 't', 'kind': 'namespaces'}Event: type='Normal', reason='InUse', message='x'."
)
OTHER = "Request attempt #1/9 failed; will retry: POST https://k/api/v1/namespaces/t/events -> APIServerError('boom')"


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("kopf._core.engines.posting", level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("level", "message", "after", "shown_at_info"),
    [
        (logging.ERROR, RETRY, logging.DEBUG, False),
        (logging.WARNING, GONE, logging.INFO, True),
        (logging.ERROR, OTHER, logging.ERROR, True),  # a real failure stays an error
    ],
)
def test_refusals_of_a_going_namespace_are_lowered(
    level: int, message: str, after: int, shown_at_info: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    record = _record(level, message)
    assert EventsIntoGoingNamespaces().filter(record) is shown_at_info
    assert (record.levelno, record.levelname) == (after, logging.getLevelName(after))

"""A join's partition key: apply refuses joins that would pair different partitions."""

from __future__ import annotations

import pytest

from tests.domain_registry.mesh import REVENUE, assert_refusal, edited, errors_of

KEY = '    key: "${event.params.day}"'


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param(
            edited(REVENUE, KEY, "", edited(REVENUE, '"${key}"', '"${event.params.day}"')),
            f"{REVENUE}: triggers[0].key: 'all' join whose params read upstream event values "
            "needs a 'key' (for example key: \"${event.params.day}\"), or it joins events of "
            "different partitions",
            id="join-without-key",
        ),
        pytest.param(
            edited(
                REVENUE,
                "    all:\n      - {domain: sales, recipe: daily}\n"
                "      - {domain: payments, recipe: settle}\n",
                "    at_least:\n      n: 2\n      of:\n        - {domain: sales, recipe: daily}\n"
                "        - {domain: payments, recipe: settle}\n",
                edited(REVENUE, KEY, "", edited(REVENUE, '"${key}"', '"${event.params.day}"')),
            ),
            f"{REVENUE}: triggers[0].key: 'at_least' join whose params read upstream event "
            "values needs a 'key' (for example key: \"${event.params.day}\"), or it joins "
            "events of different partitions",
            id="at-least-without-key",
        ),
        pytest.param(
            edited(REVENUE, '"${event.params.day}"', '"${params.day}"'),
            f"{REVENUE}: triggers[0].key: key '${{params.day}}' reads no upstream event value; "
            "use a placeholder such as '${event.params.day}'",
            id="key-reads-no-event",
        ),
        pytest.param(
            edited(REVENUE, '"${event.params.day}"', '"2026-11-01"'),
            f"{REVENUE}: triggers[0].key: key '2026-11-01' reads no upstream event value; "
            "use a placeholder such as '${event.params.day}'",
            id="constant-key",
        ),
        pytest.param(
            edited(REVENUE, KEY, ""),
            f"{REVENUE}: triggers[0].params: '${{key}}' is read but the trigger has no 'key'",
            id="key-read-without-key",
        ),
    ],
)
def test_refused(files: dict[str, str], message: str) -> None:
    assert_refusal(files, message)


def test_a_join_reading_no_event_value_needs_no_key() -> None:
    files = edited(REVENUE, KEY, "", edited(REVENUE, 'params: {day: "${key}"}', "params: {}"))
    assert not [e for e in errors_of(files) if "key" in e]

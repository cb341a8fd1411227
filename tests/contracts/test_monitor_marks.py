"""Messages of a monitor's check must say which dataset, domain and kitchen; else refused."""

from __future__ import annotations

import json

import pytest

from sous_contracts import decode_message
from sous_contracts.testing import sample_messages


@pytest.mark.parametrize("type_name", ["RunTests", "TestResult", "TestSuiteFinished"])
def test_a_monitor_check_without_its_dataset_is_refused(type_name: str) -> None:
    [sample] = [m for m in sample_messages() if m.type == type_name]
    data = json.loads(sample.to_json())
    marked = {
        **data,
        "monitor": "revenue",
        "dataset": "finance.revenue",
        "domain": "finance",
        "kitchen": "prod",
    }
    assert decode_message(json.dumps(marked).encode()).monitor == "revenue"
    with pytest.raises(Exception, match="a monitor's check needs dataset"):
        decode_message(json.dumps({**marked, "dataset": None}).encode())
    if type_name == "TestSuiteFinished":
        with pytest.raises(Exception, match="a monitor's check needs domain, kitchen"):
            decode_message(json.dumps({**marked, "domain": None, "kitchen": None}).encode())

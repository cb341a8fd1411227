"""The cells of `sous kitchen list` and `sous kitchen versions`."""

from __future__ import annotations

import pytest

from sous.kitchen_cmd import lifetime, version_row


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (604800.0, "7d"),
        (28800.0, "8h"),
        (5400.0, "90m"),
        (90061.0, "90061s"),
        (0.5, "0.5s"),
        (0.0, "0s"),
    ],
)
def test_a_ttl_reads_as_specs_write_it(seconds: float | None, shown: str) -> None:
    assert lifetime(seconds) == shown


def test_a_version_row_names_the_recipe_and_a_new_recipe_has_no_base() -> None:
    row = version_row(
        {
            "domain": "sales",
            "recipe": "weekly",
            "version": "sha256:" + "a" * 64,
            "base_version": None,
            "applied_at": "2026-12-02T17:31:00+01:00",
            "applied_by": None,
        }
    )
    assert row == ("sales/weekly", "sha256:aaaaaaaaaaaa", "new recipe", "2026-12-02 16:31:00", "-")

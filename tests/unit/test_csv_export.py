"""CSV cells: what a spreadsheet would run as a formula stays text."""

from __future__ import annotations

import pytest

from pigeon_api.csv_export import cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+1", "'+1+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
    ],
)
def test_cells(value: object, written: str) -> None:
    assert cell(value) == written

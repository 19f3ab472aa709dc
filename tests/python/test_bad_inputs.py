"""Every row of the bad-input table (``bad_inputs.py``) gives its documented error, and
``docs/errors.md`` is the table as rendered now."""

from __future__ import annotations

from pathlib import Path

import pytest

from bad_inputs import ROWS, render, outcome


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.code.split('(')[0]}-{r.what}" for r in ROWS])
def test_bad_input_gives_the_documented_error(row):
    got, message = outcome(row)
    if isinstance(row.expected, int):
        assert got == row.expected, message
        assert message.startswith("semrsm: error: ") and "\n" not in message
        assert "Traceback" not in message
    else:
        assert got is not None, f"{row.code} raised nothing"
        assert issubclass(got, row.expected), (got, message)
        assert message


def test_docs_errors_md_is_the_rendered_table():
    path = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
    assert path.read_text() == render(), (
        "docs/errors.md is out of date: python tests/python/bad_inputs.py > docs/errors.md"
    )

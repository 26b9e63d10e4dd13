"""The role column's text labels (``session._role_labels``, converting a numeric column
once per distinct value) are those of ``validate.role_labels`` converting every row, for
every kind of role column, and the codes point at the right labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apim.data import validate
from apim.data.session import SessionData, _role_labels

COLUMNS = {
    "int64": pd.Series([2, 1, 2, 2, 1]),
    "int32": pd.Series(np.array([0, 1, 1, 0], np.int32)),
    "whole floats": pd.Series([1.0, 2.0, 1.0]),
    "fractions": pd.Series([1.5, 2.0, 1.5]),
    "floats with NaN": pd.Series([1.0, np.nan, 2.0]),
    "bool": pd.Series([True, False, True]),
    "text": pd.Series(["T", "P", "T"]),
    "categorical": pd.Series(pd.Categorical(["b", "a", "b"])),
    "nullable Int64": pd.Series(pd.array([1, 2, None], dtype="Int64")),
    "negative and large": pd.Series([-3, 10 ** 15, -3]),
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_labels_equal_row_by_row_conversion(name):
    values = COLUMNS[name]
    labels, codes, names = _role_labels(values)
    expected = validate.role_labels(values)
    assert labels.tolist() == expected.tolist()
    assert labels.dtype == expected.dtype
    assert labels.index.equals(values.index)
    if codes is not None:  # every row's code names its label
        assert [names[c] for c in codes] == expected.tolist()


def test_from_long_with_numeric_roles_orders_and_sorts_as_before():
    # rows out of order, roles 2 (reference) and 1 given as numbers
    frame = pd.DataFrame({"d": [2, 1, 1, 2, 1, 1], "t": [1, 2, 1, 1, 2, 1],
                          "r": [1, 2, 1, 2, 1, 2], "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    data = SessionData.from_long(frame, dyad="d", session="t", role="r", roles=(2, 1))
    assert data.roles == ("2", "1")
    out = data.frame
    assert out["role"].tolist() == ["2", "1", "2", "1", "2", "1"]
    assert out["y"].tolist() == [6.0, 3.0, 2.0, 5.0, 4.0, 1.0]
    assert out["row"].tolist() == [6, 3, 2, 5, 4, 1]

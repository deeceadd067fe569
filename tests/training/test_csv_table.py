"""CSV parsing: labels to classes, numeric features, and each kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest

from dropviz.training.csv_table import parse_csv
from dropviz.training.errors import DatasetError


def test_parse_csv_string_labels_sorted() -> None:
    table = parse_csv(b"a,b,label\n1,2,dog\n3,4.5,cat\n-5,6e2,dog\n7,8,cat\n")
    assert table.class_names == ("cat", "dog")
    assert table.labels.tolist() == [1, 0, 1, 0]
    assert table.feature_names == ("a", "b")
    assert table.features.dtype == np.float64
    assert table.features.tolist() == [[1, 2], [3, 4.5], [-5, 600], [7, 8]]


def test_parse_csv_integer_labels_in_numeric_order() -> None:
    table = parse_csv(b"x,label\n1,10\n2,9\n3,10\n4,09\n5,-1\n6,-1\n")
    assert table.class_names == ("-1", "9", "10")
    assert table.labels.tolist() == [2, 1, 2, 1, 0, 0]


def test_parse_csv_label_column_anywhere() -> None:
    table = parse_csv(
        b"species,petal_length,petal_width\nsetosa,1.4,0.2\nsetosa,1.3,0.2\n"
        b"virginica,6.0,2.5\nvirginica,5.1,1.9\n",
        label_column="species",
    )
    assert table.feature_names == ("petal_length", "petal_width")
    assert table.features[2].tolist() == [6.0, 2.5]
    assert table.label_column == "species"


def test_parse_csv_bom_crlf_quotes_and_blank_lines() -> None:
    content = (
        b'\xef\xbb\xbf"a", b ,label\r\n\r\n"1.5",2,"x"\r\n3, 4 ,y\r\n'
        b"5,6,x\r\n7,8,y\r\n\r\n"
    )
    table = parse_csv(content)
    assert table.feature_names == ("a", "b")
    assert table.n_rows == 4
    assert table.features[0].tolist() == [1.5, 2.0]
    assert table.features[1].tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    "content, kind, loc, words",
    [
        pytest.param(b"", "csv_empty", ("body",), "empty", id="empty"),
        pytest.param(b"  \n\n", "csv_empty", ("body",), "empty", id="whitespace"),
        pytest.param(
            b"a,label\n", "csv_no_rows", ("body",), "no data rows", id="header-only"
        ),
        pytest.param(
            b"a,b\n1,2\n",
            "csv_label_column_missing",
            ("label_column",),
            "columns 'a', 'b'",
            id="no-label-column",
        ),
        pytest.param(
            b"label\nx\ny\n", "csv_no_features", ("body",), "feature", id="no-features"
        ),
        pytest.param(
            b"a,label\n1,x\n2,y\nabc,x\n3,y\n",
            "csv_not_a_number",
            ("body", 4, "a"),
            "Line 4, column 'a' of the CSV contains 'abc'",
            id="not-a-number",
        ),
        pytest.param(
            b"a,label\n1,x\n,y\n",
            "csv_empty_cell",
            ("body", 3, "a"),
            "Line 3, column 'a'",
            id="empty-cell",
        ),
        pytest.param(
            b"a,label\n1,x\nnan,y\n",
            "csv_not_finite",
            ("body", 3, "a"),
            "'nan'",
            id="nan",
        ),
        pytest.param(
            b"a,label\n1,x\n2,\n",
            "csv_empty_label",
            ("body", 3, "label"),
            "label column",
            id="empty-label",
        ),
        pytest.param(
            b"a,b,label\n1,2,x\n3,y\n",
            "csv_ragged_row",
            ("body", 3),
            "Line 3 of the CSV has 2 cells, but the header has 3 columns",
            id="short-row",
        ),
        pytest.param(
            b"a,label\n1,x,9\n",
            "csv_ragged_row",
            ("body", 2),
            "3 cells",
            id="long-row",
        ),
        pytest.param(
            b"a,label\n1,x\n2,x\n3,x\n",
            "csv_one_class",
            ("label_column",),
            "only one class, 'x', in all 3 rows",
            id="one-class",
        ),
        pytest.param(
            b"a,label\n1,x\n2,x\n3,y\n",
            "csv_class_too_small",
            ("label_column",),
            "single row ('y')",
            id="class-of-one",
        ),
        pytest.param(
            b"a,a,label\n1,2,x\n", "csv_header", ("body", 1), "'a'", id="duplicate"
        ),
        pytest.param(
            b"a,,label\n1,2,x\n", "csv_header", ("body", 1), "Column 2", id="unnamed"
        ),
        pytest.param(
            b"a,label\n\xff,x\n",
            "csv_encoding",
            ("body",),
            "0xff at offset 8",
            id="utf8",
        ),
        pytest.param(
            b'a,label\n"1,x\n',
            "csv_syntax",
            ("body", 2),
            "cannot be parsed",
            id="quote",
        ),
    ],
)
def test_parse_csv_invalid_raises(
    content: bytes, kind: str, loc: tuple[str | int, ...], words: str
) -> None:
    with pytest.raises(DatasetError) as raised:
        parse_csv(content)
    assert raised.value.kind == kind
    assert raised.value.loc == loc
    assert words in str(raised.value)


def test_parse_csv_missing_label_column_lists_at_most_20() -> None:
    header = ",".join(f"c{i}" for i in range(30)).encode()
    with pytest.raises(DatasetError) as raised:
        parse_csv(header + b"\n" + b",".join([b"1"] * 30) + b"\n", "target")
    message = str(raised.value)
    assert "label_column = 'target'" in message
    assert "'c19' and 10 more" in message
    assert "'c20'" not in message

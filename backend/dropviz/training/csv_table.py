"""Parse a CSV of numeric feature columns and one label column into arrays.

The first non-blank line is the header. Every column except the label column
must contain a finite number in every row. Labels may be text or integers, and
classes are numbered in sorted label order: numeric order when every label is
an integer ("2" before "10"), string order otherwise. Blank lines are skipped.
"""

from __future__ import annotations

import csv
import io
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dropviz.training.errors import DatasetError

if TYPE_CHECKING:
    from _csv import Reader  # the type of csv.reader(); csv does not export it

MAX_LISTED_NAMES = 20  # column or class names quoted in one error message


@dataclass(frozen=True)
class LabeledTable:
    """The parsed CSV: float64 features and int64 class indices, in file order."""

    features: np.ndarray  # (n_rows, n_features) float64
    labels: np.ndarray  # (n_rows,) int64, indices into class_names
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    label_column: str

    @property
    def n_rows(self) -> int:
        return int(self.features.shape[0])


def parse_csv(content: bytes, label_column: str = "label") -> LabeledTable:
    """Parse UTF-8 CSV bytes; raise DatasetError naming the line and column at fault."""
    text = _decode(content)
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = _read_header(rows)
    if label_column not in header:
        raise DatasetError(
            f"label_column = {label_column!r} is not a column of the CSV, whose "
            f"header has the columns {_list_names(header)}. Pass the name of the "
            "column that holds the labels as ?label_column=<name>.",
            loc=("label_column",),
            kind="csv_label_column_missing",
            value=label_column,
        )
    if len(header) < 2:
        raise DatasetError(
            f"The CSV has only the label column {label_column!r}; it needs at "
            "least one numeric feature column as well.",
            loc=("body",),
            kind="csv_no_features",
        )

    label_index = header.index(label_column)
    feature_names = tuple(n for i, n in enumerate(header) if i != label_index)
    values, label_texts = _read_rows(rows, header, label_index)
    if not label_texts:
        raise DatasetError(
            "The CSV has a header but no data rows; add at least one row per "
            "class, and two per class so that each class can be split into "
            "training and test rows.",
            loc=("body",),
            kind="csv_no_rows",
        )

    labels, class_names = _number_classes(label_texts, label_column)
    features = np.frombuffer(values, dtype=np.float64).reshape(
        len(label_texts), len(feature_names)
    )
    return LabeledTable(features, labels, class_names, feature_names, label_column)


def _decode(content: bytes) -> str:
    if not content.strip():
        raise DatasetError(
            "The CSV is empty; send a header line, then one line per example.",
            loc=("body",),
            kind="csv_empty",
        )
    try:
        return content.decode("utf-8-sig")  # drops a byte order mark if present
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"The CSV is not valid UTF-8: the byte 0x{content[exc.start]:02x} at "
            f"offset {exc.start:,} cannot be decoded. Save the file as UTF-8 and "
            "upload it again.",
            loc=("body",),
            kind="csv_encoding",
        ) from exc


def _read_header(rows: Reader) -> list[str]:
    for row in _csv_rows(rows):
        if not _is_blank(row):
            header = [name.strip() for name in row]
            break
    else:
        raise DatasetError(
            "The CSV contains only blank lines; send a header line, then one line "
            "per example.",
            loc=("body",),
            kind="csv_empty",
        )
    for position, name in enumerate(header, start=1):
        if not name:
            raise DatasetError(
                f"Column {position} of the CSV header has no name; give every "
                "column a name in the first line.",
                loc=("body", rows.line_num),
                kind="csv_header",
            )
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        raise DatasetError(
            f"The CSV header names the columns {_list_names(duplicates)} more than "
            "once; give every column a unique name.",
            loc=("body", rows.line_num),
            kind="csv_header",
            value=duplicates,
        )
    return header


def _read_rows(
    rows: Reader, header: list[str], label_index: int
) -> tuple[array[float], list[str]]:
    """Convert every data row; features go into one flat float64 buffer."""
    values: array[float] = array("d")
    label_texts: list[str] = []
    for row in _csv_rows(rows):
        if _is_blank(row):
            continue
        line = rows.line_num
        if len(row) != len(header):
            raise DatasetError(
                f"Line {line} of the CSV has {len(row)} cell"
                f"{'' if len(row) == 1 else 's'}, but the header has {len(header)} "
                "columns; every row needs one value per column.",
                loc=("body", line),
                kind="csv_ragged_row",
                value=len(row),
            )
        for index, cell in enumerate(row):
            if index == label_index:
                label_texts.append(_label_text(cell, line, header[index]))
            else:
                values.append(_feature_value(cell, line, header[index]))
    return values, label_texts


def _csv_rows(rows: Reader) -> Iterator[list[str]]:
    """Yield the rows of `rows`, turning csv.Error into DatasetError."""
    while True:
        try:
            yield next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DatasetError(
                f"Line {rows.line_num} of the CSV cannot be parsed: {exc}. Check "
                "its quoting.",
                loc=("body", rows.line_num),
                kind="csv_syntax",
            ) from exc


def _feature_value(cell: str, line: int, column: str) -> float:
    location = f"Line {line}, column {column!r}"
    if not cell.strip():
        raise DatasetError(
            f"{location} of the CSV is empty; every feature cell needs a number, "
            "as missing values are not supported. Fill the cell or drop the row.",
            loc=("body", line, column),
            kind="csv_empty_cell",
            value=cell,
        )
    try:
        value = float(cell)
    except ValueError:
        raise DatasetError(
            f"{location} of the CSV contains {cell!r}, which is not a number. "
            "Every column except the label column must contain numbers; fix the "
            "cell, or drop the column, or name it as the label column.",
            loc=("body", line, column),
            kind="csv_not_a_number",
            value=cell,
        ) from None
    if not np.isfinite(value):
        raise DatasetError(
            f"{location} of the CSV contains {cell!r}, which is not a finite "
            "number. Replace it with a finite value or drop the row.",
            loc=("body", line, column),
            kind="csv_not_finite",
            value=cell,
        )
    return value


def _label_text(cell: str, line: int, column: str) -> str:
    label = cell.strip()
    if not label:
        raise DatasetError(
            f"Line {line}, column {column!r} of the CSV is empty, but it is the "
            "label column and every row needs a label. Fill the cell or drop "
            "the row.",
            loc=("body", line, column),
            kind="csv_empty_label",
            value=cell,
        )
    return label


def _number_classes(
    label_texts: list[str], label_column: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map labels to class indices in sorted order; check each class has two rows."""
    try:
        # "07" and "7" are one class when every label is an integer.
        label_texts = [str(int(text)) for text in label_texts]
    except ValueError:
        class_names = tuple(sorted(set(label_texts)))
    else:
        class_names = tuple(sorted(set(label_texts), key=int))
    index_of = {name: index for index, name in enumerate(class_names)}
    labels = np.array([index_of[text] for text in label_texts], dtype=np.int64)

    if len(class_names) < 2:
        raise DatasetError(
            f"The label column {label_column!r} has only one class, "
            f"{class_names[0]!r}, in all {len(labels):,} rows; a classifier needs "
            "at least two classes. Add rows of other classes, or pass another "
            "label_column.",
            loc=("label_column",),
            kind="csv_one_class",
            value=label_column,
        )
    counts = np.bincount(labels, minlength=len(class_names))  # (n_classes,)
    single = [class_names[i] for i in np.flatnonzero(counts < 2)]
    if single:
        raise DatasetError(
            f"The label column {label_column!r} has {len(single):,} classes with a "
            f"single row ({_list_names(single)}); every class needs at least two "
            "rows, one for training and one for testing. Add rows, or check that "
            "label_column names the label column.",
            loc=("label_column",),
            kind="csv_class_too_small",
            value=label_column,
        )
    return labels, class_names


def _is_blank(row: list[str]) -> bool:
    return all(not cell.strip() for cell in row)


def _list_names(names: list[str]) -> str:
    quoted = ", ".join(repr(name) for name in names[:MAX_LISTED_NAMES])
    more = len(names) - MAX_LISTED_NAMES
    return quoted + (f" and {more:,} more" if more > 0 else "")

"""The error that data loading raises for a file or setting that it cannot use."""

from __future__ import annotations


class DatasetError(ValueError):
    """A data set that cannot be loaded or trained on, caused by the request's input.

    The message names the file or field, the rejected value and the fix. `loc`
    names the field the way FastAPI's validation errors do: ("data_dir",),
    ("label_column",), or ("body", line, column) for one cell of an uploaded
    CSV. `kind` is a short machine-readable reason such as "idx_magic".
    """

    def __init__(
        self,
        message: str,
        *,
        loc: tuple[str | int, ...],
        kind: str,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.kind = kind
        self.value = value

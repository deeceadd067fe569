"""The data sets a run can train on, and loading the one a new run names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dropviz.config import Settings
from dropviz.datasets.uploads import Upload, UploadNotFoundError, UploadStore
from dropviz.training.config import IDX_DATASETS, TrainConfig, is_csv_dataset
from dropviz.training.data import DATASET_INFO, Dataset, DatasetInfo, load_dataset
from dropviz.training.errors import DatasetError
from dropviz.training.idx import describe_idx_folder_problem


@dataclass(frozen=True)
class CatalogueEntry:
    """One data set as `GET /api/datasets` lists it."""

    info: DatasetInfo
    available: bool
    hint: str | None  # why an unavailable set cannot load, and the fix


def list_datasets(settings: Settings, uploads: UploadStore) -> list[CatalogueEntry]:
    """List the built-in sets, then the uploads in upload order.

    An IDX set is available when its four files exist in the settings' data
    folder. Their content is checked only when a run reads them.
    """
    entries = []
    for info in DATASET_INFO.values():
        hint = None
        if info.kind == "idx":
            hint = describe_idx_folder_problem(info.name, settings.data_dir)
        entries.append(CatalogueEntry(info, available=hint is None, hint=hint))
    return entries + [describe_upload(upload) for upload in uploads.list()]


def describe_upload(upload: Upload) -> CatalogueEntry:
    table = upload.table
    info = DatasetInfo(
        name=upload.name,
        description=(
            f"{upload.title}: uploaded CSV with {table.n_rows:,} rows, label "
            f"column {table.label_column!r}"
        ),
        n_features=len(table.feature_names),
        n_classes=len(table.class_names),
        input_shape=None,
        kind="csv",
    )
    return CatalogueEntry(info, available=True, hint=None)


def load_run_dataset(
    config: TrainConfig, settings: Settings, uploads: UploadStore
) -> tuple[TrainConfig, Dataset]:
    """Load the data set of a new run, and return the config the run records.

    An IDX set without `data_dir` reads from the settings' data folder, and
    the returned config names that folder, so the run shows what it read.
    Raises DatasetError for an unknown upload or a missing or invalid file.
    """
    if (
        config.dataset in IDX_DATASETS
        and config.data_dir is None
        and settings.data_dir is not None
    ):
        config = dataclasses.replace(config, data_dir=str(settings.data_dir.resolve()))
    table = None
    if is_csv_dataset(config.dataset):
        try:
            table = uploads.get(config.dataset).table
        except UploadNotFoundError:
            raise DatasetError(
                f"dataset = {config.dataset!r} is not an uploaded data set; it may "
                "have been deleted, or the server restarted since the upload. GET "
                "/api/datasets lists the data sets, and POST /api/datasets/csv "
                "uploads a CSV again.",
                loc=("dataset",),
                kind="dataset_not_found",
                value=config.dataset,
            ) from None
    return config, load_dataset(config, table)

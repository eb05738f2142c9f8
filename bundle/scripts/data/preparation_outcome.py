# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""What :func:`scripts.data.prepare.prepare_dataset` made: where the dataset is, what it holds, its console summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scripts.data.splits import Fold


@dataclass(frozen=True)
class PreparedDataset:
    """The outcome of :func:`prepare_dataset`: where the dataset is and what it holds."""

    folder: Path
    converted: bool  # True: built from an autoPET release; False: an nnU-Net raw dataset prepared in place
    patients: dict[str, str]  # case id -> patient id, labelled cases
    lesion_voxels: dict[str, int]  # case id -> lesion voxel count, labelled cases
    resampled: list[str]  # cases whose PET was resampled onto the CT grid
    splits: list[Fold]
    splits_from: str  # how the split came about, for the summary
    test_cases: list[str]

    def summary(self) -> str:
        """A few lines for the console: studies, patients, positives/negatives, resampling, per-fold sizes."""
        positives = sum(1 for voxels in self.lesion_voxels.values() if voxels > 0)
        studies = count_of(len(self.patients), "study", "studies")
        patients = count_of(len(set(self.patients.values())), "patient")
        lines = [
            f"{'converted into' if self.converted else 'prepared in place'} {self.folder}: {studies} of {patients} "
            f"({positives} with lesions, {len(self.patients) - positives} negative)"
        ]
        if self.resampled:
            lines.append(f"PET resampled onto the CT grid for {count_of(len(self.resampled), 'study', 'studies')}")
        if self.test_cases:
            tests = count_of(len(self.test_cases), "unlabelled test case")
            lines.append(f"{tests} in imagesTs (datalist_all.json 'testing')")
        lines.append(f"{len(self.splits)} folds ({self.splits_from}):")
        for index, fold in enumerate(self.splits):
            val_patients = len({self.patients[case] for case in fold["val"]})
            val_positives = sum(1 for case in fold["val"] if self.lesion_voxels[case] > 0)
            lines.append(
                f"  fold {index}: train {len(fold['train'])}, val {len(fold['val'])} "
                f"({count_of(val_patients, 'patient')}, {val_positives} with lesions)"
            )
        return "\n".join(lines)


def count_of(number: int, singular: str, plural: str | None = None) -> str:
    """``"1 study"``, ``"3 studies"``."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"

# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The studies of one inference run: checked before the first forward pass, broken ones skipped and reported.

``inference.json`` wires it like this::

    "study_batch": {"_target_": "scripts.inference.study_batch.StudyBatch", "source": "@input_path", ...},
    "dataset": {"_target_": "scripts.inference.study_batch.StudyDataset", "data": "$@study_batch.items", ...},
    "evaluator": {..., "iteration_update": "$@study_batch.iteration"},
    "run": ["$@evaluator.run()", ..., "$@study_batch.finish()"]

1. Before anything is computed, :class:`StudyBatch` checks that the output folder can be written and reads every
   study's headers (:func:`scripts.data.study_headers.check_item_headers`); a study that fails is set aside.
2. A study whose voxels turn out unusable when loaded (NaN, a CT not in HU, ...) becomes a marker item in
   :class:`StudyDataset` instead of stopping the run, and :meth:`StudyBatch.iteration` skips it.
3. :meth:`StudyBatch.finish` raises one :class:`~scripts.errors.BatchInputError` naming every study set aside, so
   the run ends with one ``error: <file>: <problem>`` line per broken study and a non-zero exit, after the good
   studies' masks (written atomically, :class:`scripts.inference.mask_writer.AtomicNibabelWriter`) are in place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from ignite.engine import Engine
from monai.data import Dataset
from scripts.atomic_io import check_writable_folder, remove_stale_staging
from scripts.data.inference_inputs import find_inference_items, study_name
from scripts.data.study_headers import check_item_headers
from scripts.errors import BatchInputError, InputDataError, input_error_in

logger = logging.getLogger(__name__)

# Keys of the marker item that stands in for a study that could not be loaded.
BROKEN_CASE, BROKEN_PATH, BROKEN_PROBLEM = "broken_case", "broken_path", "broken_problem"


def _item_image(item: Mapping[str, Any]) -> str:
    image = item.get("image")
    return str(image[0] if isinstance(image, (list, tuple)) and image else image)


class StudyBatch:
    """Find, check and track the studies of one inference run (see the module docstring).

    Args:
        source: what ``scripts.data.inference_inputs.find_inference_items`` accepts (folder, datalist, file).
        output_dir: where the masks go; checked for writing here, stale staging files of killed runs removed.
        datalist_key: the datalist section, for a datalist ``source``.
        check_plausibility: apply the voxel-size rules to the headers (the loader applies the intensity rules).

    Raises:
        InputDataError: the output folder cannot be written, ``source`` holds no studies at all, or none of them
            passes the header checks (a :class:`~scripts.errors.BatchInputError` naming each).
    """

    def __init__(
        self,
        source: str | os.PathLike,
        output_dir: str | os.PathLike,
        datalist_key: str = "testing",
        check_plausibility: bool = True,
    ) -> None:
        self.output_dir = check_writable_folder(output_dir)
        remove_stale_staging(self.output_dir, None, logger.warning)
        found = find_inference_items(source, datalist_key, strict=False)
        self.broken: list[InputDataError] = []
        self.items: list[dict] = []
        self.processed: list[dict] = []
        owners: dict[str, str] = {}
        for item in found:
            case = str(item.get("case") or study_name(_item_image(item)))
            try:
                check_item_headers(item, check_plausibility)
                if case in owners:
                    raise InputDataError(
                        _item_image(item), f"its output name {case!r} is already that of {owners[case]}"
                    )
            except InputDataError as error:
                self._set_aside(case, error)
                continue
            owners[case] = _item_image(item)
            self.items.append(dict(item, case=case))
        self.total = len(found)
        if not self.items:
            raise BatchInputError(self.broken)  # nothing to compute: say so now
        logger.info("%d of %d studies passed the checks before inference", len(self.items), self.total)

    def _set_aside(self, case: str, error: InputDataError) -> None:
        logger.error("skipping study %s: %s", case, error)
        self.broken.append(error)

    def iteration(self, engine: Engine, batch: Mapping[str, Any]) -> dict:
        """The evaluator's iteration: skip a marker of a study that could not be loaded, else infer as usual."""
        if BROKEN_CASE in batch:
            for case, path, problem in zip(batch[BROKEN_CASE], batch[BROKEN_PATH], batch[BROKEN_PROBLEM], strict=True):
                self._set_aside(str(case), InputDataError(path, problem))
            return {}
        output = engine._iteration(engine, batch)  # the evaluator's own iteration (SupervisedEvaluator)
        cases = {str(case) for case in batch.get("case", [])}
        self.processed.extend(item for item in self.items if item["case"] in cases)
        return output

    def finish(self) -> None:
        """Log the count; raise :class:`BatchInputError` naming each study that was set aside."""
        logger.info("inference wrote %d of %d studies to %s", len(self.processed), self.total, self.output_dir)
        if self.broken:
            raise BatchInputError(self.broken)


class StudyDataset(Dataset):
    """A MONAI ``Dataset`` whose items that fail with bad input become marker items instead of ending the run.

    Any error with an :class:`~scripts.errors.InputDataError` behind it (the loader's checks) is caught; every
    other error propagates as usual.
    """

    def _transform(self, index: int) -> Any:
        try:
            return super()._transform(index)
        except Exception as error:
            cause = input_error_in(error)
            if cause is None:
                raise
            case = str(self.data[index].get("case", index)) if isinstance(self.data[index], Mapping) else str(index)
            return {BROKEN_CASE: case, BROKEN_PATH: cause.path, BROKEN_PROBLEM: cause.problem}

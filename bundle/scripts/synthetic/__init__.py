# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Realistic synthetic whole-body PET/CT studies (autoPET layout) for training and tests without real data.

Entry points: :func:`generate_cohort` (writes ``OUT/<patient>/<study>/{CTres,SUV,SEG}.nii.gz``),
:func:`generate_study` (one study in memory) and the CLI ``python -m scripts.synthetic``.
"""

from scripts.synthetic.cohort import (
    StudyPlan,
    SyntheticStudy,
    generate_cohort,
    generate_patient,
    generate_study,
    plan_cohort,
    write_study,
)
from scripts.synthetic.tissues import Tissue

__all__ = [
    "StudyPlan",
    "SyntheticStudy",
    "Tissue",
    "generate_cohort",
    "generate_patient",
    "generate_study",
    "plan_cohort",
    "write_study",
]

# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The paper's Table 2 ablation as one command: scratch vs MAE pretraining for each xLSTM placement.

Run from ``bundle/``::

    python -m scripts.ablation --data DATASET --out ABLATION [--arms none enc bot enc+ssl bot+ssl]
        [--seeds 0 1 2] [--fold 0] [--labelled N] [--epochs E --iterations-per-epoch I --pretrain-epochs P ...]

Every arm is the real bundle workflow, driven in-process through ``monai.bundle.ConfigWorkflow``:
``configs/pretrain.json`` (once per xLSTM variant and seed, for the ``+ssl`` arms), ``configs/train.json``
(``--pretrained_encoder`` for the ``+ssl`` arms) and ``configs/inference.json`` + ``configs/evaluate.json``
(the autoPET metrics). Modules: :mod:`.protocol` (arms, budget, dataset, datalists), :mod:`.workflows`
(pretrain, fine-tune, evaluate; resume), :mod:`.report` (CSV and Markdown tables), ``__main__`` (the CLI).
"""

from scripts.ablation.protocol import DEFAULT_ARMS, Arm, Budget, Protocol, load_fold
from scripts.ablation.report import RUN_COLUMNS, SUMMARY_COLUMNS, mean_and_std, summarize_arms
from scripts.ablation.workflows import run_ablation

__all__ = [
    "DEFAULT_ARMS",
    "RUN_COLUMNS",
    "SUMMARY_COLUMNS",
    "Arm",
    "Budget",
    "Protocol",
    "load_fold",
    "mean_and_std",
    "run_ablation",
    "summarize_arms",
]

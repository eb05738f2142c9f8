# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Training-time handlers for the bundle's ``SupervisedTrainer`` runs (train.json, pretrain.json).

Resume discovery, stale-checkpoint pruning, deep-supervision weights, non-finite guards, gradient clipping, the
validation line and the curves PNG.
"""

# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Training-time handlers for the bundle's ``SupervisedTrainer`` runs (configs/train.json, pretrain.json)."""

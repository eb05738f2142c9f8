# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Inference layer: the flip-TTA sliding-window inferer, fold ensembles, checkpoint reading, export."""

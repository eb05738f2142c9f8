# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Evaluation layer: autoPET metrics and CLI, metric handlers, run scoring, quantification, figures, baseline."""

# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Data layer: file naming, study discovery and checks, splits, datalists, preparation, volumes, grids."""

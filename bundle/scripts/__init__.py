# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Custom code of the PET/CT lesion-segmentation bundle (networks, transforms, inferers, data tools)."""

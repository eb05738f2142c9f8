# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Custom code of the PET/CT lesion-segmentation bundle (networks, transforms, inferers, data tools).

Importing it installs the one-line reporting of bad input (:func:`scripts.errors.install_error_reporting`), so
``python -m monai.bundle run`` with these configs ends a bad input with ``error: <file>: <problem>``.
"""

from scripts.errors import install_error_reporting

install_error_reporting()

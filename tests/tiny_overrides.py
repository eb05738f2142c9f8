"""Bundle overrides that make the workflows tiny for CPU tests (10 x 10 x 15 mm grid, 32^3 patches, 8-64 channels).

Imported by the test modules (pytest puts ``tests/`` on ``sys.path``).
"""

TINY_NETWORK = {
    "pixdim": [10.0, 10.0, 15.0],
    "roi_size": [32, 32, 32],
    "features": [8, 16, 32, 64],
    "strides": [1, 2, 2, 2],
    "num_workers": 0,
}

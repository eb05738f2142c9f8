#!/usr/bin/env bash
# Set up everything this project needs (idempotent: a second run skips what is installed), then run
#   bash run.sh demo   the demo: synthetic PET/CT cohort -> preparation -> baseline -> autoPET metrics
#   bash run.sh test   lint (ruff) and the test suite (pytest); extra arguments go to pytest
#   bash run.sh format ruff format, and bundle/ + zoo/ci/ the MONAI model zoo's way (zoo/checks.py format)
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
python=${PYTHON:-python3}
stamp="$venv/.installed-$(cat constraints.txt requirements.txt requirements-dev.txt requirements-monailabel.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    # torch first and alone, pinned: an unpinned resolve would pull a multi-GB CUDA build.
    "$venv/bin/pip" install -q --disable-pip-version-check torch==2.13.0
    "$venv/bin/pip" install -q --disable-pip-version-check -c constraints.txt -r requirements.txt -r requirements-dev.txt
    # MONAI Label's classes for the tests, without its dependency set (see the file's header).
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r requirements-monailabel.txt
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi

task=${1:-}
shift || true
case "$task" in
    demo)
        cd bundle && exec ../"$venv"/bin/python -m scripts.demo --work ../demo_work "$@"
        ;;
    test)
        "$venv/bin/ruff" check .
        "$venv/bin/ruff" format --check .
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    format)
        "$venv/bin/ruff" format .
        exec "$venv/bin/python" zoo/checks.py format
        ;;
    *)
        echo "usage: bash run.sh demo|test|format [args]" >&2
        exit 2
        ;;
esac

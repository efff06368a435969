#!/usr/bin/env bash
# Make a separate virtualenv for a MONAI Label 0.8.5 server that serves this project's bundle.
#
#   bash experiments/monailabel/setup_env.sh [VENV]        (default: .monailabel-venv at the repository root)
#
# MONAI Label needs its own environment: it caps numpy below 2 (numpymaxflow, pydicom-seg), needs pydicom < 3 and
# dicomweb-client < 0.60 to import, imports torchvision at load time (PyPI's torchvision does not import beside the
# CPU torch 2.13 build, so this uses torch 2.14.1 + torchvision 0.29.1) and writes results with itk (itk-io).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${1:-.monailabel-venv}"
python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
python -m pip install --quiet --no-deps "monailabel==0.8.5"
python -m pip install --quiet -r experiments/monailabel/requirements.txt
python -m pip install --quiet --no-deps -e .
python -c "import monailabel, monai_hybrid, torchvision, itk; print('MONAI Label', monailabel.__version__, 'ready in', '$VENV')"

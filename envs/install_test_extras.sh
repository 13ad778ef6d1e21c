#!/bin/sh
# Everything the full test suite can use beyond `spkfn[test]`, so that no test skips for a missing
# package: the SpikeInterface reference (with its sorters' extras) and the external sorters spkfn
# runs (Kilosort4 on the CPU build of PyTorch, MountainSort5).
#
#   PYTHON=.venv/bin/python sh envs/install_test_extras.sh
set -eu
PY=${PYTHON:-python}
HERE=$(dirname "$0")
SORTERS=1 PYTHON="$PY" sh "$HERE/install_reference.sh"
# Kilosort4 needs PyTorch: the CPU build, pinned, installed first with pip (which finds the local
# wheel); an unpinned torch, asked for by kilosort itself, would pull several GB of CUDA packages.
"$PY" -m pip install -q torch==2.13.0
"$PY" -m uv pip install --python "$PY" -q "kilosort>=4.1"
# MountainSort5 declares spikeinterface, which is already there (the reference, installed without
# its zarr<3 pin); installing it with its dependencies would replace that by an older release.
"$PY" -m uv pip install --python "$PY" -q --no-deps "mountainsort5>=0.5.6"
"$PY" -m uv pip install --python "$PY" -q "isosplit6>=0.1.4" "scikit-learn>=1.5" packaging
"$PY" -c "import torch, kilosort, mountainsort5; print('torch', torch.__version__, '| kilosort', kilosort.__version__, '| mountainsort5 ok')"

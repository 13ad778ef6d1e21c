#!/bin/sh
# Install SpikeInterface beside spkfn as a *reference* for tests (marker `reference`) and
# benchmarks; spkfn itself never imports it.
#
# spikeinterface 0.105.3 declares zarr<3 (on Python < 3.14) while spkfn needs zarr>=3, so it is
# installed without its dependency pins; its other requirements are installed normally. The
# parts we compare against (generators, GroundTruthComparison, preprocessing, peak detection,
# localisation, motion, the internal sorters) run with zarr 3.
#
#   PYTHON=.venv/bin/python sh envs/install_reference.sh            # comparison, preprocessing, detection
#   SORTERS=1 PYTHON=.venv/bin/python sh envs/install_reference.sh  # + what SpikeInterface's own sorters
#                                                                  #   (tridesclous2, spykingcircus2) import
set -eu
PY=${PYTHON:-python}
"$PY" -m uv --version >/dev/null 2>&1 || "$PY" -m pip install -q uv
"$PY" -m uv pip install --python "$PY" -q "threadpoolctl>=3" "pydantic>=2" packaging deprecated
"$PY" -m uv pip install --python "$PY" -q --no-deps "spikeinterface==0.105.3"
if [ "${SORTERS:-0}" = "1" ]; then
    "$PY" -m uv pip install --python "$PY" -q "scikit-learn>=1.5" "hdbscan>=0.8.40" "psutil>=5.9"
fi
"$PY" -c "import spikeinterface, zarr; print('spikeinterface', spikeinterface.__version__, 'with zarr', zarr.__version__)"

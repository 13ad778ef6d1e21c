"""spkfn: notebook-first, reproducible spike sorting with stateless functions over numpy/xarray.

Stages live in subpackages: ``spkfn.io``, ``spkfn.generate``, ``spkfn.preprocessing``,
``spkfn.detection``, ``spkfn.sorting``, ``spkfn.postprocessing``, ``spkfn.metrics``,
``spkfn.curation``, ``spkfn.comparison``, ``spkfn.plotting``, ``spkfn.views``, ``spkfn.export``,
``spkfn.workflow``. Import them explicitly (``import spkfn.io``); ``import spkfn`` stays cheap.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spkfn")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]

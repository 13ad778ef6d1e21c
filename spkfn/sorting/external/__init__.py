"""Runners for external sorters (Kilosort4, MountainSort5), called through ``spkfn.sorting.run_sorter``.

Each module imports its sorter's package lazily, inside the runner, so that importing
``spkfn.sorting`` never needs them.
"""

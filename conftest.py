# Root conftest: keep pytest's collection to tests/, the library's doctests and the built notebooks.
collect_ignore = ["notebooks/src", "notebooks/build.py", "benchmarks", "results", "Snakefile", "build"]

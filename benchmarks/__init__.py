"""Speed and memory benchmarks, one module per topic (`benchmarks/<vertical>_<topic>.py`).

Run all: `python -m benchmarks` (or `make benchmark`); some: `python -m benchmarks path_tiling kernels_gpu`;
list: `python -m benchmarks --list`. Each module runs as `python -m benchmarks.<name>` and prints its figures;
recorded figures (machine, date, command) go to BENCHMARKS.md."""

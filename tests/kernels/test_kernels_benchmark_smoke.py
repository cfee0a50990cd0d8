"""The GPU benchmark script runs end to end (tiny sizes, Triton's interpreter on CPU), so its first run on a
GPU machine is spent measuring, not debugging; its own correctness checks must all pass."""
import importlib


def test_kernels_gpu_benchmark_smoke(tmp_path, capsys):
    bench = importlib.import_module("benchmarks.kernels_gpu")
    out = tmp_path / "kernels.md"
    assert bench.main(["--smoke", "--skip-embed", "--out", str(out)]) == 0
    text = out.read_text()
    assert "Memory-bank search" in text and "MIL pooling" in text
    assert "| FAIL |" not in text and text.count("| ok |") >= 10
    assert "fused Triton float32" in text

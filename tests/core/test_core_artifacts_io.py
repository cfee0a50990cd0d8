import json
import os

import pandas as pd
import pytest
import torch

from vai.core.artifacts import fingerprint_files, fingerprint_frame, load_model_dir, save_model_dir
from vai.core.errors import VaiError
from vai.core.io import atomic_dir, atomic_path, atomic_write_json, read_json


def test_model_dir_round_trip(tmp_path):
    w = {"layer.weight": torch.randn(3, 4), "layer.bias": torch.zeros(3)}
    path = save_model_dir(tmp_path / "m", config={"vertical": "core", "kind": "linear", "n": 4}, weights=w,
                          metrics={"auroc": 0.9}, data_fingerprint="sha256:x", json_files={"extra.json": {"k": 1}})
    md = load_model_dir(path, vertical="core", kind="linear")
    assert md.config["n"] == 4 and md.metrics["auroc"] == 0.9
    assert torch.equal(md.weights()["layer.weight"], w["layer.weight"])
    assert md.meta["library_versions"]["torch"].startswith("2.14")
    assert json.loads(md.file("extra.json").read_text()) == {"k": 1}
    with pytest.raises(VaiError, match="belongs to vertical"):
        load_model_dir(path, vertical="path")
    with pytest.raises(VaiError, match="missing"):
        md.file("nope.bin")


def test_model_dir_never_holds_pickles(tmp_path):
    path = save_model_dir(tmp_path / "m", config={"vertical": "core", "kind": "x"}, weights={"a": torch.ones(2)})
    names = {p.name for p in path.iterdir()}
    assert names == {"config.json", "metrics.json", "meta.json", "weights.safetensors"}


def test_interrupted_save_leaves_previous_model_intact(tmp_path):
    target = tmp_path / "m"
    save_model_dir(target, config={"vertical": "core", "kind": "x", "version": 1})

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with atomic_dir(target) as tmp:
            (tmp / "config.json").write_text("{}")
            raise Boom()
    assert load_model_dir(target).config["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temp leftovers


def test_not_a_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(VaiError, match="not a model directory"):
        load_model_dir(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    with pytest.raises(VaiError, match="config.json"):
        load_model_dir(tmp_path / "half")


def test_atomic_write_is_all_or_nothing(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert read_json(target) == {"v": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(VaiError, match="bad.json.*line 1"):
        read_json(bad)


def test_fingerprints_change_with_content(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x\n1\n")
    f1 = fingerprint_files([a])
    a.write_text("x\n2\n")
    assert fingerprint_files([a]) != f1
    assert fingerprint_frame(pd.DataFrame({"x": [1]})) != fingerprint_frame(pd.DataFrame({"x": [2]}))


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    """mkstemp makes 0600 files: results shared by a team must come out as open() would make them."""
    import os
    import stat

    from vai.core.io import atomic_dir, atomic_write_text

    mask = os.umask(0o022)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        atomic = atomic_write_text(tmp_path / "atomic.txt", "x")
        with atomic_dir(tmp_path / "model") as d:
            (d / "config.json").write_text("{}")
        (tmp_path / "plain_dir").mkdir()
    finally:
        os.umask(mask)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(atomic) == mode(plain)
    assert mode(tmp_path / "model") == mode(tmp_path / "plain_dir")

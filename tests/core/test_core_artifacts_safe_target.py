"""Saving a model never deletes what is at --out unless it is an earlier model (or empty)."""
from vai.core.artifacts import save_model_dir


def test_a_folder_of_other_files_is_kept_and_the_model_saved_beside_it(tmp_path, caplog):
    images = tmp_path / "images"
    images.mkdir()
    (images / "part.png").write_bytes(b"not a model")
    out = save_model_dir(images, config={"vertical": "x", "kind": "y"})
    assert (images / "part.png").read_bytes() == b"not a model"
    assert out == tmp_path / "images.vai-model" and (out / "config.json").is_file()
    assert "not replaced" in caplog.text
    again = save_model_dir(out, config={"vertical": "x", "kind": "y"})  # an earlier model: replaced in place
    assert again == out
    a_file = tmp_path / "g0.png"
    a_file.write_bytes(b"image")
    assert save_model_dir(a_file, config={"vertical": "x", "kind": "y"}) == tmp_path / "g0.png.vai-model"
    assert a_file.read_bytes() == b"image"

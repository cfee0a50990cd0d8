"""Embedded example instances: our own data files, written from published problem statements (each file's
`source` key says where its numbers come from)."""
from __future__ import annotations

import json
from pathlib import Path

from vai.core.errors import VaiError

_DIR = Path(__file__).parent


def example_names() -> list[str]:
    return sorted(p.stem.replace("_", "-") for p in _DIR.glob("*.json"))


def load_example_dict(name: str) -> dict:
    path = _DIR / (name.replace("-", "_") + ".json")
    if not path.is_file():
        raise VaiError(f"no example {name!r}; examples: {', '.join(example_names())}")
    return json.loads(path.read_text())


def load_example(name: str):
    from ..instance import Instance

    return Instance.from_dict(load_example_dict(name), source=f"example {name}")

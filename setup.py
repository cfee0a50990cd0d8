"""Maps the `vai` import namespace onto the top-level folders.

The product's folders are `core/`, `verticals/<name>/` and `apps/`, but a top-level package named `core`
would collide in users' environments, so everything is imported as `vai.core`, `vai.verticals.<name>`
and `vai.apps`. pyproject.toml cannot compute the package list, so it is derived here from the folders
(any folder with an `__init__.py`), which keeps new sub-packages from being silently left out.
"""
from setuptools import find_packages, setup

ROOTS = {"vai": "vai", "vai.core": "core", "vai.verticals": "verticals", "vai.apps": "apps"}


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder)]
    return found


setup(
    packages=_packages(),
    package_dir=ROOTS,
    package_data={"vai.apps": ["pages/*.py", "*.py"], "": ["*.json", "*.yaml", "*.md"]},
    include_package_data=True,
)

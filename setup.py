"""Maps the stage folders (producers/, processors/, sinks/, schemas/, analytics/) under the `tidemark` name.

The mapping itself is declared in pyproject.toml; this file only enumerates their subpackages so
a new subfolder needs no edit here.
"""

from setuptools import find_packages, setup

STAGES = {
    "tidemark": "tidemark",
    "tidemark.producers": "producers",
    "tidemark.processors": "processors",
    "tidemark.sinks": "sinks",
    "tidemark.schemas": "schemas",
    "tidemark.analytics": "analytics",
}


def _packages() -> list[str]:
    found: list[str] = []
    for name, folder in STAGES.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return found


setup(packages=_packages())

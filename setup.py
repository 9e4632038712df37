"""Ships the top-level ``topologies/`` (the lab scenarios and their data) and ``examples/``
(the demo data and sample configs) inside the wheel as ``rov_router/_data/``, so that
``pip install .`` gives a working ``lab --list`` and ``demo``.  They stay at the top of the
repository for people reading it; ``rov_router.resources`` finds them in either place.
Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("topologies", "examples")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        for name in SHIPPED:
            dest = Path(self.build_lib) / "rov_router" / "_data" / name
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(HERE / name, dest, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildWithData})

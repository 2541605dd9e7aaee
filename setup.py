"""Where the packages live, and the two optional C modules; everything else is in pyproject.toml.

The distribution installs one import name, `leadloop`. Its packages keep the design's top-level
folders: `leadloop.scoring` is `scoring/`, `leadloop.flows` is `flows/`, and so on, and the example
playbooks in `playbooks/` ship as `leadloop.playbooks`. Mapping packages to folders (rather than
moving everything under `src/leadloop/`) keeps every path the design, the docs and Prefect's
entrypoints name, while a worker's environment sees only `leadloop`. There is no `leadloop/` folder,
so `leadloop` is a namespace package, in the wheel and in an editable install alike.

The C modules speed up scoring's hottest loops: the first pass over every activity
(scoring/_columns.c) and building reasons and scorecards column by column (crm/_batch.c). Where they
cannot be compiled, the install still succeeds and the same code in Python runs (see each file's
header).
"""

from pathlib import Path

from setuptools import Extension, find_packages, setup

FOLDERS = ("crm", "playbook", "scoring", "routing", "connectors", "store", "sync", "flows", "cli",
           "deployments", "playbooks", "sandbox")

HERE = Path(__file__).parent
packages = [f"leadloop.{name}" for folder in FOLDERS
            for name in (folder, *(f"{folder}.{sub}" for sub in find_packages(str(HERE / folder))))]

setup(
    packages=packages,
    package_dir={f"leadloop.{folder}": folder for folder in FOLDERS},
    ext_modules=[
        Extension("leadloop.scoring._columns", ["scoring/_columns.c"], libraries=["m"], optional=True),
        Extension("leadloop.crm._batch", ["crm/_batch.c"], optional=True),
    ],
)

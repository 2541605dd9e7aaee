"""Where the packages live; everything else is in pyproject.toml.

The distribution installs one import name, `leadloop`. Its packages keep the design's top-level
folders: `leadloop.scoring` is `scoring/`, `leadloop.flows` is `flows/`, and so on, and the example
playbooks in `playbooks/` ship as `leadloop.playbooks`. Mapping packages to folders (rather than
moving everything under `src/leadloop/`) keeps every path the design, the docs and Prefect's
entrypoints name, while a worker's environment sees only `leadloop`. There is no `leadloop/` folder,
so `leadloop` is a namespace package, in the wheel and in an editable install alike.
"""

from pathlib import Path

from setuptools import find_packages, setup

FOLDERS = ("crm", "playbook", "scoring", "routing", "connectors", "store", "sync", "flows", "cli",
           "deployments", "playbooks", "sandbox")

HERE = Path(__file__).parent
packages = [f"leadloop.{name}" for folder in FOLDERS
            for name in (folder, *(f"{folder}.{sub}" for sub in find_packages(str(HERE / folder))))]

setup(
    packages=packages,
    package_dir={f"leadloop.{folder}": folder for folder in FOLDERS},
)

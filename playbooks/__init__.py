"""The example playbooks that ship with leadloop, by name: `semiconductor`, `industrial`.

A playbook option takes a name from here or a path to a YAML file of your own, so an installed
leadloop runs without the repository (`leadloop sync --playbook semiconductor`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT = "semiconductor"


def names() -> list[str]:
    """The example playbooks' names, sorted."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".yaml"))


def example_dataset() -> Path:
    """The small dataset the examples score (`leadloop score`, `leadloop explain`)."""
    return Path(str(resources.files(__name__) / "example_dataset.json"))


def resolve(playbook: str | Path) -> Path:
    """The file a playbook option means: an existing path as given, else a shipped playbook's name.

    A name that is neither is returned as the path it reads as, so the loader's error names what
    was asked for (with `names()` offered by the CLI).
    """
    path = Path(playbook)
    if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        if not path.exists() and path.parent == Path("playbooks") and path.stem in names():
            return resolve(path.stem)  # "playbooks/semiconductor.yaml" from outside the repository
        return path
    shipped = resources.files(__name__) / f"{playbook}.yaml"
    return Path(str(shipped)) if shipped.is_file() else path

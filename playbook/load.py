"""Reading a playbook: the file, its YAML (with line numbers for messages), the model's validation
and the cross-references the model alone cannot check, every problem reported with its path."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from leadloop.playbook.checks import check_references, locate, read_yaml, translate_error
from leadloop.playbook.model import Playbook, PlaybookError
from leadloop.playbooks import names, resolve


def load_playbook(path: str | Path) -> Playbook:
    """Read, parse and validate a playbook: a YAML file, or the name of one leadloop ships
    (`semiconductor`, `industrial`). Raises PlaybookError listing every problem."""
    return load_playbook_and_text(path)[0]


def load_playbook_and_text(path: str | Path) -> tuple[Playbook, str]:
    """`load_playbook`, with the text it was parsed from (kept as is when the playbook is made live):
    the file is read once, so the two always agree."""
    path = resolve(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        problem = f"cannot read the file: {error.strerror or error}"
        if path.suffix not in (".yaml", ".yml"):
            problem += f" (a playbook is a YAML file or a shipped name: {', '.join(names())})"
        raise PlaybookError(str(path), [problem]) from None
    return parse_playbook(text, source=str(path)), text


def parse_playbook(text: str, source: str = "<playbook>") -> Playbook:
    """Validate playbook YAML text; raises PlaybookError listing every problem."""
    data, root = read_yaml(text, source)
    if not isinstance(data, dict):
        problem = "(top level): must be a mapping of sections (name, profiles, intent, ...)"
        raise PlaybookError(source, [problem])
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as error:
        problems = [translate_error(item, root, Playbook) for item in error.errors()]
        raise PlaybookError(source, problems) from None
    problems = [f"{where}: {message}" + locate(root, where) for where, message in check_references(playbook)]
    if problems:
        raise PlaybookError(source, problems)
    return playbook

"""The playbook: the YAML that revenue operations owns, as a typed model (`model`, with routing's
section in `routing`), read and checked with path-precise problems (`load`, `checks`), compiled once
for scoring (`compiled`: predicates, the asset catalog and title classifier; its patterns run on
RE2, `patterns`), worded for people (`wording`, `docs`).

Layers inside, by direction: model ← compiled ← checks ← load. Nothing here does I/O beyond reading
the playbook file, and nothing imports scoring, routing or the connectors.
"""

"""The two optional C modules; everything else about the build is in pyproject.toml.

They speed up scoring's hottest loops: the first pass over every activity (scoring/_columns.c) and
building reasons and scorecards column by column (crm/_batch.c). Where they cannot be compiled,
the install still succeeds and the same code in Python runs (see each file's header).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("scoring._columns", ["scoring/_columns.c"], libraries=["m"], optional=True),
        Extension("crm._batch", ["crm/_batch.c"], optional=True),
    ]
)

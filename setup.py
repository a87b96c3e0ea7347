"""The driver's optional C loops (driver/_speedups.c); everything else is in pyproject.toml.

A setup.py because setuptools' pyproject table for extension modules is still experimental
(it warns on every build). ``optional``: where the extension cannot be built (no compiler)
the install goes on, and the driver runs the same loops in Python (driver/speedups.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("driver._speedups", ["driver/_speedups.c"], optional=True)])

"""Map the repository layout onto the `connectord` import package.

The framework lives in `core/` and the built-in plugins in `plugins/`, but both are
imported as `connectord` and `connectord.plugins`, so that a third-party plugin writes
`from connectord import hookimpl` and never collides with a generic `core` package.
"""

from setuptools import find_packages, setup


def _packages(root: str, prefix: str) -> list[str]:
    return [prefix, *(f"{prefix}.{name}" for name in find_packages(root))]


setup(
    packages=_packages("core", "connectord") + _packages("plugins", "connectord.plugins"),
    package_dir={"connectord": "core", "connectord.plugins": "plugins"},
    package_data={"connectord": ["py.typed", "templates/**/*", "ui/static/*"]},
)

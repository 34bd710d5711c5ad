"""Which folders go into the package: every folder of fabstack/, roles/ and apps/ (the roles and demo apps ship as
data inside it: ``fabstack.roles``, ``fabstack.apps``), each listed so that setuptools knows every one it copies.
The rest of the build is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

# what a checkout may hold beside the source and never ships
SKIP = ["*node_modules*", "*vendor*", "*__pycache__*", "*.venv*"]


def mapped(folder: str, package: str) -> list[str]:
    """``package`` and one package per subfolder of ``folder`` (mapped to it in pyproject.toml's package-dir)."""
    return [package, *(f"{package}.{name}" for name in find_namespace_packages(folder, exclude=SKIP))]


setup(packages=[*find_namespace_packages(include=["fabstack", "fabstack.*"], exclude=SKIP),
                *mapped("roles", "fabstack.roles"), *mapped("apps", "fabstack.apps")])

"""What goes into the wheel; everything else about the project is in pyproject.toml.

``kit demo`` runs the tutorial notebooks, so an installed kit must carry them. They stay at the
repository's top level (``jupyter lab notebooks/``, the docs and the tests read them there), and the
wheel gets them as package data under ``kit/notebooks`` by mapping that package to ``notebooks/``:
one copy in git, no copy step. pyproject.toml alone cannot say this together with finding the
packages, hence this file.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["kit", "kit.*"]), "kit.notebooks"],
    package_dir={"kit.notebooks": "notebooks"},
    package_data={
        "kit": ["deepspeed/*.json", "data/*.json", "doctor/*.json", "estimate/*.json", "data/demo/*.json", "tiny_qwen/*", "examples/*.yaml",
                # the gettext catalogs of kit.locale (en, zh), where they exist
                "locale/*/LC_MESSAGES/*.po", "locale/*/LC_MESSAGES/*.mo"],
        "kit.notebooks": ["en/*.ipynb", "zh/*.ipynb"],
    },
)

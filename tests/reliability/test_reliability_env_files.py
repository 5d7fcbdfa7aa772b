"""Secrets in ``.env`` stay out of git and images; the database with its default password is never published.

No docker here: the rules are checked on the files themselves.
"""

from __future__ import annotations

import re

import yaml
from reliability_helpers import REPO


def _patterns(name: str) -> set[str]:
    return {line.strip() for line in (REPO / name).read_text().splitlines() if line.strip() and not line.startswith("#")}


def test_dotenv_is_ignored_by_git_and_left_out_of_the_image() -> None:
    assert ".env" in _patterns(".gitignore")
    assert ".env" in _patterns(".dockerignore"), "COPY . . would bake the .env secrets into the image"


def test_postgres_with_the_default_password_is_not_published() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    postgres = compose["services"]["postgres"]
    password = str(postgres["environment"]["POSTGRES_PASSWORD"])
    if postgres.get("ports"):
        assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", password), "a published port needs a required password"


def test_the_readme_recipe_for_a_published_port_requires_a_password() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("services:\n  postgres:") :]
    block = block[: block.index("```")]
    service = yaml.safe_load(block)["services"]["postgres"]
    assert service["ports"] and service["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")

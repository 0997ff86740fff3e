"""Every environment variable Chirp reads is documented in README.md and .env.example."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def variables_read() -> set[str]:
    source = (ROOT / "chirp" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|float|list|path)\(\s*"([A-Z0-9_]+)"', source))


def test_settings_read_the_variables_we_expect():
    names = variables_read()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"} <= names


def test_every_variable_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    missing = sorted(n for n in variables_read() if f"`{n}`" not in readme)
    assert missing == []


def test_every_variable_is_in_env_example():
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, re.MULTILINE))
    assert sorted(variables_read() - listed) == []


def test_every_variable_the_tests_read_is_in_the_readme_test_section():
    """Test-only variables (Chromium's path, the screenshots folder) are explained where the
    README says how to run the tests, not in the settings table."""
    source = (ROOT / "tests" / "conftest.py").read_text()
    names = set(re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', source))
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Test it", 1)[1].split("\n## ", 1)[0]
    assert {"CHROMIUM_PATH", "CHIRP_SCREENSHOTS"} <= names
    assert sorted(n for n in names if f"`{n}`" not in section) == []

"""``connectord new-plugin``: the template makes a package that installs and passes its
own tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from connectord.cli import cli
from connectord.scaffold import PluginNames, ScaffoldError, create_plugin, template_root

EXPECTED_FILES = {
    "README.md",
    "pyproject.toml",
    "connectord_acme_crm/__init__.py",
    "connectord_acme_crm/client.py",
    "connectord_acme_crm/const.py",
    "connectord_acme_crm/destination.py",
    "connectord_acme_crm/mapping.py",
    "connectord_acme_crm/source.py",
    "tests/conftest.py",
    "tests/emulator.py",
    "tests/test_destination.py",
    "tests/test_e2e.py",
    "tests/test_mapping.py",
    "tests/test_plugin.py",
    "tests/test_source.py",
}


@pytest.fixture
def generated(tmp_path) -> Path:
    return create_plugin("acme-crm", tmp_path, title="Acme CRM")


def test_names_in_every_spelling():
    names = PluginNames.parse("Acme-CRM")
    assert (names.snake, names.kebab, names.camel, names.upper, names.title) == (
        "acme_crm",
        "acme-crm",
        "AcmeCrm",
        "ACME_CRM",
        "Acme Crm",
    )
    assert (names.distribution, names.package) == ("connectord-acme-crm", "connectord_acme_crm")


@pytest.mark.parametrize("bad", ["", "1acme", "acme crm", "acme--crm", "acme.crm", "-acme", "ácme"])
def test_invalid_names_are_refused_with_the_rule(bad):
    with pytest.raises(ScaffoldError, match="use lowercase letters and digits"):
        PluginNames.parse(bad)


def test_the_package_has_a_source_destination_mapping_emulator_tests_and_entry_point(generated):
    files = {str(p.relative_to(generated)) for p in generated.rglob("*") if p.is_file()}
    assert files == EXPECTED_FILES
    project = tomllib.loads((generated / "pyproject.toml").read_text())
    assert project["project"]["name"] == "connectord-acme-crm"
    assert project["project"]["entry-points"]["connectord"] == {"acme_crm": "connectord_acme_crm"}
    source = (generated / "connectord_acme_crm" / "source.py").read_text()
    assert (
        'type = "acme_crm.events"' in source and "class AcmeCrmEventsSource(PullSource)" in source
    )
    assert "Acme CRM" in (generated / "README.md").read_text()


def test_no_trace_of_the_template_name_is_left(generated):
    for path in generated.rglob("*"):
        assert "myvendor" not in path.name.lower()
        if path.is_file():
            text = path.read_text()
            for token in ("myvendor", "MyVendor", "MYVENDOR", "My Vendor"):
                assert token not in text, f"{token} left in {path}"


def test_the_generated_code_is_lint_clean_under_its_own_config(generated):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is part of the test extras"
    for command in ([ruff, "check", "."], [ruff, "format", "--check", "."]):
        result = subprocess.run(command, cwd=generated, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_an_existing_directory_is_never_overwritten(generated):
    (generated / "README.md").write_text("mine")
    with pytest.raises(ScaffoldError, match="already exists"):
        create_plugin("acme-crm", generated.parent)
    assert (generated / "README.md").read_text() == "mine"


def test_the_command(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["new-plugin", "shop", "-d", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"created {tmp_path / 'connectord-shop'}" in result.output
    assert "pip install -e '.[test]'" in result.output
    again = runner.invoke(cli, ["new-plugin", "shop", "-d", str(tmp_path)])
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(cli, ["new-plugin", "Not Valid", "-d", str(tmp_path)])
    assert bad.exit_code == 1 and "invalid plugin name" in bad.output


def test_the_template_is_shipped_as_package_data():
    assert (template_root() / "pyproject.toml").is_file()
    setup = (Path(__file__).resolve().parent.parent / "setup.py").read_text()
    assert '"templates/**/*"' in setup


@pytest.mark.slow
@pytest.mark.e2e
def test_a_generated_plugin_installs_and_passes_its_own_tests(plugin_venv, tmp_path):
    # The venv's connectord is a wheel built from this tree: the template must be in it.
    created = plugin_venv.run("-m", "connectord", "new-plugin", "acme-crm", "-d", str(tmp_path))
    assert created.returncode == 0, created.stderr
    package = tmp_path / "connectord-acme-crm"
    plugin_venv.pip_install(package)

    listed = plugin_venv.run(
        "-m", "connectord", "plugins", "--json", env={"CONNECTORD_LOAD_PLUGINS": "acme_crm"}
    )
    types = {t["type"]: t["provider"] for t in orjson.loads(listed.stdout)}
    assert {k: v for k, v in types.items() if v == "acme_crm"} == {
        "acme_crm.events": "acme_crm",
        "acme_crm.rename_events": "acme_crm",
        "acme_crm": "acme_crm",
    }

    result = plugin_venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "21 passed" in result.stdout

"""Docs that are generated from code must match it."""

from pathlib import Path

from visma_idp.config import markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_table_is_current():
    text = (ROOT / "docs" / "configuration.md").read_text()
    start = text.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = text.index("<!-- settings-table:end -->")
    assert text[start:end].strip() == markdown_table().strip(), (
        "docs/configuration.md is stale: regenerate it with `python -m visma_idp.config`"
    )


def test_readme_quick_start_has_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    commands = [line for line in block.splitlines()[1:] if line.strip() and not line.startswith("#")]
    assert commands == ["./dev serve", "./dev test"]

"""The README's Python example runs as written on the bundled data."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has a Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102 - our own README
    out = capsys.readouterr().out
    assert "Fixed effects" in out and "Variance components" in out
    assert (tmp_path / "alliance.html").stat().st_size > 10_000


TEXT = README.read_text(encoding="utf-8")
ROOT = README.parent


def test_the_two_set_up_commands_come_first():
    first = re.search(r"```bash\n(.*?)```", TEXT, re.S)
    assert first is not None and TEXT.index("```bash") < TEXT.index("\n## ")
    assert first.group(1) == ("pip install . && apim demo\n"
                              "pip install '.[test]' && python -m pytest\n")


def test_readme_is_a_front_door():
    assert len(TEXT.splitlines()) <= 160  # the reference lives in apim/REFERENCE.md
    assert "## Model families" in TEXT  # each model family adds its line here


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_points_to_a_file_and_heading_that_exist():
    links = re.findall(r"\]\(([^)#]+)(?:#([^)]+))?\)", TEXT)
    assert len(links) >= 10
    for target, anchor in links:
        path = ROOT / target
        assert path.exists(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{target}#{anchor}"
    for heading in re.findall(r"\]\(#([^)]+)\)", TEXT):
        assert heading in {_anchor(h) for h in re.findall(r"^#+ (.+)$", TEXT, re.M)}


def test_the_acitelli_command_runs_as_written(capsys):
    import apim
    from apim.cli import main

    command = re.search(r"`apim fit \"\$\(python -c .*?\)\"\s+(.*?)`", TEXT, re.S)
    assert command is not None
    argv = ["fit", apim.datasets.acitelli_path(), *command.group(1).split()]
    assert main(argv) == 0, capsys.readouterr().err
    assert "Husband" in capsys.readouterr().out

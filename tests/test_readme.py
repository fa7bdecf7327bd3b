"""The README's role x action table is the enforced matrix (issue 4, point 8)."""

from pathlib import Path

from app.rules.permissions import matrix_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_matrix_is_the_enforced_matrix() -> None:
    text = README.read_text(encoding="utf-8")
    shown = text.split("<!-- matrix:start -->\n", 1)[1].split("\n<!-- matrix:end -->", 1)[0]
    assert shown == matrix_markdown()


def test_readme_starts_with_the_two_commands() -> None:
    blocks = README.read_text(encoding="utf-8").split("```sh\n")
    assert blocks[1].splitlines()[0].endswith("-m app serve")
    assert blocks[2].splitlines()[0].endswith("-m pytest")

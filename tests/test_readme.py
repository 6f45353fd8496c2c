"""The README's promises hold: its embedding example runs and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_example_validates_one_record_as_its_comments_say():
    text = README.read_text()
    section = text.split("## Using the core rules from your own code", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    expected = [
        line.split("# ", 1)[1].strip() for line in code.splitlines() if line.startswith("print(")
    ]
    assert out.getvalue().split("\n")[:-1] == expected


def test_the_readme_gives_exactly_the_two_set_up_commands():
    text = README.read_text()
    block = re.search(r"## Two commands on a fresh machine\n\n```bash\n(.*?)```", text, re.S).group(
        1
    )
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]

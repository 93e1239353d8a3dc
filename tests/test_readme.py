"""The README's usage example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_a_usage_example():
    assert python_blocks(), "README.md lost its python example"


def test_readme_usage_example_runs():
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), {})


def test_readme_gives_the_two_setup_commands():
    commands = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    text = "\n".join(commands)
    assert "pip install '.[plot]' && csoftmax train --plot curves.png" in text
    assert "pip install '.[test]' && pytest tests" in text

"""The README's examples run as written, against a real server."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import WORKSPACE


def readme_block(after: str, language: str) -> str:
    text = (WORKSPACE / "README.md").read_text()
    start = text.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_the_python_sdk_snippet_runs_as_written(server):
    snippet = readme_block("**Python SDK** (`pip install mcp==2.3.0`)", "python")
    assert "http://127.0.0.1:8100" in snippet
    snippet = snippet.replace("http://127.0.0.1:8100", server.base_url)
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "'slot': 'bob'" in result.stdout and "inv_" in result.stdout, result.stdout

"""docs/api.md's scripted campaign runs as written (a page a user copies from must work)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_scripted_campaign_in_api_md_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "api.md").read_text()
    script = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "campaigns").mkdir()
    shutil.copy(ROOT / "campaigns" / "demo.toml", tmp_path / "campaigns" / "demo.toml")
    monkeypatch.chdir(tmp_path)
    exec(compile(script, "docs/api.md", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    # what the demo campaign's screen, gate and confirm stages print, in protocol order
    assert [line.split()[0] for line in out.splitlines() if " promoted " in line] == [
        "screen",
        "gate",
        "confirm",
    ]
    assert out.count("froze ") == 3

"""Print the README's two set-up commands (main job, then tests), one per line, exactly as written.

They are the one-line ```bash blocks of the "Set up on a fresh machine" section. Exits non-zero when
the section does not hold exactly two such one-line commands, the first running ``rsfast bench`` and the
second ``pytest``: a README edit that breaks them fails CI.
"""

from __future__ import annotations

import re
import sys


def commands(text: str) -> list[str]:
    m = re.search(r"^## Set up on a fresh machine\n(.*?)(?=^## )", text, re.S | re.M)
    if m is None:
        raise SystemExit("README: no '## Set up on a fresh machine' section")
    blocks = re.findall(r"^```(?:bash|sh|console)?\n(.*?)^```", m.group(1), re.S | re.M)
    cmds = []
    for block in blocks:
        lines = [line for line in block.splitlines() if line.strip()]
        if len(lines) != 1:
            raise SystemExit(f"README: a set-up command must be one line, got {lines!r}")
        cmds.append(lines[0].strip())
    if len(cmds) != 2 or "rsfast bench" not in cmds[0] or "pytest" not in cmds[1]:
        raise SystemExit(f"README: want the main command (rsfast bench), then the tests (pytest): {cmds!r}")
    return cmds


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        print("\n".join(commands(f.read())))

"""Run the shell blocks of README.md as written, in order, as a new user would on a fresh clone.

``tests/test_readme.py`` runs every ``bash`` block that carries no marker; ``.ci/run`` runs the
blocks marked ``<!-- readme: ci -->`` (the wheel installed into a fresh virtual environment,
which downloads the dependencies) with ``python tests/readme_runner.py --marked ci FOLDER``.
A block marked ``<!-- readme: make -->`` holds ``make demo``/``make test``, which ``.ci/run``
runs itself.

Commands that serve (``hipanalytics app ...``, ``hipanalytics lab``) run until their page answers
over HTTP, then get SIGTERM and must stop with exit code 0. ``BROWSER=true`` keeps them from
opening a browser; as root, ``lab`` gets ``--allow-root`` (JupyterLab refuses root otherwise).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"(?:<!-- readme: (?P<marker>\w+) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S)
_SERVES = re.compile(r"(?:^|\s)(?:\S*hipanalytics|\$H) (?:app|lab)\b")

# A bash function that runs a serving command in the background, waits for its page, stops it
# with SIGTERM and checks that it stopped cleanly.
PRELUDE = r'''
__serve() {
  local port="" kind="" prev="" a
  for a in "$@"; do
    [ "$prev" = "--port" ] && port="$a"
    case "$a" in app) [ -z "$kind" ] && kind=app ;; lab) [ -z "$kind" ] && kind=lab ;; esac
    prev="$a"
  done
  [ -n "$port" ] || { [ "$kind" = lab ] && port=8888 || port=8866; }
  local extra=()
  [ "$kind" = lab ] && [ "$(id -u)" = 0 ] && extra=(--allow-root)
  echo "readme: serving on port $port: $*" >&2
  "$@" "${extra[@]}" &
  local pid=$!
  if ! "$__PYTHON" - "$port" "$pid" <<'EOF'
import os, sys, time, urllib.request
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"readme: the server on port {port} exited before serving")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120) as page:
            page.read()
        sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit(f"readme: nothing answered on port {port} within 180 s")
EOF
  then kill -KILL "$pid" 2>/dev/null; return 1; fi
  kill -TERM "$pid"
  wait "$pid"
}
'''


@dataclass(frozen=True)
class Block:
    marker: str | None
    code: str
    line: int


def shell_blocks(readme: Path = ROOT / "README.md") -> list[Block]:
    """The ``bash`` blocks of the README, in order, with their marker and first line number."""
    text = readme.read_text(encoding="utf-8")
    return [Block(m["marker"], m["code"], text.count("\n", 0, m.start("code")) + 1)
            for m in _BLOCK.finditer(text) if m["lang"] == "bash"]


def script(block: Block) -> str:
    """The block as a bash script: continuation lines joined, serving commands wrapped."""
    joined = block.code.replace("\\\n", " ")
    lines = []
    for line in joined.splitlines():
        command = re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else ""
        if command.strip() and _SERVES.search(command):
            command = "__serve " + command.strip()
        lines.append(command)
    return PRELUDE + "\n".join(lines) + "\n"


def run_block(block: Block, cwd: Path, env: dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run one block with bash (``-e -o pipefail``) in ``cwd``."""
    env = {**env, "BROWSER": "true", "__PYTHON": sys.executable}
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script(block)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marked", required=True, help="run the blocks with this marker (e.g. ci)")
    parser.add_argument("folder", type=Path, help="a fresh copy of the checkout to run in")
    args = parser.parse_args(argv)
    chosen = [b for b in shell_blocks(args.folder / "README.md") if b.marker == args.marked]
    if not chosen:
        print(f"readme: no block marked {args.marked!r}", file=sys.stderr)
        return 1
    for block in chosen:
        print(f"readme: running the block at README.md line {block.line}", file=sys.stderr, flush=True)
        result = run_block(block, args.folder, dict(os.environ))
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode:
            print(f"readme: the block at line {block.line} failed (exit {result.returncode})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

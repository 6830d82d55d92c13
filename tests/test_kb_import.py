"""Knowledge-base importers and exporters: every format, every kind of bad file, round trips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from annae.kb import entries
from annae.kb.demo import demo_path
from annae.kb.entries import EntryData, KBData
from annae.kb.exporters import KBExportError, export_kb
from annae.kb.importers import (
    MAX_QUESTION_CHARS,
    KBImportError,
    detect_language,
    import_kb,
    parse_file,
    slugify,
)
from annae.store.db import session_scope


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, **kw) -> list[tuple[str | None, str]]:
    with pytest.raises(KBImportError) as info:
        parse_file(path, **kw)
    assert "nothing was imported" in str(info.value)
    return info.value.problems


# --------------------------------------------------------------------------- formats


def test_qa_csv(tmp_path):
    f = write(
        tmp_path / "faq.csv",
        "question,answer,tags,language,examples\n"
        'How long is shipping?,"2-3 days, usually",shipping;delivery,,when will it arrive|how long to ship\n'
        '배송은 얼마나 걸리나요?,2~3일 걸립니다,"배송, 택배",,배송 기간\n'
        "Do you wrap gifts?,Yes,,EN,\n",
    )
    data = parse_file(f)
    ship, ko, wrap = data.entries
    assert ship.key == "how_long_is_shipping"
    assert ship.answer == "2-3 days, usually"
    assert ship.tags == ["shipping", "delivery"]
    assert ship.language == "en"
    assert ship.examples == ["How long is shipping?", "when will it arrive", "how long to ship"]
    assert ship.sources == ["import:faq.csv:2"] * 3
    assert ko.key == "배송은_얼마나_걸리나요"
    assert ko.language == "ko" and ko.tags == ["배송", "택배"]
    assert ko.sources == ["import:faq.csv:3", "import:faq.csv:3"]
    assert wrap.language == "en" and wrap.examples == ["Do you wrap gifts?"]
    assert data.oos_examples == []


def test_qa_csv_keys_oos_rows_and_multiline_answers(tmp_path):
    f = write(
        tmp_path / "faq.csv",
        "id,question,answer,active\n"
        'ship,Shipping time?,"Two days.\nThree at most.",yes\n'
        "Shipping time,Shipping time!,Other,false\n"
        "oos,What's the weather?,,\n",
    )
    data = parse_file(f)
    assert [e.key for e in data.entries] == ["ship", "Shipping time"]
    assert data.entries[0].answer == "Two days.\nThree at most."
    assert data.entries[1].active is False
    # the row after a two-line answer starts on line 4
    assert data.entries[1].sources == ["import:faq.csv:4"]
    assert data.oos_examples == ["What's the weather?"]
    assert data.oos_sources == ["import:faq.csv:5"]


def test_slug_keys_are_unique(tmp_path):
    f = write(tmp_path / "faq.csv", "key,question,answer\nhello,Hello?,a\n,Hello!,b\n,hello...,c\n")
    keys = [e.key for e in parse_file(f).entries]
    assert keys == ["hello", "hello_2", "hello_3"]


def test_a_broken_utf16_answers_file_is_named_as_itself(tmp_path):
    f = write(tmp_path / "train.csv", "text,category\nwhere is my card,card_arrival\n")
    answers = tmp_path / "answers.csv"
    answers.write_bytes(b"\xff\xfe" + "label,answer\n".encode("utf-16-le") + b"\x00\xd8")
    with pytest.raises(KBImportError) as err:
        parse_file(f, answers=answers)
    assert "answers.csv: not valid UTF-16" in str(err.value)
    assert "train.csv: not valid" not in str(err.value)


def test_labelled_csv_with_csv_answers(tmp_path):
    f = write(
        tmp_path / "train.csv",
        "text,category\nwhere is my card,card_arrival\ncard not here yet,card_arrival\n"
        "what's the weather,oos\nlink my card,card_linking\nwhere is my card,card_arrival\n",
    )
    answers = write(
        tmp_path / "answers.csv",
        "label,answer,question,language,tags\n"
        "card_arrival,Cards arrive in 5 days.,When will my card arrive?,en,cards;delivery\n"
        "card_linking,Use the app.,,,\nunused_label,Not in the data.,,,\n",
    )
    data = parse_file(f, answers=answers)
    arrival, linking = data.entries
    assert arrival.key == "card_arrival" and arrival.question == "When will my card arrive?"
    assert arrival.examples == [
        "When will my card arrive?",
        "where is my card",
        "card not here yet",
    ]
    assert arrival.sources == ["import:train.csv:2", "import:train.csv:2", "import:train.csv:3"]
    assert arrival.tags == ["cards", "delivery"]
    assert linking.question == "link my card" and linking.answer == "Use the app."
    assert data.oos_examples == ["what's the weather"]
    assert data.oos_sources == ["import:train.csv:4"]


def test_labelled_csv_with_json_answers_and_answer_column(tmp_path):
    f = write(tmp_path / "t.csv", "text,intent\n환불 언제 돼요,refund\n환불 아직이에요,refund\n")
    answers = write(
        tmp_path / "a.json", json.dumps({"refund": "3~5영업일 걸립니다."}, ensure_ascii=False)
    )
    (entry,) = parse_file(f, answers=answers).entries
    assert entry.language == "ko" and entry.answer == "3~5영업일 걸립니다."
    g = write(tmp_path / "u.csv", "text,label,answer\nhi,greet,Hello!\nhello,greet,\n")
    (entry,) = parse_file(g).entries
    assert entry.answer == "Hello!" and entry.examples == ["hi", "hello"]


def test_json_list_and_object_forms(tmp_path):
    items = [
        {
            "id": "ship",
            "question": "Shipping?",
            "answer": "2 days",
            "examples": ["how long to ship"],
            "tags": "a;b",
        },
        {"question": "환불은요?", "answer": "3일", "active": False},
    ]
    f = write(tmp_path / "list.json", json.dumps(items, ensure_ascii=False, indent=2))
    data = parse_file(f)
    assert [e.key for e in data.entries] == ["ship", "환불은요"]
    assert data.entries[0].examples == ["Shipping?", "how long to ship"]
    assert data.entries[0].tags == ["a", "b"]
    assert data.entries[0].sources == ["import:list.json:2", "import:list.json:7"]
    assert data.entries[1].language == "ko" and data.entries[1].active is False
    g = write(tmp_path / "obj.json", json.dumps({"entries": items[:1], "oos": ["joke?"]}))
    assert parse_file(g).oos_examples == ["joke?"]


def test_xlsx(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["Question", "Answer", "Tags", "Language", "Key"])
    ws.append(["Gift wrap?", "Yes, ₩2,000.", "gifts", None, "wrap"])
    ws.append([None, None, None, None, None])
    ws.append(["선물 포장 되나요?", "네", None, "ko", 42])
    wb.save(tmp_path / "faq.xlsx")
    data = parse_file(tmp_path / "faq.xlsx")
    assert [e.key for e in data.entries] == ["wrap", "42"]
    assert data.entries[1].sources == ["import:faq.xlsx:4"]
    assert data.entries[1].language == "ko"


RASA_NLU = """version: "3.1"
nlu:
- intent: track_order
  examples: |
    - where is my [order](thing)
    - track my parcel
    - has my order [shipped]{"entity": "status"}?
- synonym: parcel
  examples: |
    - package
- intent: out_of_scope
  examples: |
    - tell me a joke
"""
RASA_DOMAIN = """version: "3.1"
responses:
  utter_track_order:
  - text: "See My Page → Orders."
  - text: "Another variant"
"""


def test_rasa_with_domain_beside(tmp_path):
    write(tmp_path / "nlu.yml", RASA_NLU)
    write(tmp_path / "domain.yml", RASA_DOMAIN)
    data = parse_file(tmp_path / "nlu.yml")
    (entry,) = data.entries
    assert entry.key == "track_order" and entry.answer == "See My Page → Orders."
    assert entry.examples == ["where is my order", "track my parcel", "has my order shipped?"]
    assert entry.sources == ["import:nlu.yml:5", "import:nlu.yml:6", "import:nlu.yml:7"]
    assert data.oos_examples == ["tell me a joke"] and data.oos_sources == ["import:nlu.yml:13"]


def test_rasa_project_folder_and_answers_option(tmp_path):
    (tmp_path / "bot" / "data").mkdir(parents=True)
    write(tmp_path / "bot" / "data" / "nlu.yml", RASA_NLU)
    write(tmp_path / "bot" / "domain.yml", RASA_DOMAIN)
    assert parse_file(tmp_path / "bot").entries[0].key == "track_order"
    write(tmp_path / "other.yml", RASA_DOMAIN.replace("See My Page", "Look at My Page"))
    data = parse_file(tmp_path / "bot" / "data" / "nlu.yml", answers=tmp_path / "other.yml")
    assert data.entries[0].answer.startswith("Look at")


def test_language_and_slug_helpers():
    assert detect_language("배송은 얼마나 걸리나요?") == "ko"
    assert detect_language("Annae 기프트샵 배송 문의") == "ko"
    assert detect_language("Do you ship to Seoul (서울)?") == "en"
    assert slugify("  What's the  cost?? ") == "what_s_the_cost"


def test_nfc_normalisation(tmp_path):
    import unicodedata

    nfd = unicodedata.normalize("NFD", "배송 문의")
    f = write(tmp_path / "faq.csv", f"question,answer\n{nfd},답변\n")
    assert parse_file(f).entries[0].question == "배송 문의"


# --------------------------------------------------------------------------- bad files


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, dict, str, str]]:
    """name -> (file, parse kwargs, expected location, expected words in the reason)."""
    d = tmp_path / "bad"
    (d / "r").mkdir(parents=True)
    (d / "solo").mkdir()
    cp949 = d / "cp949.csv"
    cp949.write_bytes("question,answer\nhello,hi\n배송,빠름\n".encode("cp949"))
    big = "x" * 100_000
    long_q = write(d / "long.csv", f"question,answer\n{big},a\n")
    return {
        "non-utf8": (cp949, {}, "cp949.csv:3", "not valid UTF-8"),
        "missing columns": (
            write(d / "cols.csv", "frage,antwort\nx,y\n"),
            {},
            "cols.csv:1",
            "expected question,answer",
        ),
        "unknown column": (
            write(d / "extra.csv", "question,answer,tgas\nq,a,t\n"),
            {},
            "extra.csv:1",
            "unknown column 'tgas'",
        ),
        "empty question": (
            write(d / "eq.csv", "question,answer\nq,a\n ,a2\n"),
            {},
            "eq.csv:3",
            "empty question",
        ),
        "empty answer": (
            write(d / "ea.csv", "question,answer\nq,a\nq2,\n"),
            {},
            "ea.csv:3",
            "empty answer",
        ),
        "empty text": (write(d / "et.csv", "text,label\n,x\n"), {}, "et.csv:2", "empty text"),
        "duplicate key": (
            write(d / "dk.csv", "key,question,answer\nk,q1,a\nj,q2,b\nk,q3,c\n"),
            {},
            "dk.csv:4",
            "duplicate key 'k' (also at dk.csv:2)",
        ),
        "duplicate question": (
            write(d / "dq.csv", "question,answer\nSame?,a\nsame?,b\n"),
            {},
            "dq.csv:3",
            "duplicate question",
        ),
        "conflicting answers": (
            write(d / "ca.csv", "text,label\nhi,greet\n"),
            {"answers": write(d / "ans.csv", "label,answer\ngreet,Hello\ngreet,Hi there\n")},
            "ans.csv:3",
            "conflicting answers for label 'greet' (another at ans.csv:2)",
        ),
        "label without answer": (
            write(d / "nl.csv", "text,label\nhi,greet\nbye,farewell\n"),
            {"answers": write(d / "ans2.json", '{"greet": "Hello"}')},
            "nl.csv:3",
            "label 'farewell' has no answer in ans2.json",
        ),
        "labels without answers file": (
            write(d / "na.csv", "text,label\nhi,greet\n"),
            {},
            "na.csv:2",
            "--answers",
        ),
        "same example two labels": (
            write(d / "tl.csv", "text,label,answer\nhi,greet,Hello\nHI,other,Yo\n"),
            {},
            "tl.csv:3",
            "example of both 'greet'",
        ),
        "empty file": (write(d / "empty.csv", "\n \n"), {}, "empty.csv", "empty"),
        "header only": (
            write(d / "header.csv", "question,answer\n"),
            {},
            "header.csv",
            "no entries",
        ),
        "unknown format": (write(d / "kb.docx", "x"), {}, "kb.docx", "unknown file type '.docx'"),
        "unknown --format": (
            write(d / "kb2.csv", "question,answer\nq,a\n"),
            {"fmt": "pdf"},
            "kb2.csv",
            "unknown format 'pdf'",
        ),
        "too long question": (
            long_q,
            {},
            "long.csv:2",
            f"100,000 characters long (at most {MAX_QUESTION_CHARS:,})",
        ),
        "too many values": (
            write(d / "tm.csv", "question,answer\nq,a,b\n"),
            {},
            "tm.csv:2",
            "3 values but the header has 2 columns",
        ),
        "unknown language": (
            write(d / "ul.csv", "question,answer,language\nq,a,fr\n"),
            {},
            "ul.csv:2",
            "unknown language 'fr'",
        ),
        "invalid json": (
            write(d / "bad.json", '[\n  {"question": "q",\n   "answer": }\n]'),
            {},
            "bad.json:3",
            "invalid JSON",
        ),
        "json wrong types": (
            write(
                d / "wt.json",
                '[\n {"question": "q", "answer": "a"},\n {"question": ["x"], "answer": "a"}\n]',
            ),
            {},
            "wt.json:3",
            "question must be text",
        ),
        "json unknown field": (
            write(d / "uf.json", '[\n {"question": "q",\n  "answr": "a"}\n]'),
            {},
            "uf.json:3",
            "unknown field 'answr'",
        ),
        "json duplicate id": (
            write(
                d / "di.json",
                '[\n {"id": 1, "question": "q", "answer": "a"},\n {"id": 1, "question": "r", "answer": "b"}\n]',
            ),
            {},
            "di.json:3",
            "duplicate key '1' (also at di.json:2)",
        ),
        "invalid yaml": (
            write(d / "nlu.yml", "nlu:\n- intent: x\n  examples: |\n    - a\n - b: [\n"),
            {},
            "nlu.yml",
            "invalid YAML",
        ),
        "rasa missing response": (
            write(d / "r" / "nlu.yml", RASA_NLU.replace("track_order", "greet")),
            {"answers": write(d / "r" / "domain.yml", RASA_DOMAIN)},
            "nlu.yml:3",
            "intent 'greet' has no response 'utter_greet' in domain.yml",
        ),
        "missing file": (d / "nope.csv", {}, "nope.csv", "file not found"),
        "deeply nested json": (
            write(d / "deep.json", "[" * 100_000),
            {},
            "deep.json",
            "nested too deeply",
        ),
        "broken xlsx": (
            write(d / "broken.xlsx", "question,answer\nq,a\n"),
            {},
            "broken.xlsx",
            "not a readable .xlsx",
        ),
        "rasa without domain": (
            write(d / "solo" / "nlu.yml", RASA_NLU),
            {},
            "nlu.yml:3",
            "none found; pass it with --answers",
        ),
    }


def test_bad_files_are_rejected_with_line_and_reason(tmp_path):
    for name, (path, kw, where, words) in _bad_files(tmp_path).items():
        problems = problems_of(path, **kw)
        assert any((w or "").startswith(where) and words in r for w, r in problems), (
            name,
            problems,
        )


def test_error_message_names_file_line_and_reason(tmp_path):
    f = write(tmp_path / "faq.csv", "question,answer\nq1,\n,a\n")
    with pytest.raises(KBImportError) as info:
        parse_file(f)
    text = str(info.value)
    assert "faq.csv: 2 problems, nothing was imported" in text
    assert "faq.csv:2: empty answer" in text and "faq.csv:3: empty question" in text
    assert isinstance(info.value, ValueError)


def test_bad_files_change_nothing_in_the_database(engine, tmp_path):
    """On SQLite and PostgreSQL: every rejected file leaves the stored KB and revision as they were."""
    import_kb(engine, demo_path())
    with session_scope(engine) as s:
        before, rev = entries.dump_kb(s), entries.current_revision(s)
    for name, (path, kw, _, _) in _bad_files(tmp_path).items():
        with pytest.raises(KBImportError):
            import_kb(engine, path, **kw)
        with session_scope(engine) as s:
            assert entries.dump_kb(s) == before, name
            assert entries.current_revision(s) == rev, name


def test_example_already_stored_under_another_entry(engine, tmp_path):
    import_kb(engine, demo_path())
    with session_scope(engine) as s:
        before = entries.dump_kb(s)
    f = write(
        tmp_path / "faq.csv", 'key,question,answer,examples\nfees,Fees?,"₩3,000",배송비얼마\n'
    )
    with pytest.raises(KBImportError) as info:
        import_kb(engine, f)
    assert info.value.problems == [
        ("faq.csv:2", "'배송비얼마' is already an example of the stored entry 'shipping_cost_ko'")
    ]
    g = write(tmp_path / "oos.csv", "key,question,answer\noos,배송비얼마,\n")
    with pytest.raises(
        KBImportError, match="already an example of the stored entry 'shipping_cost_ko'"
    ):
        import_kb(engine, g)
    with session_scope(engine) as s:
        assert entries.dump_kb(s) == before
    # the same text under the same entry is just skipped, and --replace starts afresh
    h = write(
        tmp_path / "same.csv",
        'key,question,answer,examples\nshipping_cost_ko,배송비는 얼마인가요?,"3,000원",배송비얼마\n',
    )
    assert import_kb(engine, h).updated == ["shipping_cost_ko"]
    assert import_kb(engine, f, replace=True).added == ["fees"]


def test_failure_while_writing_rolls_everything_back(engine, tmp_path, monkeypatch):
    import_kb(engine, demo_path())
    with session_scope(engine) as s:
        before = entries.dump_kb(s)
    f = write(
        tmp_path / "faq.csv",
        "key,question,answer\nnew_one,Brand new?,Yes\nshipping_time_en,Changed?,Changed\n",
    )

    def boom(*args, **kwargs):
        raise entries.KBError("disk on fire")

    monkeypatch.setattr(entries, "bump_revision", boom)
    with pytest.raises(entries.KBError):
        import_kb(engine, f)
    monkeypatch.undo()
    with session_scope(engine) as s:
        assert entries.dump_kb(s) == before
        assert entries.get_entry_by_key(s, "new_one") is None


# --------------------------------------------------------------------------- database and round trips


def test_import_updates_and_replaces(engine, tmp_path):
    first = write(
        tmp_path / "a.csv", "key,question,answer,examples\nship,Shipping?,2 days,how long to ship\n"
    )
    r = import_kb(engine, first)
    assert r.added == ["ship"] and r.examples_after == 2
    second = write(
        tmp_path / "b.csv",
        "key,question,answer,examples\nship,Shipping?,3 days,how long to ship|delivery time\nwrap,Wrap?,Yes,\n",
    )
    r = import_kb(engine, second)
    assert r.added == ["wrap"] and r.updated == ["ship"]
    assert (r.examples_before, r.examples_after) == (2, 4)
    with session_scope(engine) as s:
        ship = entries.get_entry_by_key(s, "ship")
        assert ship.answer == "3 days"
        assert [e.source for e in ship.examples] == [
            "import:a.csv:2",
            "import:a.csv:2",
            "import:b.csv:2",
        ]
    r = import_kb(engine, first, replace=True)
    assert r.removed == ["wrap"] and r.examples_after == 2
    with session_scope(engine) as s:
        assert [e.key for e in entries.list_entries(s)] == ["ship"]


def test_demo_kb(engine):
    data = parse_file(demo_path())
    for lang in ("en", "ko"):
        items = [e for e in data.entries if e.language == lang]
        assert len(items) >= 28
        assert all(len(e.examples) >= 5 for e in items), lang
        assert all(e.key.endswith(f"_{lang}") for e in items)
    assert len(data.oos_examples) >= 25
    assert any(detect_language(t) == "ko" for t in data.oos_examples)
    r = import_kb(engine, demo_path())
    assert len(r.added) == len(data.entries) and r.oos_after == len(data.oos_examples)
    with session_scope(engine) as s:
        labels = {ex.label for ex in entries.training_examples(s)}
    assert "oos" in labels and "shipping_time_ko" in labels


def _sample() -> KBData:
    return KBData(
        entries=[
            EntryData("ship", "How long is shipping?", "2-3 days,\nusually.", "en", ["shipping", "a b"], True,
                      ["How long is shipping?", "when | will it arrive", "shipping \"time\""], ["s1", "s2", "s3"]),
            EntryData("배송", "배송은 얼마나 걸리나요?", "2~3일 걸립니다.", "ko", [], False,
                      ["배송은 얼마나 걸리나요?", "=배송 기간?"], ["s4", "s5"]),
        ],
        oos_examples=["what's the weather", "오늘 날씨 어때"],
        oos_sources=["o1", "o2"],
    )  # fmt: skip


def _without_sources(data: KBData) -> KBData:
    for e in data.entries:
        e.sources = []
    data.oos_sources = []
    return data


def test_json_round_trip_is_exact(tmp_path):
    data = _sample()
    (path,) = export_kb(data, tmp_path / "kb.json")
    parsed = parse_file(path)
    assert parsed.exported_at, "an export carries its time"
    parsed.exported_at = None
    assert parsed == data


@pytest.mark.parametrize("target", ["kb.csv", "kb.xlsx", "rasa_dir", "bot/nlu.yml", "kb.txt"])
def test_round_trips(tmp_path, target):
    data = _sample()
    fmt = "rasa" if target == "rasa_dir" else "csv" if target == "kb.txt" else None
    written = export_kb(data, tmp_path / target, fmt)
    back = parse_file(written[0], fmt=fmt)
    assert all(s.startswith(f"import:{written[0].name}:") for e in back.entries for s in e.sources)
    assert _without_sources(back) == _without_sources(_sample())


def test_csv_export_has_bom_and_expected_columns(tmp_path):
    (path,) = export_kb(_sample(), tmp_path / "kb.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == [
        "question", "answer", "tags", "language", "key", "examples", "active", "updated_at"
    ]  # fmt: skip


def test_export_errors(tmp_path):
    with pytest.raises(KBExportError):
        export_kb(_sample(), tmp_path / "kb.docx")
    with pytest.raises(KBExportError):
        export_kb(_sample(), tmp_path / "kb.csv", fmt="pdf")


def test_database_round_trip_through_every_format(engine, tmp_path):
    import_kb(engine, demo_path())
    with session_scope(engine) as s:
        stored = entries.dump_kb(s)
    for name in ("kb.json", "kb.csv", "kb.xlsx", "rasa"):
        path = export_kb(stored, tmp_path / name, "rasa" if name == "rasa" else None)[0]
        back = parse_file(path)
        assert [
            (e.key, e.question, e.answer, e.language, e.tags, e.active, e.examples)
            for e in back.entries
        ] == [
            (e.key, e.question, e.answer, e.language, e.tags, e.active, e.examples)
            for e in stored.entries
        ], name
        assert back.oos_examples == stored.oos_examples, name


# --------------------------------------------------------------------------- a real data set


def test_banking77_slice(engine, datasets, tmp_path):
    """The first 300 rows of BANKING77 (text,category) with a generated answers file."""
    with (datasets / "banking77" / "train.csv").open(encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(301)]
    train = tmp_path / "banking_slice.csv"
    train.write_text("".join(lines), encoding="utf-8")
    categories = json.loads((datasets / "banking77" / "categories.json").read_text())
    with (tmp_path / "answers.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "answer"])
        for c in categories:
            w.writerow([c, f"Our answer about {c.replace('_', ' ')}."])
    rows = list(csv.DictReader(train.open(encoding="utf-8")))
    data = parse_file(train, answers=tmp_path / "answers.csv")
    labels = sorted({r["category"] for r in rows})
    assert sorted(e.key for e in data.entries) == labels
    distinct = {(r["text"].strip(), r["category"]) for r in rows}
    assert sum(len(e.examples) for e in data.entries) == len(distinct)
    first = data.entries[0]
    assert (
        first.examples[0] == rows[0]["text"].strip()
        and first.sources[0] == "import:banking_slice.csv:2"
    )
    r = import_kb(engine, train, answers=tmp_path / "answers.csv")
    assert sorted(r.added) == labels and r.examples_after == len(distinct)
    with session_scope(engine) as s:
        assert len(entries.training_examples(s)) == len(distinct)


# --------------------------------------------------------------------------- diff and stale files


def test_import_prints_a_real_diff_and_refuses_to_revert_newer_edits(engine, tmp_path):
    from annae.kb.importers import RevertError

    import_kb(engine, demo_path())
    with session_scope(engine) as s:
        old_export = export_kb(entries.dump_kb(s), tmp_path / "kb.csv")[0]
        n = len(entries.list_entries(s))
    # re-importing an export changes nothing, and says so
    r = import_kb(engine, old_export)
    assert r.updated == [] and r.changed == {} and len(r.unchanged) == n and r.added == []

    # an answer edited after the export: importing the older file would revert it
    with session_scope(engine) as s:
        entry = entries.get_entry_by_key(s, "shipping_cost_ko")
        entries.update_entry(s, entry.id, answer="배송비는 무료예요.")
    with pytest.raises(RevertError) as err:
        import_kb(engine, old_export)
    assert err.value.problems[0][0] == "shipping_cost_ko"
    assert "would revert answer" in err.value.problems[0][1]
    with session_scope(engine) as s:
        assert entries.get_entry_by_key(s, "shipping_cost_ko").answer == "배송비는 무료예요."
    r = import_kb(engine, old_export, overwrite_newer=True, dry_run=True)
    assert r.changed == {"shipping_cost_ko": ["answer"]} and r.reverted == ["shipping_cost_ko"]

    # a newer export with one answer changed by hand: exactly that entry and field
    with session_scope(engine) as s:
        fresh = export_kb(entries.dump_kb(s), tmp_path / "fresh.json")[0]
    text = fresh.read_text("utf-8").replace("배송비는 무료예요.", "배송비는 3,000원이에요.")
    fresh.write_text(text, "utf-8")
    r = import_kb(engine, fresh)
    assert r.changed == {"shipping_cost_ko": ["answer"]} and len(r.unchanged) == n - 1


def test_missing_column_is_named(engine, tmp_path):
    f = write(tmp_path / "faq.csv", "question,tags\nHow long?,shipping\n")
    with pytest.raises(KBImportError) as err:
        import_kb(engine, f)
    assert "missing column 'answer'" in str(err.value)
    g = write(tmp_path / "labels.csv", "text,answer\nHow long?,2 days\n")
    with pytest.raises(KBImportError) as err:
        import_kb(engine, g)
    assert "missing column 'question'" in str(err.value)

"""The analytics page and the label dialog take every interface string from i18n.json, in both languages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[1] / "annae" / "web"
STRINGS: dict[str, dict[str, str]] = json.loads((WEB / "static" / "i18n.json").read_text("utf-8"))
TEMPLATE = (WEB / "templates" / "analytics.html").read_text("utf-8")
SCRIPTS = {
    name: (WEB / "static" / name).read_text("utf-8") for name in ("analytics.js", "label.js")
}
HANGUL = re.compile(r"[가-힣]")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

# t("key") / tf("key", ...) in the template, t("key") in the scripts (not "prefix_" ~ value)
CALL = re.compile(r"""\b(?:t|tf)\(\s*["']([a-z0-9_]+)["']\s*[,)]""")
# data-i18n="key", data-i18n-placeholder/-label/-title/-fmt="key" (not "prefix_{{ value }}")
ATTR = re.compile(r"""data-i18n(?:-placeholder|-label|-title|-fmt)?=["']([a-z0-9_]+)["']""")
# keys handed to helpers in the scripts: say(node, "analytics_x"), showError(node, "label_x")
LITERAL = re.compile(r"""["']((?:analytics|label)_[a-z0-9_]+)["']""")

# keys the template builds from data: prefix ~ value
DYNAMIC = {
    "analytics_trend_": ("rising", "falling", "steady"),
    "analytics_status_": ("live", "saved", "rejected"),
    "analytics_col_": (
        "version",
        "status",
        "created",
        "kb_rev",
        "examples",
        "accuracy",
        "coverage",
        "precision",
    ),
    # every hand-off reason the analytics can report (annae/learning/analytics.py, the policy)
    "reason_": (
        "low_confidence",
        "customer_request",
        "human_requested",
        "frustration",
        "empty",
        "too_long",
        "no_model",
        "engine_error",
        "ambiguous",
        "agent_took_over",
        "other",
    ),
}


def template_keys() -> set[str]:
    return set(CALL.findall(TEMPLATE)) | set(ATTR.findall(TEMPLATE))


def script_keys(name: str) -> set[str]:
    src = SCRIPTS[name]
    return set(CALL.findall(src)) | set(ATTR.findall(src)) | set(LITERAL.findall(src))


def used_keys() -> set[str]:
    keys = template_keys() | script_keys("analytics.js") | script_keys("label.js")
    keys |= {prefix + value for prefix, values in DYNAMIC.items() for value in values}
    return keys


def test_the_regexes_find_the_keys() -> None:
    assert len(template_keys()) >= 40
    assert {"analytics_title", "analytics_n_questions", "analytics_weeks"} <= template_keys()
    assert {"analytics_training", "analytics_promoted", "analytics_rejected"} <= script_keys(
        "analytics.js"
    )
    assert {"analytics_confirm_live", "analytics_entry_created"} <= script_keys("analytics.js")
    assert {"label_title", "label_search", "label_save", "label_pick_entry"} <= script_keys(
        "label.js"
    )
    for prefix in ("analytics_trend_", "analytics_status_", "analytics_col_", "reason_"):
        assert re.search(rf"""["']{prefix}(["']\s*~|\{{\{{)""", TEMPLATE), prefix


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_every_key_used_exists(lang: str) -> None:
    missing = sorted(k for k in used_keys() if not STRINGS[lang].get(k))
    assert missing == []


def test_both_languages_have_the_same_keys() -> None:
    assert sorted(set(STRINGS["en"]) ^ set(STRINGS["ko"])) == []


def test_korean_strings_are_korean_with_the_same_placeholders() -> None:
    for key in sorted(used_keys()):
        en, ko = STRINGS["en"][key], STRINGS["ko"][key]
        assert set(PLACEHOLDER.findall(en)) == set(PLACEHOLDER.findall(ko)), key
        if key.startswith(("analytics_", "label_")):
            assert HANGUL.search(ko) and ko != en, key


def test_no_english_left_in_the_template() -> None:
    text = re.sub(r"\{% block body_class %\}.*?\{% endblock %\}", " ", TEMPLATE)  # class names
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    words = set(re.findall(r"[A-Za-z]{2,}", text))
    assert words <= {"CSV", "English", "Annae"}  # a link name, a language's own name, ours


def test_no_english_left_in_the_label_dialog_markup() -> None:
    literals = re.findall(r"'([^'\n]*)'", SCRIPTS["label.js"])
    texts = [m for lit in literals for m in re.findall(r">([^<]*)<", lit)]
    assert texts and all(not re.search(r"[A-Za-z]", s) for s in texts), texts

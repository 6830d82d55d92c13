"""Rasa: ``nlu.yml`` intents answered by the ``utter_<intent>`` responses of ``domain.yml``."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from annae.kb.entries import OOS, EntryData
from annae.kb.importers.builder import MAX_ANSWER_CHARS, _Builder, _read_text

_RASA_ENTITY = re.compile(r"\[([^\]\n]*)\](?:\([^)\n]*\)|\{[^}\n]*\})")


def _yaml(path: Path, b: _Builder):
    """``(data, node)`` of a YAML file, or ``(None, None)`` after recording the problem."""
    text = _read_text(path, b)
    if text is None:
        return None, None
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
        node = yaml.compose(text, Loader=loader)
        return yaml.load(text, Loader=loader), node
    except RecursionError:
        b.problem(b.loc(None, path), "invalid YAML: nested too deeply")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        b.problem(
            b.loc(mark.line + 1 if mark else None, path),
            f"invalid YAML: {getattr(e, 'problem', e)}",
        )
    return None, None


def _child(node, name: str):
    """The value node of ``name`` in a YAML mapping node."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == name:
                return v
    return None


def _rasa_files(path: Path, answers: Path | None) -> tuple[Path, Path | None]:
    nlu = path
    if path.is_dir():
        names = ("data/nlu.yml", "nlu.yml", "data/nlu.yaml", "nlu.yaml")
        nlu = next((path / n for n in names if (path / n).is_file()), path / "nlu.yml")
    if answers is not None:
        return nlu, answers
    for folder in (nlu.parent, nlu.parent.parent, path if path.is_dir() else nlu.parent):
        for name in ("domain.yml", "domain.yaml"):
            if (folder / name).is_file() and (folder / name) != nlu:
                return nlu, folder / name
    return nlu, None


def _rasa_responses(path: Path, data, b: _Builder) -> dict[str, tuple[str, str]]:
    """``utter_x`` → (first text variant, location) from a Rasa file's ``responses``."""
    out: dict[str, tuple[str, str]] = {}
    data, node = data
    responses = data.get("responses") if isinstance(data, dict) else None
    if not isinstance(responses, dict):
        return out
    rnode = _child(node, "responses")
    for name, variants in responses.items():
        vnode = _child(rnode, name)
        where = b.loc(vnode.start_mark.line + 1 if vnode is not None else None, path)
        texts = [v.get("text") for v in variants or [] if isinstance(v, dict) and v.get("text")]
        if not texts:
            b.problem(where, f"response {name!r} has no text variant")
            continue
        answer = b.text(texts[0], "answer", where, MAX_ANSWER_CHARS)
        if answer is not None:
            out[str(name)] = (answer, where)
    return out


def _parse_rasa(b: _Builder, answers: Path | None) -> None:
    """Rasa ``nlu.yml`` intents with answers from ``utter_<intent>`` responses in ``domain.yml``."""
    nlu_path, domain_path = _rasa_files(b.path, answers)
    if not nlu_path.is_file():
        b.problem(b.loc(None, nlu_path), "Rasa NLU file not found")
        return
    data, node = _yaml(nlu_path, b)
    if data is None:
        return
    if not isinstance(data, dict) or not isinstance(data.get("nlu"), list):
        b.problem(b.loc(1, nlu_path), "not a Rasa NLU file: expected a top-level 'nlu:' list")
        return
    responses = _rasa_responses(nlu_path, (data, node), b)
    if domain_path is not None:
        if not domain_path.is_file():
            b.problem(b.loc(None, domain_path), "domain file not found")
        else:
            domain = _yaml(domain_path, b)
            if domain[0] is not None:
                responses |= _rasa_responses(domain_path, domain, b)
    nlu_node = _child(node, "nlu")
    groups: dict[str, list[tuple[str, int]]] = {}
    metas: dict[str, tuple[dict, int]] = {}
    for block, bnode in zip(data["nlu"], nlu_node.value, strict=True):
        if not isinstance(block, dict) or "intent" not in block:
            continue  # synonyms, regexes and lookup tables
        line = bnode.start_mark.line + 1
        intent = b.key(block["intent"], b.loc(line, nlu_path))
        if intent is None:
            continue
        meta = block.get("metadata")
        metas.setdefault(intent, (meta if isinstance(meta, dict) else {}, line))
        for text, ex_line in _rasa_examples(block.get("examples"), _child(bnode, "examples"), line):
            where = b.loc(ex_line, nlu_path)
            clean = b.text(_RASA_ENTITY.sub(r"\1", text), "example", where)
            if clean is None:
                continue
            if intent == OOS:
                b.add_oos(clean, b.source(ex_line, nlu_path), where)
            else:
                groups.setdefault(intent, []).append((clean, ex_line))
    for intent, items in groups.items():
        _rasa_entry(intent, items, metas[intent], responses, nlu_path, domain_path, b)


def _rasa_examples(value, node, line: int) -> list[tuple[str, int]]:
    """``(text, line)`` for each ``- text`` of a block, list or plain string of examples."""
    if isinstance(value, list):
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [None] * len(value)
        return [
            (str(v), n.start_mark.line + 1 if n else line)
            for v, n in zip(value, nodes, strict=False)
        ]
    if not isinstance(value, str):
        return []
    first = node.start_mark.line + 2 if node is not None and node.style == "|" else None
    out = []
    for i, raw in enumerate(value.split("\n")):
        item = raw.strip()
        if item.startswith("- "):
            item = item[2:]
        elif item == "-":
            item = ""
        elif not item:
            continue
        out.append((item, first + i if first else (node.start_mark.line + 1 if node else line)))
    return out


def _rasa_entry(intent, items, meta_line, responses, nlu_path, domain_path, b: _Builder) -> None:
    meta, line = meta_line
    where = b.loc(line, nlu_path)
    response = responses.get(f"utter_{intent}")
    if response is None:
        place = (
            domain_path.name if domain_path else "a domain.yml (none found; pass it with --answers)"
        )
        b.problem(where, f"intent {intent!r} has no response 'utter_{intent}' in {place}")
        return
    answer = response[0]
    question = b.text(meta["question"], "question", where) if meta.get("question") else items[0][0]
    if question is None:
        return
    entry = EntryData(
        key=intent, question=question, answer=answer,
        language=b.language(meta.get("language"), question + " " + answer, where),
        tags=b.tags(meta.get("tags", []), where), active=b.active(meta.get("active", True), where),
        examples=[t for t, _ in items], sources=[b.source(n, nlu_path) for _, n in items],
    )  # fmt: skip
    b.add_entry(entry, where, [b.loc(n, nlu_path) for _, n in items], b.source(line, nlu_path))

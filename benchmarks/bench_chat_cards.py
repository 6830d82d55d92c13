"""Product cards in the chat: the demo gift shop with the Online Retail history imported.

Set-up (one SQLite database, as ``make demo`` would have it): the demo knowledge base and its
answer engine; Online Retail purchases before 2011-11-01 imported and the recommender trained on
them; the shop admin's links between entries and products, declared in ``LINKS`` (each
product-related entry, English and Korean, linked to the 10 products whose name holds the
keyword and that most customers bought). Customers then chat:

- *earlier chatters*: training-period customers with marketing consent, each asking one question
  (an example question of a random entry); an answer about a linked entry records their
  interest, which feeds the non-personal "customers who asked about this also bought";
- *evaluated customers* (disjoint): customers known to the model who bought again after the
  split, each asking one question the same way, and getting the real chat cards for the answer:
  **personal** (``recommend_for_entry``, as with consent) and, for the same answer,
  **non-personal** (``suggest_for_entry``, as for an anonymous visitor).

Reported side by side: the share of answered questions that get a card row, and the offline
click-through proxy: the share of suggested products the customer bought in the test period
(and the share of customers with at least one such product). Writes the ``chat_cards`` section
of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import random
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.bench_recommend import DATA, SPLIT
from benchmarks.report import table, write_section

CARDS = 3
LINKED = 10
EARLIER = 3000
EVALUATED = 2000
SEED = 7
LINKS = {  # entry key stem -> product-name keyword (what a shop admin would link)
    "gift_wrapping": "WRAP",
    "gift_message": "CARD",
    "gift_cards": "GIFT",
    "bulk_orders": "JUMBO BAG",
    "engraving": "PERSONALISED",
    "damaged_item": "GLASS",
}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _setup(home: Path):
    """The demo shop: KB + answer engine, train-period purchases + recommender, entry links."""
    import pandas as pd

    from annae.kb.demo import demo_path
    from annae.kb.importers import import_kb
    from annae.kb.training import train_from_db as train_answer_engine
    from annae.nlu.registry import ModelRegistry
    from annae.recommend import link_entry
    from annae.recommend.data import PRESETS, load_interactions
    from annae.recommend.registry import registry_for
    from annae.recommend.store import import_frame
    from annae.recommend.train import train_from_db
    from annae.settings import Settings
    from annae.store.db import get_engine, init_db, session_scope
    from annae.store.tables.kb import KBEntry

    settings = Settings(home=home, database_url=f"sqlite:///{home / 'annae.db'}")
    engine = init_db(get_engine(settings.database))
    import_kb(engine, demo_path(), author="bench")
    nlu = ModelRegistry(settings.models_dir)
    train_answer_engine(nlu, engine, settings=settings, author="bench")
    frame, report = load_interactions(DATA, PRESETS["online-retail"])
    split = pd.Timestamp(SPLIT, tz="UTC")
    times = pd.to_datetime(frame["time"], utc=True)
    train, test = frame[times < split], frame[times >= split]
    import_frame(engine, train, report)
    saved = train_from_db(engine, settings.models_dir)
    saved = registry_for(settings.models_dir).load_live()
    buyers = train.groupby("product")["customer"].nunique()
    names = train.groupby("product")["name"].last().astype(str).str.upper()
    links: dict[int, list[str]] = {}
    with session_scope(engine) as s:
        for entry in s.query(KBEntry).all():
            stem = entry.key.rsplit("_", 1)[0]
            if stem not in LINKS:
                continue
            hits = names[names.str.contains(LINKS[stem], regex=False)].index
            top = buyers.reindex(hits).sort_values(ascending=False).index[:LINKED]
            ids = [str(p) for p in top]
            if ids:
                link_entry(s, entry.id, ids)
                links[entry.id] = ids
    return settings, engine, nlu.load_live(), saved, train, test, links


def _questions() -> list[str]:
    import json

    from annae.kb.demo import demo_path

    data = json.loads(Path(demo_path()).read_text("utf-8"))
    return [
        q
        for e in data["entries"]
        for q in [e["question"], *(x if isinstance(x, str) else x["text"] for x in e["examples"])]
    ]


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from annae.privacy import consent
    from annae.recommend import recommend_for_entry, record_entry_interest, suggest_for_entry
    from annae.store.db import session_scope

    load = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), _cpu()
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        settings, engine, nlu, saved, train, test, links = _setup(Path(tmp))
        setup_s = time.perf_counter() - wall0
        questions = _questions()
        model = saved.model
        known = {str(c) for c in train["customer"].unique() if model.user_code(str(c)) is not None}
        bought_after = {
            str(c): {str(p) for p in products}
            for c, products in test.groupby("customer")["product"]
        }
        evaluated = sorted(known & set(bought_after))
        rng.shuffle(evaluated)
        evaluated = evaluated[:EVALUATED]
        earlier = sorted(known - set(evaluated))
        rng.shuffle(earlier)
        earlier = earlier[:EARLIER]

        interest = 0
        with session_scope(engine) as s:
            for cid in earlier:
                d = nlu.decide(rng.choice(questions))
                if d.type == "answer" and d.entry_id in links:
                    record_entry_interest(s, d.entry_id, cid)
                    interest += 1
            for cid in evaluated:
                consent.grant(s, cid, "marketing", text_version="bench")

        stats = {k: {"cards": 0, "shown": 0, "bought": 0, "hit_customers": 0} for k in ("p", "g")}
        answered = 0
        card_cpu = {"p": 0.0, "g": 0.0}
        with session_scope(engine) as s:
            for cid in evaluated:
                d = nlu.decide(rng.choice(questions))
                if d.type != "answer":
                    continue
                answered += 1
                after = bought_after[cid]
                for kind in ("p", "g"):
                    c0 = _cpu()
                    cards = (
                        recommend_for_entry(s, saved, d.entry_id, cid, CARDS)
                        if kind == "p"
                        else suggest_for_entry(s, saved, d.entry_id, CARDS)
                    )
                    card_cpu[kind] += _cpu() - c0
                    if not cards:
                        continue
                    hits = sum(c["product_id"] in after for c in cards)
                    st = stats[kind]
                    st["cards"] += 1
                    st["shown"] += len(cards)
                    st["bought"] += hits
                    st["hit_customers"] += hits > 0
        engine.dispose()
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    load = max(load, os.getloadavg()[0])

    def row(name: str, st: dict, kind: str) -> list:
        with_cards = max(st["cards"], 1)
        return [
            name,
            f"{st['cards'] / max(answered, 1):.1%}",
            f"{st['bought'] / max(st['shown'], 1):.2%}",
            f"{st['hit_customers'] / with_cards:.1%}",
            f"{st['shown']:,}",
            f"{1000 * card_cpu[kind] / max(answered, 1):.2f}",
        ]

    headers = [
        "cards",
        "answered questions with a card row",
        "suggested products bought in the test period",
        "customers with a card who bought one",
        "cards shown",
        "CPU ms per answer",
    ]
    rows = [
        row("**personal** (identified, marketing consent)", stats["p"], "p"),
        row("**non-personal** (anonymous / no consent)", stats["g"], "g"),
    ]
    linked_keys = ", ".join(f"`{k}` ← {v!r}" for k, v in LINKS.items())
    body = f"""
`python -m benchmarks.run bench_chat_cards`. The demo gift shop (60 entries, English and Korean)
with Online Retail purchases before {SPLIT} imported and the recommender trained on them. The
shop's entry links are declared in the benchmark: {linked_keys}; each of those entries (both
languages) is linked to the {LINKED} products with the keyword in their name that most
customers bought ({len(links)} entries linked). {len(earlier):,} earlier chatters asked one
question each ({interest:,} answers about a linked entry recorded as interest, the input of
"customers who asked about this also bought"); then {len(evaluated):,} other customers, known to
the model and buying again after the split, asked one question each (a random example question
of a random entry: the answer engine has seen these wordings, so the answer rate,
{answered / max(len(evaluated), 1):.1%}, is optimistic). For every answer both kinds of card row
were computed, as the chat would for that customer with consent and for an anonymous visitor.

{table(headers, rows)}

Click-through proxy = share of the suggested products that the customer bought in the test
period (offline: no real clicks). The share of answers with a card is set by how many entries the
shop links to products ({len(links)} of 60 here), the same for both kinds. Set-up (engine and
recommender training, import): {setup_s:.0f} s; whole run {wall:.0f} s wall, {cpu:.0f} s CPU,
load average about {load:.0f} on the shared 2-core machine.
"""
    write_section("chat_cards", "Product cards in the chat (demo shop + Online Retail)", body)
    print(table(headers, rows))

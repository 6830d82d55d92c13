"""`annae rec train --engine spark`: MLlib ALS in local mode against the in-process ALS."""

from __future__ import annotations

import numpy as np
import pytest

from annae.recommend.data import load_interactions
from annae.recommend.matrix import Interactions
from annae.recommend.models import ALS
from annae.recommend.sample import write_synthetic_csv
from annae.recommend.service import recommend
from annae.recommend.store import import_frame, set_marketing_consent
from annae.recommend.train import train_from_db
from annae.store.db import get_engine, init_db, session_scope


def in_group_share(model, data_ids, users, k=3) -> float:
    """Share of each customer's top-k new products that come from the customer's own group."""
    hits = total = 0
    for cid in users:
        u = model.user_code(cid)
        group = "A" if int(cid[1:]) % 2 == 0 else "B"
        top = model.predict(np.array([u]), k=k, exclude_seen=True)[0]
        hits += sum(str(data_ids[i])[0] in (group, "H") for i in top)
        total += k
    return hits / total


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_spark_als_matches_in_process_als(tmp_path):
    engine = init_db(get_engine(f"sqlite:///{tmp_path / 'annae.db'}"))
    frame, report = load_interactions(write_synthetic_csv(tmp_path / "shop.csv"))
    import_frame(engine, frame, report)
    saved = train_from_db(engine, tmp_path / "models", engine_kind="spark", spark_master="local[2]")
    spark_model = saved.model
    assert saved.manifest["kind"] == "als" and saved.manifest["engine"] == "spark"
    assert (
        spark_model.user_factors_.shape == (80, 64) and np.abs(spark_model.item_factors_).sum() > 0
    )

    local = ALS(factors=64, iterations=10).fit(Interactions.from_frame(frame))
    users = [f"C{c:03d}" for c in range(80)]
    spark_share = in_group_share(spark_model, spark_model.item_ids_, users)
    local_share = in_group_share(local, local.item_ids_, users)
    assert local_share >= 0.8
    assert spark_share >= local_share - 0.1, (spark_share, local_share)

    # the service reads the Spark factors like any other model
    with session_scope(engine) as s:
        set_marketing_consent(s, "C000", True)
        out = recommend(s, saved, "C000", k=5, list_="also_like")
    assert out["personalised"] and len(out["items"]) == 5
    assert sum(i["product_id"][0] in "AH" for i in out["items"]) >= 4

"""What recommendations hold about a customer, registered with ``annae.privacy.rights`` (which
imports this module by name before every export and erasure): the profile and interactions
(``annae.recommend.store``) and the recommenders whose model learnt their id (``user_ids_``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from annae.privacy import rights
from annae.recommend import store


def models_with(models_dir: Path, customer_id: str) -> rights.Models:
    """The recommender versions that learnt from the customer, and how to retrain the live one."""
    import joblib

    root = Path(models_dir) / "recommend"
    hit = []
    for path in sorted(root.glob("v*")) if root.exists() else []:
        model_file = path / "model.joblib"
        if not model_file.exists():
            continue
        model = joblib.load(model_file)
        if customer_id in {str(u) for u in getattr(model, "user_ids_", [])}:
            hit.append(path.name)

    def live() -> str | None:
        from annae.recommend.registry import registry_for

        return registry_for(models_dir).live_version()

    def retrain(db: Engine, _actor: str) -> tuple[str | None, str | None]:
        from annae.recommend.data import ImportFileError, require_pandas

        try:
            require_pandas("retraining the recommender")
            from annae.recommend.train import train_from_db

            return train_from_db(db, models_dir).version, None
        except store.RecommendError:  # no interactions left: no recommender beats a stale one
            (root / "LIVE").unlink(missing_ok=True)
            return None, None
        except ImportFileError as exc:  # a serving-only install cannot retrain it here
            (root / "LIVE").unlink(missing_ok=True)
            return None, f"recommender: none is live until `annae rec train` ({exc})"

    return rights.Models("recommender", "recommend/", root, hit, live, retrain)


rights.register(
    __name__,
    rights.Holder(
        holds=store.holds_customer,
        export=store.export_customer,
        erase=store.erase_customer,
        customers=store.customer_ids,
        models=models_with,
    ),
)

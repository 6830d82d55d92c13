"""ALS on Apache Spark (MLlib) for data that outgrows one machine.

``annae rec train --engine spark --master local[2]`` here; in production pass any cluster URL
(``spark://host:7077``, ``yarn``, ``k8s://...``). The factors are collected to the driver and
saved as an ordinary model version, so the service reads them like any other model.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd

from annae.recommend.matrix import Interactions
from annae.recommend.models import _Factors


class SparkALS(_Factors):
    """Implicit-feedback ALS fitted by ``pyspark.ml.recommendation.ALS`` (same confidence as :class:`ALS`)."""

    name = "spark_als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.1,
        iterations: int = 10,
        alpha: float = 10.0,
        master: str = "local[2]",
        blocks: int = 2,
        seed: int = 0,
    ) -> None:
        self.blocks = blocks
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.master = master
        self.seed = seed

    def _fit(self, data: Interactions) -> None:
        spark = spark_session(self.master)
        try:
            from pyspark.ml.recommendation import ALS as MLlibALS

            coo = self.history_.tocoo()
            ratings = pd.DataFrame(
                {
                    "user": coo.row.astype(np.int32),
                    "item": coo.col.astype(np.int32),
                    "rating": np.log1p(coo.data).astype(np.float32),
                }
            )
            frame = spark.createDataFrame(ratings)
            als = MLlibALS(
                rank=self.factors,
                maxIter=self.iterations,
                regParam=self.regularization,
                implicitPrefs=True,
                alpha=self.alpha,
                userCol="user",
                itemCol="item",
                ratingCol="rating",
                seed=self.seed,
                coldStartStrategy="drop",
                numUserBlocks=self.blocks,
                numItemBlocks=self.blocks,
            )
            model = als.fit(frame)
            self.user_factors_ = _collect(model.userFactors, data.n_users, self.factors)
            self.item_factors_ = _collect(model.itemFactors, data.n_items, self.factors)
        finally:
            spark.stop()


def _collect(factors, n: int, rank: int) -> np.ndarray:
    """Spark's (id, features) rows as a dense array (rows Spark never saw stay zero)."""
    out = np.zeros((n, rank), np.float32)
    pdf = factors.toPandas()
    if len(pdf):
        out[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
    return out


def spark_session(master: str = "local[2]"):
    """A Spark session for ``master`` (no web UI, loopback only when local)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName("annae-recommend")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark

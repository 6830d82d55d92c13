"""Reading interaction files: the Online Retail preset, column mappings, malformed files."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from annae.recommend.data import (
    PRESETS,
    ImportFileError,
    clean_interactions,
    load_interactions,
    read_table,
)
from annae.recommend.sample import retail_slice, write_synthetic_csv

RETAIL = "online-retail/online_retail.csv.gz"


@pytest.fixture(scope="module")
def retail(datasets, tmp_path_factory):
    return retail_slice(
        datasets / RETAIL, tmp_path_factory.mktemp("retail") / "slice.csv.gz", every=20
    )


def test_online_retail_preset_counts_what_it_drops(retail):
    raw = pd.read_csv(retail, dtype=str, keep_default_na=False, na_values=[""])
    frame, report = load_interactions(retail, PRESETS["online-retail"])
    cancel = raw["InvoiceNo"].str.startswith("C")
    no_customer = raw["CustomerID"].isna() & ~cancel
    assert report.rows_read == len(raw)
    assert report.cancellations == int(cancel.sum()) > 0
    assert report.missing_customer == int(no_customer.sum()) > 0
    assert report.non_product_codes > 0
    assert set(report.non_product_examples) <= {
        "POST",
        "M",
        "DOT",
        "C2",
        "BANK CHARGES",
        "PADS",
        "D",
        "CRUK",
    }
    assert (
        report.rows_kept
        == len(frame)
        == report.rows_read
        - report.cancellations
        - report.missing_customer
        - report.non_positive_quantity
        - report.non_product_codes
    )
    assert (frame["quantity"] > 0).all()
    assert not frame["product"].isin(["POST", "M", "DOT"]).any()
    # float-formatted ids are cleaned: "17850.0" -> "17850"
    assert not frame["customer"].str.endswith(".0").any()
    assert frame["time"].dt.tz is not None


def test_non_product_patterns_and_negative_quantities():
    raw = pd.DataFrame(
        {
            "InvoiceNo": ["1", "2", "3", "4", "5", "C6", "7"],
            "StockCode": [
                "85123A",
                "gift_0001_10",
                "BANK CHARGES",
                "AMAZONFEE",
                "85123A",
                "85123A",
                "22423",
            ],
            "Description": ["heart", "voucher", "fee", "fee", "heart", "heart", "cake stand"],
            "Quantity": ["6", "1", "1", "1", "-2", "-6", "3"],
            "InvoiceDate": ["2011-01-01 10:00"] * 7,
            "UnitPrice": ["2.5", "10", "15", "100", "2.5", "2.5", "12.75"],
            "CustomerID": ["17850.0", "17850", "17850", "17850", "12345", "17850", "12345"],
            "Country": ["UK"] * 7,
        },
        dtype="string",
    )
    frame, report = clean_interactions(raw, PRESETS["online-retail"], "t.csv")
    assert report.cancellations == 1
    assert report.non_positive_quantity == 1
    assert report.non_product_codes == 3
    assert list(frame["product"]) == ["85123A", "22423"]
    assert list(frame["customer"]) == ["17850", "12345"]


def test_default_mapping_and_overrides(tmp_path):
    path = write_synthetic_csv(tmp_path / "shop.csv")
    frame, report = load_interactions(path)
    assert report.rows_kept == report.rows_read > 100
    renamed = pd.read_csv(path).rename(columns={"customer_id": "buyer"})
    renamed.to_parquet(tmp_path / "shop.parquet")
    mapping = PRESETS["default"].with_overrides({"customer": "buyer"})
    frame2, _ = load_interactions(tmp_path / "shop.parquet", mapping)
    assert len(frame2) == len(frame)
    assert set(frame2["customer"]) == set(frame["customer"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "cannot read"),
        ("customer_id,timestamp\nC1,2024-01-01\n", "missing column(s) 'product_id'"),
        (
            "customer_id,product_id,timestamp,quantity\nC1,P1,2024-01-01,1\nC2,P2,not a date,1\n",
            "line 3: timestamp 'not a date'",
        ),
        (
            "customer_id,product_id,timestamp,quantity\nC1,P1,2024-01-01,one\n",
            "line 2: quantity 'one'",
        ),
        ("customer_id,product_id,timestamp,kind\nC1,P1,2024-01-01,stolen\n", "kind 'stolen'"),
    ],
)
def test_malformed_files_say_why(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    header = content.splitlines()[0].split(",") if content else []
    optional = ("quantity", "price", "name", "description", "category", "kind")
    mapping = PRESETS["default"].with_overrides({f: "" for f in optional if f not in header})
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_interactions(path, mapping)


def test_binary_garbage_and_missing_file(tmp_path):
    path = tmp_path / "x.csv.gz"
    path.write_bytes(b"\x00\x01 not gzip at all")
    with pytest.raises(ImportFileError, match="cannot read"):
        read_table(path)
    with pytest.raises(ImportFileError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    good = tmp_path / "ok.csv.gz"
    with gzip.open(good, "wt") as fh:
        fh.write("a,b\n1,2\n")
    assert list(read_table(good).columns) == ["a", "b"]


def test_unknown_mapping_field():
    with pytest.raises(ImportFileError, match="unknown mapping field"):
        PRESETS["default"].with_overrides({"shoe_size": "x"})

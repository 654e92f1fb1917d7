"""The CLV model through real pipeline runs: edge cases that break buy-till-you-die tools."""

from __future__ import annotations

import pytest

from conftest import PipelineEnv

DAY = "2025-02-01"
HEADER = "order_id,customer_id,ordered_at,amount\n"


def test_small_sample_warns_and_leaves_predictions_null(pipeline_env: PipelineEnv) -> None:
    rows = [
        "o1,alice,2025-01-05T10:00:00Z,20",
        "o2,alice,2025-01-05T18:00:00Z,30",  # same day as o1: one purchase of 50
        "o3,alice,2025-01-20T10:00:00Z,40",
        "o4,bob,2025-01-10T10:00:00Z,15",  # one-time buyer
        "o5,bob,2025-01-12T10:00:00Z,-15",  # return: historical value only
        "o6,carol,2025-01-02T10:00:00Z,10",
        "o7,carol,2025-01-31T10:00:00Z,0",  # zero-value purchase on the last day: recency = age
    ]
    pipeline_env.land("orders", DAY, "orders.csv", HEADER + "\n".join(rows) + "\n")
    pipeline_env.run(DAY)

    params = {row["model"]: row for row in pipeline_env.query("SELECT * FROM clv_model_params").to_dicts()}
    assert params["bg_nbd"]["converged"] is False
    assert params["bg_nbd"]["r"] is None
    assert "customers" in params["bg_nbd"]["message"]
    assert params["bg_nbd"]["n_excluded"] == 1  # the return

    customers = {row["customer_id"]: row for row in pipeline_env.query("SELECT * FROM clv_customers").to_dicts()}
    assert set(customers) == {"alice", "bob", "carol"}
    assert customers["alice"]["frequency"] == 1
    assert customers["alice"]["purchase_days"] == 2
    assert customers["alice"]["monetary_value"] == pytest.approx(40.0)
    assert customers["bob"]["frequency"] == 0
    assert customers["bob"]["recency"] == 0.0
    assert customers["bob"]["historical_clv"] == pytest.approx(0.0)
    assert customers["bob"]["returned_revenue"] == pytest.approx(15.0)
    assert customers["carol"]["recency"] == pytest.approx(customers["carol"]["age"])
    for row in customers.values():
        assert row["predicted_clv"] is None
        assert row["expected_purchases"] is None

    segments = pipeline_env.query("SELECT * FROM clv_segments").to_dicts()
    assert segments[0]["predicted_clv_total"] is None
    assert segments[0]["historical_clv_total"] == pytest.approx(100.0)

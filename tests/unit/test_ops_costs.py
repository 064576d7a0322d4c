"""The cost model: known job durations give a known cost; summary.json and report agree; prices can be overridden."""

from __future__ import annotations

import json

import pytest
from wildlife_common import costs, storage
from wildlife_common.errors import ConfigError
from wildlife_common.layout import RunLayout

from tests.conftest import load_handler
from tests.helpers import commit_detection_shard, put_images

plan = load_handler("plan_detection").lambda_handler
materialize = load_handler("materialize").lambda_handler

# Three shards on a g4dn.xlarge ($0.526/h on demand): 600 + 1200 + 1800 s = exactly one hour.
JOBS = [
    {"stage": "stage1", "shard": "00000", "instance_type": "g4dn.xlarge", "lifecycle": "on-demand", "seconds": 600.0},
    {"stage": "stage1", "shard": "00001", "instance_type": "g4dn.xlarge", "lifecycle": "on-demand", "seconds": 1200.0},
    {"stage": "stage1", "shard": "00002", "instance_type": "g4dn.xlarge", "lifecycle": "on-demand", "seconds": 1800.0},
]
# One 2-GB Lambda for 100 s = 200 GB-s.
LAMBDAS = [{"function": "Materialize", "memory_mb": 2048, "seconds": 100.0, "measured": True}]


def test_known_jobs_lambda_and_transitions_give_the_known_cost() -> None:
    cost = costs.run_cost(JOBS, 6000, lambdas=LAMBDAS, transitions=1000, prices=costs.PriceTable())

    gpu = 0.526  # one hour at $0.526
    lambda_usd = 200 * 0.0000133334 + 1 * 0.20 / 1_000_000
    transitions = 1000 * 0.025 / 1000  # $0.025
    assert cost["gpu_usd"] == pytest.approx(gpu)
    assert cost["lambda_usd"] == pytest.approx(lambda_usd, abs=1e-6)
    assert cost["transitions_usd"] == pytest.approx(transitions)
    assert cost["usd"] == pytest.approx(gpu + lambda_usd + transitions, abs=1e-4)
    assert cost["usd_per_1000_images"] == pytest.approx((gpu + lambda_usd + transitions) / 6, abs=1e-4)
    assert cost["gpu_hours"] == 1.0
    assert cost["gpu_minutes_per_1000_images"] == 10.0  # 60 min over 6,000 images
    assert cost["lambda_gb_seconds"] == 200.0
    assert [job["usd"] for job in cost["jobs"]] == pytest.approx([0.526 / 6, 0.526 / 3, 0.526 / 2], abs=1e-6)
    assert cost["target"] == {"usd_per_1000_images": 10.0, "gpu_minutes_per_1000_images": 30.0}
    assert cost["assumptions"] == []


def test_spot_price_is_used_when_the_table_has_one_else_on_demand_is_an_upper_bound() -> None:
    spot_jobs = [{**job, "lifecycle": "spot"} for job in JOBS]
    table = costs.parse_price_table({"spot": {"g4dn.xlarge": 0.2}}, "test")

    assert costs.run_cost(spot_jobs, 6000, prices=table)["gpu_usd"] == pytest.approx(0.2)
    fallback = costs.run_cost(spot_jobs, 6000, prices=costs.PriceTable())
    assert fallback["gpu_usd"] == pytest.approx(0.526)
    assert any("upper bound" in note for note in fallback["assumptions"])


def test_unknown_or_unrecorded_instance_types_are_priced_as_g4dn_xlarge_and_said_so() -> None:
    jobs = [
        {"stage": "stage1", "shard": "0", "instance_type": "p5.48xlarge", "seconds": 3600.0},
        {"stage": "stage1", "shard": "1", "instance_type": None, "seconds": 3600.0},
    ]
    cost = costs.run_cost(jobs, 100, prices=costs.PriceTable())
    assert cost["gpu_usd"] == pytest.approx(2 * 0.526)
    assert len(cost["assumptions"]) == 2


def test_price_tables_override_flat_sectioned_from_env_and_from_a_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WILDLIFE_PRICES", '{"g4dn.xlarge": 0.5}')
    assert costs.price_table().on_demand["g4dn.xlarge"] == 0.5
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"on_demand": {"g5.xlarge": 0.9}, "state_transition_usd": 0.0}))
    table = costs.price_table(path)
    assert (table.on_demand["g4dn.xlarge"], table.on_demand["g5.xlarge"], table.state_transition_usd) == (0.5, 0.9, 0.0)
    assert table.source == str(path)

    monkeypatch.setenv("WILDLIFE_PRICES", str(path))
    assert costs.price_table().on_demand["g5.xlarge"] == 0.9


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"on_demand": {"g4dn.xlarge": "cheap"}}, "must be a price"),
        ({"on_demand": {}, "gpus": {}}, "unknown key(s) gpus"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_a_bad_price_table_is_one_line_naming_the_problem(document, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        costs.parse_price_table(document, "test")


def test_a_missing_or_broken_price_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        costs.price_table(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        costs.price_table(tmp_path / "bad.json")


def test_state_transitions_follow_the_state_machine_path() -> None:
    # PlanDetection, AnotherScheduledRunRunning, InputToList, AnyShardsToDetect, DetectShards,
    # DetectionOnly, ChooseMaterializer, Materialize, Done.
    assert costs.state_transitions(3, 0, classify=False, materialize_on_batch=False) == 9 + 3
    # + PlanClassification, AnyCropsToClassify, ClassifyShards; + one child per classification shard.
    assert costs.state_transitions(3, 1, classify=True, materialize_on_batch=False) == 12 + 4
    assert costs.state_transitions(3, 0, classify=True, materialize_on_batch=True) == 12 + 3
    # An input listed in 2 rounds by 5 listers: ListInput, AssemblePlan, InputToList per round, a child per lister.
    assert costs.state_transitions(3, 0, classify=False, materialize_on_batch=False, listing_rounds=2, listers=5) == (
        9 + 3 + 2 * 3 + 5
    )


def test_summary_json_carries_the_cost_and_recomputing_it_gives_the_same_figure(s3, lambda_context) -> None:
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"x")
    put_images(s3, "traps", [f"cam/{i}.jpg" for i in range(6)])
    run = plan(
        {
            "config": {"input": "s3://traps/", "shard_size": 2, "detector": "s3://pipeline/models/detector.pt"},
            "execution_name": "r1",
        },
        lambda_context,
    )
    layout = RunLayout(run["run_uri"])
    for shard, seconds in (("00000", 600.0), ("00001", 1200.0), ("00002", 1800.0)):
        commit_detection_shard(layout, shard, {}, seconds=seconds)

    materialize({"run": run}, lambda_context)

    cost = storage.read_json(layout.summary_json)["cost"]
    assert cost["gpu_usd"] == pytest.approx(0.526)  # one hour of g4dn.xlarge, as the markers say
    assert [job["seconds"] for job in cost["jobs"]] == [600.0, 1200.0, 1800.0]
    assert {job["stage"] for job in cost["jobs"]} == {"stage1"}
    # Detection only: 8 parent states + 3 shard children.
    assert cost["state_transitions"] == 12
    functions = {i["function"]: i for i in cost["inputs"]["lambdas"]}
    assert set(functions) == {"PlanDetection", "Materialize"}
    assert functions["Materialize"]["measured"] is True and functions["Materialize"]["memory_mb"] == 3008
    # PlanDetection's model: 1 s + 6 images × 0.12 ms + 3 shards × 50 ms.
    assert functions["PlanDetection"]["seconds"] == pytest.approx(1 + 6 * 0.00012 + 3 * 0.05, abs=1e-3)
    assert cost["usd"] == pytest.approx(cost["gpu_usd"] + cost["lambda_usd"] + cost["transitions_usd"], abs=1e-4)

    again = costs.recompute(cost)
    assert {k: again[k] for k in ("usd", "usd_per_1000_images", "gpu_usd", "lambda_usd", "transitions_usd")} == {
        k: cost[k] for k in ("usd", "usd_per_1000_images", "gpu_usd", "lambda_usd", "transitions_usd")
    }

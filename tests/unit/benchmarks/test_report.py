"""The benchmark report states each target against a reference measured in the same run."""

from __future__ import annotations

from typing import Any

from benchmarks import report


def _results(*, ack: float, floor: float, e2e: float, seed: float, one: float, two: float) -> Any:
    row = dict.fromkeys(("ack_p50_ms", "added_p50_ms", "added_p99_ms", "polls_per_job"), 1.0)
    level = {
        "bot": {**row, "ack_p99_ms": ack, "e2e_over_provider": e2e},
        "baseline": {**row, "ack_p99_ms": 1.0, "e2e_over_provider": seed},
        "floor": {"ack_p50_ms": 1.0, "ack_p99_ms": floor},
    }
    return {
        "inflight": {"generation_s": 8.0, "image_bytes": 1, "levels": {"500": level}},
        "throughput": {"sqlite": {"jobs_per_s": 60.0}},
        "memory": {
            "queued_jobs": {"sent": 10_000, "peak_rss_mb": 120.0},
            "images_4mp": {"peak_rss_mb": 410.0},
        },
        "scaling": {
            "postgresql_1_process": {"jobs_per_s": one},
            "postgresql_2_processes": {"jobs_per_s": two},
        },
    }


def _by_name(results: Any) -> dict[str, dict[str, Any]]:
    return {t["name"].split(",")[0].split(" at ")[0]: t for t in report.targets(results)}


def test_targets_are_ratios_to_references_of_the_same_run() -> None:
    found = _by_name(_results(ack=180.0, floor=150.0, e2e=1.5, seed=2.2, one=7.0, two=13.0))
    assert found["ack p99"]["value"] == {"measured": 180.0, "reference": 150.0, "ratio": 1.2}
    assert found["ack p99"]["met"] is True
    assert found["end-to-end / provider time"]["met"] is True  # 0.682 of the seed's
    assert found["throughput on SQLite"]["met"] is True
    assert found["peak RSS with 10000 queued jobs"]["met"] is True
    assert found["peak RSS with 50 concurrent 4-megapixel images"]["met"] is False
    scaling = found["PostgreSQL"]
    assert scaling["value"]["ratio"] == 1.857
    assert scaling["met"] is True


def test_a_missed_ratio_is_reported_as_missed() -> None:
    found = _by_name(_results(ack=200.0, floor=150.0, e2e=1.8, seed=2.2, one=7.0, two=12.0))
    assert found["ack p99"]["met"] is False  # 1.333 of the floor's
    assert found["end-to-end / provider time"]["met"] is False  # 0.818 of the seed's
    assert found["PostgreSQL"]["met"] is False  # 1.714 of one process's


def test_before_and_after_are_rendered_side_by_side() -> None:
    after = _results(ack=180.0, floor=150.0, e2e=1.5, seed=2.2, one=7.0, two=13.0)
    before = _results(ack=300.0, floor=150.0, e2e=1.9, seed=2.2, one=7.0, two=9.0)
    doc = {
        "date": "2026-12-02T00:00:00Z",
        "quick": False,
        "seconds": 1.0,
        "machine": report.machine(),
        "targets": report.targets(after),
        "results": after,
        "before": {"date": "earlier", "commit": "abc1234", "targets": report.targets(before)},
    }
    text = report.render(doc)
    assert "Before and after (before: commit abc1234" in text
    row = next(
        line for line in text.splitlines() if line.startswith("| ack p99") and "300.0" in line
    )
    assert "ratio 2.0" in row and "ratio 1.2" in row


def test_bytes_per_image_is_a_target_against_png_of_the_same_run() -> None:
    def found(jpeg: int) -> dict[str, Any]:
        results = {"formats": {"bytes": {"jpeg": jpeg, "png": 1_000_000, "webp": 240_000}}}
        return _by_name(results)["bytes per delivered 1-megapixel image"]

    assert found(240_000)["value"]["ratio"] == 0.24 and found(240_000)["met"] is True
    assert found(300_000)["met"] is False
    assert _by_name({})["bytes per delivered 1-megapixel image"]["met"] is None

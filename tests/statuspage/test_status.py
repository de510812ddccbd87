"""The status rules of DESIGN §5, as tables: probe state, incidents, maintenance."""

import pytest

from statuspage.status import Impact, Probe, Status, component_status, overall_status

NOW = 1_000_000.0
FRESH = {"last_run": NOW - 5, "interval": 30.0}
UP = Probe(up=True, latency=0.2, objective=1.0, **FRESH)
DOWN = Probe(up=False, latency=0.2, objective=1.0, **FRESH)
SLOW = Probe(up=True, latency=1.5, objective=1.0, **FRESH)
FLAPPING = Probe(up=True, latency=0.2, objective=1.0, flapping=True, **FRESH)
STALE = Probe(up=True, latency=0.2, objective=1.0, last_run=NOW - 91, interval=30.0)
MISSING = Probe()
NO_INTERVAL = Probe(up=True, last_run=NOW - 5)

S = Status
OK, UNK, DEG, PART, MAJ, MNT = (
    S.OPERATIONAL,
    S.UNKNOWN,
    S.DEGRADED_PERFORMANCE,
    S.PARTIAL_OUTAGE,
    S.MAJOR_OUTAGE,
    S.UNDER_MAINTENANCE,
)


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (UP, S.OPERATIONAL),
        (DOWN, S.MAJOR_OUTAGE),
        (SLOW, S.DEGRADED_PERFORMANCE),
        (FLAPPING, S.PARTIAL_OUTAGE),
        (STALE, S.UNKNOWN),
        (MISSING, S.UNKNOWN),
        (NO_INTERVAL, S.UNKNOWN),
        (Probe(up=True, last_run=NOW - 89, interval=30.0), S.OPERATIONAL),
        (Probe(up=False, last_run=NOW - 91, interval=30.0), S.UNKNOWN),
        (Probe(up=True, latency=1.0, objective=1.0, **FRESH), S.OPERATIONAL),
    ],
)
def test_probe_status(probe: Probe, expected: Status) -> None:
    assert probe.status(NOW) is expected


PROBES = {"up": UP, "down": DOWN, "slow": SLOW, "flapping": FLAPPING, "stale": STALE}
IMPACTS = {
    "no incident": [],
    "none": [Impact.NONE],
    "minor": [Impact.MINOR],
    "major": [Impact.MAJOR],
    "critical": [Impact.CRITICAL],
    "minor+critical": [Impact.MINOR, Impact.CRITICAL],
}
# Rows: probe; columns: incident impacts. The worse of probe and incident wins; unknown data is
# never better than unknown, and an incident can only make it worse.
EXPECTED = {
    "up": [OK, OK, DEG, PART, MAJ, MAJ],
    "down": [MAJ] * 6,
    "slow": [DEG, DEG, DEG, PART, MAJ, MAJ],
    "flapping": [PART, PART, PART, PART, MAJ, MAJ],
    "stale": [UNK, UNK, DEG, PART, MAJ, MAJ],
}


@pytest.mark.parametrize("probe_name", list(PROBES))
@pytest.mark.parametrize("impact_name", list(IMPACTS))
@pytest.mark.parametrize("maintenance", [False, True])
def test_component_status(probe_name: str, impact_name: str, maintenance: bool) -> None:
    status = component_status(PROBES[probe_name], NOW, IMPACTS[impact_name], maintenance)
    expected = EXPECTED[probe_name][list(IMPACTS).index(impact_name)]
    assert status is (MNT if maintenance else expected)


@pytest.mark.parametrize(
    ("components", "impacts", "status", "indicator", "description"),
    [
        ([OK, OK], [], OK, "none", "All Systems Operational"),
        ([OK], [Impact.NONE], OK, "none", "All Systems Operational"),
        ([OK], [Impact.MINOR], DEG, "minor", "Degraded Performance"),
        ([OK, DEG], [], DEG, "minor", "Degraded Performance"),
        ([OK, PART], [], PART, "major", "Partial Outage"),
        ([OK], [Impact.MAJOR], PART, "major", "Partial Outage"),
        ([MAJ, DEG], [], MAJ, "critical", "Major Outage"),
        ([OK], [Impact.CRITICAL], MAJ, "critical", "Major Outage"),
        ([OK, MNT], [], MNT, "maintenance", "Under Maintenance"),
        ([MAJ, MNT], [], MAJ, "critical", "Major Outage"),
        ([MNT], [Impact.MINOR], DEG, "minor", "Degraded Performance"),
        ([OK, UNK], [], UNK, "minor", "Status Unknown"),
        ([], [], UNK, "minor", "Status Unknown"),
    ],
)
def test_overall_status(components, impacts, status, indicator, description) -> None:
    overall = overall_status(components, impacts)
    assert (overall.status, overall.indicator, overall.description) == (
        status,
        indicator,
        description,
    )


def test_unknown_is_never_reported_as_operational_in_the_api() -> None:
    assert S.UNKNOWN.api_value == "degraded_performance"
    assert {s.api_value for s in S} == {
        "operational",
        "degraded_performance",
        "partial_outage",
        "major_outage",
        "under_maintenance",
    }

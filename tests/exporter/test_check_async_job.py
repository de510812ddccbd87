"""The two-phase async_job check against the simulated Linker."""

import pytest

from exporter.checks import KINDS, Reason


@pytest.fixture
def linker(make_service, base_url):
    def make(job=None, **overrides):
        entry = {
            "kind": "async_job",
            "method": "POST",
            "url": base_url + "/api/find-refs",
            "json": {"text": {"title": "", "body": "Job 1:1"}},
            "interval": "5s",
            "job": {
                "poll_url": base_url + "/api/async/{id}",
                "poll_interval": "50ms",
                "deadline": "2s",
                "expect_json": {"result": "exists"},
                **(job or {}),
            },
            **overrides,
        }
        return make_service(**entry)

    return make


async def test_pending_started_success_measures_submit_to_completion(linker, ctx, sim):
    result = await KINDS["async_job"](linker(), ctx)
    assert result.success, result.message
    assert (result.status_code, result.attempts) == (200, 1)
    assert result.duration_seconds >= 3 * 0.05  # three polls, 50 ms apart
    assert "connect" in result.phases  # timings of the submit request


@pytest.mark.parametrize(
    ("mode", "reason", "status_code"),
    [
        ("failure", Reason.JOB_FAILED, 200),
        ("submit_200", Reason.HTTP_STATUS, 200),
        ("submit_500", Reason.HTTP_STATUS, 500),
        ("no_task_id", Reason.INVALID_RESPONSE, 202),
        ("not_json", Reason.INVALID_RESPONSE, 202),
        ("poll_404", Reason.HTTP_STATUS, 404),
    ],
)
async def test_failure_modes_have_their_reason(linker, ctx, sim, mode, reason, status_code):
    sim.set_mode("linker", mode)
    result = await KINDS["async_job"](linker(), ctx)
    assert not result.success
    assert (result.reason, result.status_code) == (reason, status_code), result.message


async def test_submit_500_is_retried_but_a_wrong_submit_status_is_not(linker, ctx, sim):
    sim.set_mode("linker", "submit_500")
    assert (await KINDS["async_job"](linker(), ctx)).attempts == 3
    sim.set_mode("linker", "submit_200")
    assert (await KINDS["async_job"](linker(), ctx)).attempts == 1


async def test_flaky_submit_recovers_on_retry(linker, ctx, sim):
    sim.set_mode("linker", "flaky")
    result = await KINDS["async_job"](linker(), ctx)
    assert result.success, result.message
    assert result.attempts == 3


async def test_job_that_never_finishes_times_out_at_its_deadline(linker, ctx, sim):
    sim.set_mode("linker", "never")
    result = await KINDS["async_job"](linker(job={"deadline": "500ms"}), ctx)
    assert result.reason is Reason.JOB_TIMEOUT
    assert "STARTED" in result.message
    assert 0.45 <= result.duration_seconds < 0.8


async def test_result_expectation_is_checked_on_the_final_poll(linker, ctx):
    service = linker(job={"expect_json": {"result.results.0.refs.0": "Job 1:2"}})
    result = await KINDS["async_job"](service, ctx)
    assert result.reason is Reason.BODY_MISMATCH
    assert "Job 1:1" in result.message

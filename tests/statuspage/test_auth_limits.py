"""Authentication limits: a valid token is never locked out, failures are counted per client
(its real address only behind a trusted proxy) and in total, separately for the admin API and
the Alertmanager hook."""

import ipaddress
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient

from statuspage.app import create_app
from statuspage.auth import FailedAttempts
from statuspage.settings import Settings, SettingsError
from tests.statuspage.conftest import TOKEN

GOOD = {"Authorization": f"Bearer {TOKEN}"}
BAD = {"Authorization": "Bearer wrong-token-wrong-token"}
ADMIN = "/admin/api/incidents"
HOOK = "/hooks/alertmanager"
HOOK_BODY = {"alerts": []}


def test_failures_per_client_and_in_total_over_a_sliding_minute() -> None:
    now = [0.0]
    failures = FailedAttempts(per_client=3, total=5, clock=lambda: now[0])
    for _ in range(3):
        assert failures.blocked("a") == 0
        failures.record("a")
    assert failures.blocked("a") == 60
    assert failures.blocked("b") == 0  # another client is not blocked by a's failures
    now[0] = 30
    failures.record("b")
    failures.record("c")
    assert failures.blocked("d") == 30  # 5 failures in the last minute: everyone's wrong tokens
    now[0] = 60.5  # a's failures have left the window
    assert failures.blocked("a") == failures.blocked("d") == 0


def test_remembered_clients_are_bounded() -> None:
    """A spray of addresses costs bounded memory: the oldest clients are forgotten."""
    failures = FailedAttempts(per_client=1, total=10**9)
    for n in range(20_000):
        failures.record(f"client-{n}")
    assert failures.blocked("client-19999") > 0
    assert failures.blocked("client-10000") > 0
    assert failures.blocked("client-9999") == 0


async def statuses(client: TestClient, path: str, headers: dict, times: int) -> list[int]:
    answers = []
    for _ in range(times):
        response = (
            await client.post(path, json=HOOK_BODY, headers=headers)
            if path == HOOK
            else (await client.get(path, headers=headers))
        )
        answers.append(response.status)
    return answers


async def test_without_a_trusted_proxy_forwarded_for_is_ignored(client: TestClient) -> None:
    """Ten failures from this address block its wrong tokens, whatever X-Forwarded-For says;
    its valid token still works, and the hook's budget is untouched."""
    assert await statuses(client, ADMIN, BAD, 11) == [403] * 10 + [429]
    spoofed = await client.get(ADMIN, headers={**BAD, "X-Forwarded-For": "203.0.113.9"})
    assert spoofed.status == 429
    assert int(spoofed.headers["Retry-After"]) > 0
    assert (await client.get(ADMIN, headers=GOOD)).status == 200
    assert await statuses(client, HOOK, BAD, 1) == [403]  # a separate budget
    assert (await client.post(HOOK, json=HOOK_BODY, headers=GOOD)).status == 200
    assert (await client.get(ADMIN)).status == 429  # no token at all is a failure too
    metrics = await (await client.get("/metrics")).text()
    assert 'statuspage_auth_failures_total{api="admin",code="403"} 10.0' in metrics
    assert 'statuspage_auth_failures_total{api="admin",code="429"} 3.0' in metrics


@pytest.fixture
async def behind_proxy(aiohttp_client, settings: Settings) -> TestClient:
    """The app as deployed behind a reverse proxy on loopback that it trusts."""
    trusted = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1"))
    limits = {"auth_failures_per_minute": 3, "auth_failures_per_minute_total": 8}
    return await aiohttp_client(create_app(replace(settings, trusted_proxies=trusted, **limits)))


def via(client_address: str, headers: dict) -> dict:
    """As the proxy forwards it: the client's own claim first, the proxy's view last."""
    return {**headers, "X-Forwarded-For": f"198.51.100.250, {client_address}"}


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(behind_proxy) -> None:
    client = behind_proxy
    attacker, admin = "203.0.113.7", "2001:db8::5"
    assert await statuses(client, ADMIN, via(attacker, BAD), 4) == [403, 403, 403, 429]
    assert await statuses(client, ADMIN, via(admin, BAD), 1) == [403]  # not blocked by them
    assert await statuses(client, ADMIN, via(attacker, GOOD), 1) == [200]
    # The client's own (leftmost) claim does not change who it is.
    spoofed = {**BAD, "X-Forwarded-For": f"192.0.2.1, {attacker}"}
    assert await statuses(client, ADMIN, spoofed, 1) == [429]


async def test_a_cap_across_all_clients_never_locks_out_a_valid_token(behind_proxy) -> None:
    client = behind_proxy
    spray = [await statuses(client, ADMIN, via(f"203.0.113.{n}", BAD), 1) for n in range(9)]
    assert spray == [[403]] * 8 + [[429]]  # 8 failures a minute in total, from 8 addresses
    fresh = await client.get(ADMIN, headers=via("192.0.2.77", BAD))
    assert fresh.status == 429
    assert (await client.get(ADMIN, headers=via("192.0.2.77", GOOD))).status == 200
    assert await statuses(client, HOOK, via("203.0.113.1", GOOD), 3) == [200] * 3
    assert await statuses(client, HOOK, via("203.0.113.1", BAD), 1) == [403]  # its own cap


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("10.0.0.1", (ipaddress.ip_network("10.0.0.1/32"),)),
        (" 10.0.0.0/8 , ::1", (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1"))),
    ],
)
def test_trusted_proxies_setting(value: str, expected: tuple) -> None:
    assert Settings.from_environ({"TRUSTED_PROXIES": value}).trusted_proxies == expected


def test_a_trusted_proxy_that_is_not_an_address_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match=r"TRUSTED_PROXIES: 'proxy\.local' is not an IP"):
        Settings.from_environ({"TRUSTED_PROXIES": "10.0.0.1, proxy.local"})

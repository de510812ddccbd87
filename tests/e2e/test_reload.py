"""README's reload: SIGHUP to the exporter, Prometheus and Alertmanager (what
`docker compose kill -s HUP exporter prometheus alertmanager` sends), and the exporter's HTTP
reload of the local stack. A valid file is taken; a broken one is refused and the process keeps
running with the config it had."""

import asyncio
import re
import signal
import time
import urllib.error
import urllib.request

from tests.readme import command_starting

RELOAD_METRICS = {
    "exporter": "status_exporter_config_last_reload",
    "prometheus": "prometheus_config_last_reload",
    "alertmanager": "alertmanager_config_last_reload",
}


def reload_state(stack, name: str) -> tuple[float, float]:
    """(successful, success timestamp) from the process' own /metrics."""
    with urllib.request.urlopen(f"{stack.url(name)}/metrics", timeout=5) as response:
        text = response.read().decode()
    prefix = RELOAD_METRICS[name]
    successful = re.search(rf"^{prefix}_successful (\S+)$", text, re.MULTILINE)
    timestamp = re.search(rf"^{prefix}_success_timestamp_seconds (\S+)$", text, re.MULTILINE)
    return float(successful[1]), float(timestamp[1])


async def hangup_and_wait(stack, names: list[str], predicate) -> dict[str, tuple[float, float]]:
    for name in names:
        stack.processes[name].popen.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while True:
        states = {name: await asyncio.to_thread(reload_state, stack, name) for name in names}
        if all(predicate(name, state) for name, state in states.items()):
            return states
        assert time.monotonic() < deadline, f"no reload seen: {states}"
        await asyncio.sleep(0.2)


def post_reload(url: str) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def test_sighup_reloads_valid_configs_and_refuses_broken_ones(stack):
    names = command_starting("docker compose kill -s HUP").split()[5:]
    assert names == ["exporter", "prometheus", "alertmanager"]
    files = {
        "exporter": stack.services_file,
        "prometheus": stack.workdir / "prometheus.yml",
        "alertmanager": stack.workdir / "alertmanager.yml",
    }
    before = {name: await asyncio.to_thread(reload_state, stack, name) for name in names}
    await asyncio.sleep(1.1)  # the timestamps have a resolution of a second

    await hangup_and_wait(stack, names, lambda name, s: s == (1, s[1]) and s[1] > before[name][1])

    originals = {name: path.read_text() for name, path in files.items()}
    for path in files.values():
        path.write_text("global: [this is not a config\n")
    try:
        refused = await hangup_and_wait(stack, names, lambda name, s: s[0] == 0)
    finally:
        for name, path in files.items():
            path.write_text(originals[name])
    for name in names:
        process = stack.processes[name]
        assert process.popen.poll() is None, f"{name} exited on a broken config"
        await asyncio.to_thread(process.wait_ready, 5)
    await hangup_and_wait(stack, names, lambda name, s: s[0] == 1 and s[1] > refused[name][1])

    # `make run` starts the exporter with --web.enable-lifecycle (loopback only), so the
    # `curl -X POST …/-/reload` that services.yml mentions works; a bad file is a 400.
    reloaded = await asyncio.to_thread(post_reload, stack.url("exporter"))
    assert reloaded == (200, "Config reloaded.\n")
    stack.services_file.write_text("services: [{id: a, url: 'http://127.0.0.1:99999/'}]\n")
    try:
        status, body = await asyncio.to_thread(post_reload, stack.url("exporter"))
    finally:
        stack.services_file.write_text(originals["exporter"])
    assert status == 400
    assert "services[0].url: must have a port from 1 to 65535" in body
    assert (await asyncio.to_thread(reload_state, stack, "exporter"))[0] == 0

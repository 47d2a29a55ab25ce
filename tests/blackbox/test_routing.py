"""Canary routing through the Lua script, seen from outside: hot reload by
atomic rename, by ConfigMap-style symlink swap and by SIGHUP; broken scripts
and misbehaving calls contained (the server keeps answering, the counters go
up); a broken script at startup is fatal.

The channel a cluster got is read from the v1 body: its "version" field is
the version of the conditions served (1.1.3 stable, 1.2.0 canary)."""
import json
import os
import re
import signal

import pytest

import metrics as M
from conftest import base_env, run_gcs, wait_until

STABLE, CANARY = "1.1.3", "1.2.0"
CHANNEL_OF_VERSION = {STABLE: "stable", CANARY: "canary"}
INTERVAL = 0.2
# Generous: a reload is expected within two intervals, but a loaded test
# machine must not turn that into a failure.
DEADLINE = 20.0

CLUSTER = "9abc1e7a-d834-4c6d-99b1-826399958d1c"
IDS = {
    "loop": "1f0c7a52-0000-4000-8000-000000000001",
    "loop_in_pcall": "1f0c7a52-0000-4000-8000-000000000002",
    "bomb": "1f0c7a52-0000-4000-8000-000000000003",
    "error": "1f0c7a52-0000-4000-8000-000000000004",
    "number": "1f0c7a52-0000-4000-8000-000000000005",
}

ALL = "return {{ route = function() return '{channel}', '{reason}' end }}\n"

# Passes the load-time checks (the samples use other IDs), then misbehaves
# for the IDs above.
TRAPS = """
local M = {}
function M.route(request, context)
  local id = request.cluster_id
  if id == "%(loop)s" then while true do end end
  if id == "%(loop_in_pcall)s" then
    while true do pcall(function() while true do end end) end
  end
  if id == "%(bomb)s" then
    -- doubling reaches the cap fast: the CPU budget counts C's work too
    local s = "x" while true do s = s .. s end
  end
  if id == "%(error)s" then error("asked to fail") end
  if id == "%(number)s" then return 42 end
  return "canary", "traps"
end
return M
""" % IDS

BROKEN = {
    "syntax_error": "local M = {}\nfunction M.route(\n  return 'stable'\nend\nreturn M\n",
    "runtime_error": "local M = {}\nlocal x = nil\nx.y = 1\nreturn M\n",
    "infinite_loop": "return { route = function() while true do end end }\n",
    "infinite_loop_in_pcall": "return { route = function()\n"
                              "  while true do pcall(function() while true do end end) end\n"
                              "end }\n",
    "memory_bomb": "return { route = function()\n"
                   "  local s = 'x' while true do s = s .. s end\n"
                   "end }\n",
    "wrong_return": "return { route = function() return 'beta' end }\n",
    "no_route": "return { rout = function() return 'stable' end }\n",
}


def write_atomically(path, text):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def env_for(script, **extra):
    env = base_env(STABLE_VERSION=STABLE, CANARY_VERSION=CANARY, GCS_ROUTING_SCRIPT=str(script),
                   GCS_RELOAD_INTERVAL=INTERVAL, GCS_THREADS=2)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def channel(srv, cluster=CLUSTER):
    """The channel the server chose for this cluster, from the body."""
    ua = "insights-operator/4.17.0" + (" cluster/" + cluster if cluster else "")
    status, headers, body = srv.get("/api/gathering/v1/gathering_rules", {"User-Agent": ua})
    assert status == 200, body
    got = CHANNEL_OF_VERSION[json.loads(body)["version"]]
    assert headers.get("X-Gcs-Channel") == got
    return got


def present(srv, name, **labels):
    """The value of a series that must be on /metrics."""
    got = M.read(srv, name, **labels)
    assert got is not None, "no series %s%s in /metrics" % (name, labels)
    return got


def errors(srv, kind):
    return present(srv, "gcs_routing_errors_total", kind=kind)


def reloads(srv, result):
    return present(srv, "gcs_routing_reloads_total", result=result)


def test_default_script_without_unleash_is_stable(server_factory):
    srv = server_factory(base_env(STABLE_VERSION=STABLE, CANARY_VERSION=CANARY))
    assert channel(srv) == "stable"
    assert channel(srv, None) == "stable"
    assert errors(srv, "error") == 0


def test_reload_by_atomic_rename(server_factory, tmp_path):
    script = tmp_path / "routing.lua"
    write_atomically(script, ALL.format(channel="canary", reason="A"))
    srv = server_factory(env_for(script))
    assert channel(srv) == "canary"
    ok = reloads(srv, "ok")
    write_atomically(script, ALL.format(channel="stable", reason="B"))
    wait_until("the new script", lambda: channel(srv) == "stable", DEADLINE, every=INTERVAL / 4)
    assert reloads(srv, "ok") == ok + 1
    write_atomically(script, ALL.format(channel="canary", reason="C"))
    wait_until("the third script", lambda: channel(srv) == "canary", DEADLINE, every=INTERVAL / 4)


def configmap(dir_, generation, files):
    """Publishes files as kubelet does: a new ..<generation> directory, then
    ..data swapped to it by renaming a new symlink over it."""
    target = dir_ / ("..2026_" + generation)
    target.mkdir()
    for name, text in files.items():
        (target / name).write_text(text)
    tmp = dir_ / "..data_tmp"
    os.symlink(target.name, tmp)
    os.replace(tmp, dir_ / "..data")
    for name in files:
        link = dir_ / name
        if not os.path.islink(link):
            os.symlink(os.path.join("..data", name), link)


def test_reload_by_configmap_symlink_swap(server_factory, tmp_path):
    configmap(tmp_path, "a", {"routing.lua": ALL.format(channel="canary", reason="A")})
    srv = server_factory(env_for(tmp_path / "routing.lua"))
    assert channel(srv) == "canary"
    configmap(tmp_path, "b", {"routing.lua": ALL.format(channel="stable", reason="B")})
    wait_until("the swapped script", lambda: channel(srv) == "stable", DEADLINE, every=INTERVAL / 4)
    configmap(tmp_path, "c", {"routing.lua": ALL.format(channel="canary", reason="C")})
    wait_until("the second swap", lambda: channel(srv) == "canary", DEADLINE, every=INTERVAL / 4)


def test_configmap_swap_of_a_module_only(server_factory, tmp_path):
    script = "return { route = function() return require('policy').channel, 'policy' end }\n"
    configmap(tmp_path, "a", {"routing.lua": script, "policy.lua": "return { channel = 'canary' }\n"})
    srv = server_factory(env_for(tmp_path / "routing.lua"))
    assert channel(srv) == "canary"
    configmap(tmp_path, "b", {"routing.lua": script, "policy.lua": "return { channel = 'stable' }\n"})
    wait_until("the new module", lambda: channel(srv) == "stable", DEADLINE, every=INTERVAL / 4)


def test_reload_by_sighup(server_factory, tmp_path):
    script = tmp_path / "routing.lua"
    write_atomically(script, ALL.format(channel="canary", reason="A"))
    # no polling within the test's lifetime: only the signal can reload
    srv = server_factory(env_for(script, GCS_RELOAD_INTERVAL=3600))
    assert channel(srv) == "canary"
    write_atomically(script, ALL.format(channel="stable", reason="B"))
    assert channel(srv) == "canary"
    srv.signal(signal.SIGHUP)
    wait_until("the reload on SIGHUP", lambda: channel(srv) == "stable", DEADLINE, every=INTERVAL / 4)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_reload_keeps_the_previous_script(server_factory, tmp_path, name):
    script = tmp_path / "routing.lua"
    write_atomically(script, ALL.format(channel="canary", reason="good"))
    srv = server_factory(env_for(script))
    assert channel(srv) == "canary"
    failed = reloads(srv, "failed")
    write_atomically(script, BROKEN[name])
    wait_until("the rejected reload", lambda: reloads(srv, "failed") > failed, DEADLINE, every=INTERVAL / 4)
    assert channel(srv) == "canary"
    assert channel(srv, None) == "canary"
    rejected = [r for r in srv.logs() if r.get("msg") == "routing script rejected; keeping the previous one"]
    assert rejected and rejected[-1]["script"] == str(script)
    assert "routing.lua:" in rejected[-1]["error"]
    # fixed again: picked up
    write_atomically(script, ALL.format(channel="stable", reason="fixed"))
    wait_until("the fixed script", lambda: channel(srv) == "stable", DEADLINE, every=INTERVAL / 4)


@pytest.mark.parametrize("trap,kind", [
    ("loop", "budget"),
    ("loop_in_pcall", "budget"),
    ("bomb", "memory"),
    ("error", "error"),
    ("number", "result"),
])
def test_failing_call_answers_stable_and_counts(server_factory, tmp_path, trap, kind):
    script = tmp_path / "routing.lua"
    write_atomically(script, TRAPS)
    # The memory cap on a CPU budget that cannot come first: doubling a
    # string to 32 MiB is work in C, which the budget counts too, and under a
    # sanitizer on a loaded machine it can take more than the default 50 ms.
    budget = {"GCS_ROUTING_BUDGET_MS": 10000} if kind == "memory" else {}
    srv = server_factory(env_for(script, **budget))
    assert channel(srv) == "canary"
    before = errors(srv, kind)
    assert channel(srv, IDS[trap]) == "stable"
    assert channel(srv, IDS[trap]) == "stable"
    assert errors(srv, kind) == before + 2
    # the workers keep answering from the script
    assert channel(srv) == "canary"
    failures = [r for r in srv.logs(wait=0.2) if r.get("msg") == "routing script failed; answering stable"]
    mine = [r for r in failures if r.get("kind") == kind]
    assert mine and "routing.lua" in mine[0]["error"]
    if kind != "memory":  # Lua gives no traceback for memory errors
        assert "stack traceback" in mine[0]["error"]


@pytest.mark.parametrize("name", ["syntax_error", "runtime_error", "no_route", "wrong_return"])
def test_broken_script_at_startup_is_fatal(tmp_path, name):
    script = tmp_path / "routing.lua"
    write_atomically(script, BROKEN[name])
    env = env_for(script, GCS_LISTEN="127.0.0.1:0")
    proc = run_gcs([], env)
    assert proc.returncode == 1, proc.stderr
    assert "not serving" in proc.stderr, proc.stderr
    assert str(script) in proc.stderr


def test_startup_error_names_file_and_line(tmp_path):
    script = tmp_path / "routing.lua"
    write_atomically(script, BROKEN["runtime_error"])
    proc = run_gcs([], env_for(script, GCS_LISTEN="127.0.0.1:0"))
    assert proc.returncode == 1, proc.stderr
    # Lua shortens long paths in its messages ("...dir/routing.lua:3:")
    assert re.search(r"routing\.lua:3: attempt to index a nil value", proc.stderr), proc.stderr
    assert str(script) in proc.stderr


def test_missing_script_at_startup_is_fatal(tmp_path):
    script = tmp_path / "absent.lua"
    proc = run_gcs([], env_for(script, GCS_LISTEN="127.0.0.1:0"))
    assert proc.returncode == 1, proc.stderr
    assert "routing script: %s: No such file or directory" % script in proc.stderr

"""Configuration errors and the --route explanation, as an operator meets them."""
import os
import shutil

import pytest

from conftest import ROOT, base_env, route_fields, run_gcs

CLUSTER = "9abc1e7a-d834-4c6d-99b1-826399958d1c"


@pytest.mark.parametrize("var, value, says", [
    ("GCS_LISTEN", "localhost:80", 'GCS_LISTEN="localhost:80": '),
    ("GCS_LISTEN", "8000", 'GCS_LISTEN="8000": expected host:port'),
    ("GCS_THREADS", "5000", 'GCS_THREADS="5000": at most 1024 threads'),
    ("GCS_THREADS", "two", 'GCS_THREADS="two": not a whole number'),
    ("GCS_MAX_FILE_BYTES", "+1048576", 'GCS_MAX_FILE_BYTES="+1048576": not a whole number'),
    ("GCS_LOG_LEVEL", "loud", 'GCS_LOG_LEVEL="loud": not one of debug, info, warn, error'),
    ("GCS_FETCH_TIMEOUT_MS", "0", 'GCS_FETCH_TIMEOUT_MS="0": must be 1 to 3600000 ms'),
    ("GCS_SHUTDOWN_GRACE", "-1", 'GCS_SHUTDOWN_GRACE="-1": not a number of seconds'),
    ("GCS_CONDITIONS_URL", "rules/", 'GCS_CONDITIONS_URL="rules/": must contain {version}'),
    ("CANARY_VERSION", "1.2.0/../x", 'CANARY_VERSION="1.2.0/../x": not a version'),
    ("STABLE_VERSION", None, "STABLE_VERSION is required"),
])
def test_configuration_error_is_a_usage_error(var, value, says):
    res = run_gcs([], base_env(**{var: value}))
    assert res.returncode == 2, res.stderr
    assert says in res.stderr
    assert "listening" not in res.stderr
    # --check-config finds the same problem with the same words, and only that
    res = run_gcs(["--check-config"], base_env(**{var: value}))
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    (line,) = res.stderr.splitlines()
    assert line.startswith("gcs: " + says) and line.endswith(" (see gcs --help)"), line


def test_check_config_accepts_a_good_environment_without_downloading():
    """Exit 0, silent, and no connection to the download server it names."""
    import socket

    watch = socket.socket()
    watch.bind(("127.0.0.1", 0))
    watch.listen(8)
    watch.settimeout(0.5)
    try:
        env = base_env(CANARY_VERSION="1.2.0", GCS_LISTEN="[::]:8000", GCS_LOG_LEVEL="debug",
                       GCS_CONDITIONS_URL="http://127.0.0.1:%d/{version}" % watch.getsockname()[1],
                       GCS_UNLEASH_URL="http://127.0.0.1:%d/api" % watch.getsockname()[1])
        res = run_gcs(["--check-config"], env)
        assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
        with pytest.raises(socket.timeout):
            watch.accept()
    finally:
        watch.close()


def test_check_config_is_a_command_of_its_own():
    res = run_gcs(["--check-config", "--check"], base_env())
    assert res.returncode == 2
    assert "--check, --check-config, --route and --diff are separate commands" in res.stderr


def route(args, **env):
    res = run_gcs(["--route"] + args, base_env(CANARY_VERSION="1.2.0", **env))
    assert res.returncode == 0, res.stderr
    return route_fields(res.stdout)


def test_route_explains_a_stable_cluster():
    got = route([CLUSTER, "--ocp-version", "4.17.0-rc.1"])
    assert got["channel"].strip() == "stable"
    assert got["version"].strip() == "1.1.3"
    assert got["reason"].strip() == "unleash toggle unknown"
    assert got["file"].strip() == "v2/config_validation.json (ocpVersion 4.17.0-rc.1)"


def test_route_explains_an_allowlisted_cluster(tmp_path):
    scripts = tmp_path / "scripts"
    shutil.copytree(os.path.join(ROOT, "scripts"), scripts)
    text = (scripts / "routing.lua").read_text()
    text = text.replace("local force_canary = {\n", 'local force_canary = {\n  ["%s"] = true,\n' % CLUSTER, 1)
    (scripts / "routing.lua").write_text(text)
    got = route([CLUSTER, "--ocp-version", "4.18.0"], GCS_ROUTING_SCRIPT=str(scripts / "routing.lua"))
    assert got["channel"].strip() == "canary"
    assert got["version"].strip() == "1.2.0"
    assert got["reason"].strip() == "force_canary list"
    assert got["file"].strip() == "v2/remote_configurations/config_default.json (ocpVersion 4.18.0)"
    # v1 when no OCP version is given
    assert route([CLUSTER], GCS_ROUTING_SCRIPT=str(scripts / "routing.lua"))["file"].strip() == "v1/rules.json"


def test_route_below_the_mapping_says_404():
    got = route([CLUSTER, "--ocp-version", "3.11.0"])
    assert "below the mapping's first entry 4.0.0 (HTTP 404)" in got["file"]


def test_route_rejects_an_invalid_ocp_version():
    res = run_gcs(["--route", CLUSTER, "--ocp-version", "4.17"], base_env(CANARY_VERSION="1.2.0"))
    assert res.returncode == 2
    assert '--ocp-version "4.17" is not a SemVer 2.0.0 version' in res.stderr


def test_route_without_canary_is_stable_without_calling_the_script():
    res = run_gcs(["--route", CLUSTER], base_env())
    assert res.returncode == 0, res.stderr
    assert "reason:   no canary version loaded" in res.stdout


@pytest.mark.parametrize("args, sig", [([], "SIGTERM"), (["--check"], "SIGINT")])
def test_signal_during_download_ends_the_process(args, sig):
    """A pod stopped, or a person pressing Ctrl-C, while gcs downloads from a
    server that never answers: gcs ends then, not when the download gives up
    (the per-try timeout here is two minutes)."""
    import signal
    import socket
    import subprocess
    import time

    from conftest import GCS

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    env = base_env(GCS_CONDITIONS_URL="http://127.0.0.1:%d/{version}" % silent.getsockname()[1],
                   GCS_FETCH_TIMEOUT_MS="120000")
    # As from a terminal: a test run started in the background by a shell
    # without job control has SIGINT ignored, and gcs would inherit that.
    proc = subprocess.Popen([GCS] + args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        conn, _ = silent.accept()  # gcs is now waiting for an answer
        time.sleep(0.2)
        proc.send_signal(getattr(signal, sig))
        # ended by the signal itself (its default action), not by a timeout
        assert proc.wait(timeout=30) == -getattr(signal, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        silent.close()

"""The test harness itself: a server that ends badly, or a command that
crashes or prints a sanitizer report, fails the test that ran it.

gcs cannot be made to leak or crash on purpose, so here stand-in programs
(small Python scripts) play a gcs that does, in front of the same
GcsServer and run_gcs every suite uses."""
import sys

import pytest

import conftest
from conftest import GcsServer, run_gcs, sanitizer_report

LEAK_REPORT = """=================================================================
==4242==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 4096 byte(s) in 1 object(s) allocated from:
    #0 0x7f in __interceptor_malloc
    #1 0x56 in handle src/http.c:500

SUMMARY: AddressSanitizer: 4096 byte(s) leaked in 1 allocation(s)."""


def stand_in(tmp_path, on_term):
    """A program that logs gcs's "listening" line, then on SIGTERM runs
    on_term (Python source) and exits."""
    path = tmp_path / "gcs-stand-in"
    path.write_text(
        "#!%s\n"
        "import signal, sys, time\n"
        "def term(*_):\n"
        "%s\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "print('{\"msg\": \"listening\", \"address\": \"127.0.0.1:1\"}', file=sys.stderr, flush=True)\n"
        "while True:\n"
        "    time.sleep(1)\n" % (sys.executable, "\n".join("    " + line for line in on_term.splitlines())))
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("text, first", [
    (LEAK_REPORT, "==4242==ERROR: LeakSanitizer: detected memory leaks"),
    ("==17==ERROR: AddressSanitizer: heap-use-after-free on address 0x602",
     "==17==ERROR: AddressSanitizer: heap-use-after-free on address 0x602"),
    ("src/jsontext.c:212:9: runtime error: signed integer overflow: 2147483647 + 1",
     "src/jsontext.c:212:9: runtime error: signed integer overflow: 2147483647 + 1"),
], ids=["leak", "asan", "ubsan"])
def test_sanitizer_reports_are_recognised(text, first):
    report = sanitizer_report(["a log line"] + text.splitlines())
    assert report is not None
    assert report.splitlines()[0] == first


def test_ordinary_log_lines_are_not_reports():
    lines = ['{"msg": "routing script failed", "error": "a runtime error: in a message"}',
             "gcs: 1 problem; not serving", "ERROR: not a sanitizer"]
    assert sanitizer_report(lines) is None


def test_a_report_at_stop_fails_even_with_exit_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "GCS", stand_in(tmp_path, "sys.stderr.write(%r + '\\n')\nsys.exit(0)"
                                                  % LEAK_REPORT))
    srv = GcsServer({})
    with pytest.raises(AssertionError) as failure:
        srv.stop()
    assert "sanitizer report" in str(failure.value)
    assert "ERROR: LeakSanitizer: detected memory leaks" in str(failure.value)
    assert "src/http.c:500" in str(failure.value)


def test_a_wrong_exit_status_at_stop_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "GCS", stand_in(tmp_path, "sys.exit(3)"))
    srv = GcsServer({})
    with pytest.raises(AssertionError) as failure:
        srv.stop()
    assert "exited 3, expected 0" in str(failure.value)


def test_a_clean_stop_passes(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "GCS", stand_in(tmp_path, "sys.exit(0)"))
    assert GcsServer({}).stop() == 0


def test_a_command_killed_by_a_signal_fails(tmp_path, monkeypatch):
    crash = tmp_path / "crash"
    crash.write_text("#!%s\nimport os, signal\nos.kill(os.getpid(), signal.SIGABRT)\n" % sys.executable)
    crash.chmod(0o755)
    monkeypatch.setattr(conftest, "GCS", str(crash))
    with pytest.raises(AssertionError) as failure:
        run_gcs(["--check"], {})
    assert "gcs --check was killed by SIGABRT" in str(failure.value)


def test_a_command_reporting_a_leak_fails_whatever_its_status(tmp_path, monkeypatch):
    leak = tmp_path / "leak"
    leak.write_text("#!%s\nimport sys\nsys.stderr.write(%r)\nsys.exit(1)\n" % (sys.executable, LEAK_REPORT))
    leak.chmod(0o755)
    monkeypatch.setattr(conftest, "GCS", str(leak))
    with pytest.raises(AssertionError) as failure:
        run_gcs(["--check"], {})
    assert "gcs --check: sanitizer report" in str(failure.value)

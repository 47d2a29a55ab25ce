"""build/gcs --diff OLD NEW on pairs of trees with known differences, served
by the real download server (tests/support/download_server.py).

Every case is run in the three formats: the JSON output is validated against
the schema kept in the repository (src/diff.schema.json) and read field by
field; text and Markdown are read as a reviewer would, line by line. The exit
status is diff(1)'s: 0 identical, 1 different, 2 trouble.
"""
import copy
import json
import os

import jsonschema
import pytest

from conftest import ROOT, base_env, run_gcs
from trees import Tree, alert_rule, container_log, describe, remote_config
from download_server import DownloadServer

with open(os.path.join(ROOT, "src", "diff.schema.json")) as f:
    SCHEMA = json.load(f)
jsonschema.Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

OLD, NEW = "1.0.0", "1.0.1"

V1_RULES = [
    alert_rule("AlertKept"),
    alert_rule("AlertChanged", containers_logs={"alert_name": "AlertChanged", "tail_lines": 10}),
    alert_rule("AlertRemoved"),
]
LOG = container_log("openshift-etcd", "etcd-.*", ["first message", "second message"])
FILE_A = remote_config("a", [alert_rule("AlertA")], [LOG])
FILE_B = remote_config("b", [alert_rule("AlertB")], [])
MAPPING = [["4.0.0", "a.json"], ["4.17.0", "b.json"]]


def write(root, version, rules=V1_RULES, mapping=MAPPING, files=None, v1_version="1"):
    files = files if files is not None else {"a.json": FILE_A, "b.json": FILE_B}
    return Tree(root).write(version, v1={"version": v1_version, "rules": rules}, mapping=mapping,
                            files=files)


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    srv = DownloadServer(str(root)).start()
    yield root, srv
    srv.stop()


def gcs_diff(srv, *args, versions=(OLD, NEW), **env):
    env.setdefault("GCS_CONDITIONS_URL", srv.url + "/{version}")
    return run_gcs(["--diff", *versions, *args], base_env(**env))


def all_formats(srv, status, **kw):
    """(json document, text lines, markdown lines), each run exiting status."""
    out = []
    for fmt in ("json", "text", "markdown"):
        res = gcs_diff(srv, "--format", fmt, **kw)
        assert res.returncode == status, describe(res)
        assert "Sanitizer" not in res.stderr, describe(res)
        out.append(res.stdout)
    doc = json.loads(out[0])
    VALIDATOR.validate(doc)
    return doc, [line.strip() for line in out[1].splitlines()], out[2].splitlines()


def by_name(changes, name):
    found = [c for c in changes if c["name"] == name]
    assert len(found) == 1, (name, changes)
    return found[0]


# --- v1 rules ----------------------------------------------------------------

def test_v1_rules_added_removed_changed(served):
    root, srv = served
    write(root, OLD)
    changed = alert_rule("AlertChanged",
                         containers_logs={"alert_name": "AlertChanged", "tail_lines": 20,
                                          "container": "etcd"},
                         pod_definition={"alert_name": "AlertChanged"})
    write(root, NEW, rules=[V1_RULES[0], changed, alert_rule("AlertAdded")])
    doc, text, md = all_formats(srv, 1)

    assert doc["identical"] is False
    assert doc["old"] == {"label": "old", "version": OLD}
    v1 = doc["v1"]
    assert v1["rule_counts"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1}
    assert [c["change"] for c in v1["rules"]] == ["added", "removed", "changed"]
    assert "version" not in v1  # both v1 documents say "1"
    assert by_name(v1["rules"], "alert AlertAdded")["new"]["gathering_functions"] == {
        "pod_definition": {"alert_name": "AlertAdded"}}
    assert by_name(v1["rules"], "alert AlertRemoved")["change"] == "removed"
    details = by_name(v1["rules"], "alert AlertChanged")["details"]
    logs = [d for d in details if d["function"] == "containers_logs"][0]
    assert logs["change"] == "changed"
    assert {p["parameter"]: (p["change"], p.get("old"), p.get("new")) for p in logs["parameters"]} == {
        "tail_lines": ("changed", 10, 20), "container": ("added", None, "etcd")}
    assert [d for d in details if d["function"] == "pod_definition"][0]["change"] == "added"
    assert doc["summary"]["v1"] == "v1: 1 rule added, 1 removed, 1 changed, 1 unchanged"
    # v2 did not move: every range the same bytes
    assert doc["v2"]["identical"] is True
    assert [r["status"] for r in doc["v2"]["ranges"]] == ["same", "same"]

    assert "+ rule alert AlertAdded" in text
    assert "- rule alert AlertRemoved" in text
    assert "~ rule alert AlertChanged" in text
    assert "~ containers_logs.tail_lines: 10 -> 20" in text
    assert '+ containers_logs.container: "etcd"' in text
    assert '+ pod_definition: {"alert_name":"AlertChanged"}' in text
    assert "alert AlertKept" not in "\n".join(text)
    assert "v1: 1 rule added, 1 removed, 1 changed, 1 unchanged" in text
    assert "OCP >= 4.0.0, < 4.17.0: a.json: the same bytes" in text
    assert "OCP >= 4.17.0: b.json: the same bytes" in text

    assert md[0] == "## Gathering conditions old `1.0.0` → new `1.0.1`: differences"
    assert "- **added** rule `alert AlertAdded`" in md
    assert "- **changed** rule `alert AlertChanged`" in md
    assert "  - **changed** `containers_logs.tail_lines`: `10` → `20`" in md
    assert "### Summary" in md


def test_rules_known_by_conditions_not_position(served):
    """Reordering rules is not an add and a remove; a rule with two conditions
    is named by both."""
    root, srv = served
    both = {"conditions": [{"type": "alert_is_firing", "alert": {"name": "AlertTwo"}},
                           {"type": "cluster_version_matches",
                            "cluster_version_matches": {"version": ">=4.17.0"}}],
            "gathering_functions": {"pod_definition": {"alert_name": "AlertTwo"}}}
    write(root, OLD, rules=V1_RULES + [both])
    swapped = dict(both, conditions=list(reversed(both["conditions"])))
    write(root, NEW, rules=[swapped] + list(reversed(V1_RULES)))
    doc, text, _ = all_formats(srv, 1)
    v1 = doc["v1"]
    assert v1["rules"] == []
    assert v1["rule_counts"]["unchanged"] == 4
    assert v1["order_changed"] is True
    assert "the same rules and requests in another order" in text
    assert doc["summary"]["v1"].endswith("; rules reordered")

    changed = copy.deepcopy(both)
    changed["gathering_functions"]["pod_definition"]["alert_name"] = "Other"
    write(root, NEW, rules=V1_RULES + [changed])
    doc, text, _ = all_formats(srv, 1)
    rule = by_name(doc["v1"]["rules"], 'alert AlertTwo and cluster version ">=4.17.0"')
    assert rule["change"] == "changed"
    assert '~ pod_definition.alert_name: "AlertTwo" -> "Other"' in text


# --- v2 ------------------------------------------------------------------------

def test_container_log_request_changed(served):
    root, srv = served
    write(root, OLD)
    log = container_log("openshift-etcd", "etcd-.*", ["first message", "third message"],
                        previous=True)
    added = container_log("openshift-monitoring", "prometheus-.*", ["error"])
    file_a = remote_config("a", [alert_rule("AlertA")], [log, added])
    write(root, NEW, files={"a.json": file_a, "b.json": FILE_B})
    doc, text, md = all_formats(srv, 1)

    assert doc["v1"]["identical"] is True
    first, second = doc["v2"]["ranges"]
    assert (first["from"], first["to"], first["status"]) == ("4.0.0", "4.17.0", "changed")
    assert (second["from"], second["to"], second["status"]) == ("4.17.0", None, "same")
    assert first["rules"] == [] and first["rule_counts"]["unchanged"] == 1
    assert first["container_log_counts"] == {"added": 1, "removed": 0, "changed": 1,
                                             "unchanged": 0}
    req = by_name(first["container_logs"], 'namespace openshift-etcd, pods "etcd-.*"')
    fields = {d["field"]: d for d in req["details"]}
    assert set(fields) == {"messages", "previous"}
    assert fields["messages"]["added"] == ["third message"]
    assert fields["messages"]["removed"] == ["second message"]
    assert fields["previous"]["change"] == "added" and fields["previous"]["new"] is True
    by_name(first["container_logs"], 'namespace openshift-monitoring, pods "prometheus-.*"')
    assert doc["summary"]["v2"] == ("v2: 2 OCP version ranges: 1 changed, 1 the same, "
                                    "0 newly served, 0 no longer served")

    # One assert per line a reviewer reads (like the v1 case above, not through a
    # shared helper): a failure names the very line that is missing.
    assert "OCP >= 4.0.0, < 4.17.0: a.json: changed" in text
    assert '~ container log namespace openshift-etcd, pods "etcd-.*"' in text
    assert '+ messages: "third message"' in text
    assert '- messages: "second message"' in text
    assert "+ previous: true" in text
    assert '+ container log namespace openshift-monitoring, pods "prometheus-.*"' in text
    assert 'messages: ["error"]' in text
    assert "  - **changed** container log `namespace openshift-etcd, pods \"etcd-.*\"`" in md


def test_mapping_range_added_and_split(served):
    """The new mapping starts lower (clusters that got 404 now get a file) and
    adds an entry that splits the old last range."""
    root, srv = served
    write(root, OLD)
    file_c = remote_config("c", [alert_rule("AlertC")], [])
    write(root, NEW, mapping=[["3.11.0", "a.json"], ["4.0.0", "a.json"], ["4.17.0", "b.json"],
                              ["4.18.0-0", "c.json"]],
          files={"a.json": FILE_A, "b.json": FILE_B, "c.json": file_c})
    doc, text, md = all_formats(srv, 1)
    v2 = doc["v2"]
    assert v2["mapping_changed"] is True
    got = [(r["from"], r["to"], r["old_file"], r["new_file"], r["status"]) for r in v2["ranges"]]
    assert got == [
        ("3.11.0", "4.0.0", None, "a.json", "added"),
        ("4.0.0", "4.17.0", "a.json", "a.json", "same"),
        ("4.17.0", "4.18.0-0", "b.json", "b.json", "same"),
        ("4.18.0-0", None, "b.json", "c.json", "changed"),
    ]
    added = v2["ranges"][0]
    assert [c["name"] for c in added["rules"]] == ["alert AlertA"]
    assert added["rules"][0]["change"] == "added"
    last = v2["ranges"][3]
    assert last["version"] == {"old": "b", "new": "c"}
    assert {c["name"]: c["change"] for c in last["rules"]} == {"alert AlertC": "added",
                                                               "alert AlertB": "removed"}
    assert v2["range_counts"] == {"same": 2, "changed": 1, "added": 1, "removed": 0}

    assert "OCP >= 3.11.0, < 4.0.0: nothing (HTTP 404) -> a.json: newly served (was HTTP 404)" in text
    assert "OCP >= 4.18.0-0: b.json -> c.json: changed" in text
    assert 'version: "b" -> "c"' in text
    assert "1.0.0 mapping: 4.0.0 a.json, 4.17.0 b.json" in text
    assert "1.0.1 mapping: 3.11.0 a.json, 4.0.0 a.json, 4.17.0 b.json, 4.18.0-0 c.json" in text
    assert any(line.startswith("- OCP ≥ `4.18.0-0`: `b.json` → `c.json`: changed") for line in md)


def test_range_no_longer_served_and_repeated_changes(served):
    """The same pair of files in two ranges: the changes are shown once and the
    second range refers to the first."""
    root, srv = served
    write(root, OLD, mapping=[["4.0.0", "a.json"], ["4.16.0", "b.json"], ["4.17.0", "a.json"]])
    file_a = remote_config("a2", [alert_rule("AlertA")], [LOG])
    write(root, NEW, mapping=[["4.10.0", "a.json"], ["4.16.0", "b.json"], ["4.17.0", "a.json"]],
          files={"a.json": file_a, "b.json": FILE_B})
    doc, text, _ = all_formats(srv, 1)
    ranges = doc["v2"]["ranges"]
    assert [(r["from"], r["status"]) for r in ranges] == [
        ("4.0.0", "removed"), ("4.10.0", "changed"), ("4.16.0", "same"), ("4.17.0", "changed")]
    assert "same_changes_as" not in ranges[1]
    assert ranges[3]["same_changes_as"] == 1
    assert ranges[3]["version"] == ranges[1]["version"] == {"old": "a", "new": "a2"}
    assert "OCP >= 4.0.0, < 4.10.0: a.json -> nothing (HTTP 404): no longer served (now HTTP 404)" in text
    assert ("OCP >= 4.17.0: a.json: changed, as OCP >= 4.10.0, < 4.16.0 above") in text
    assert text.count('version: "a" -> "a2"') == 1


# --- identical, invalid, usage ------------------------------------------------

def test_identical_versions_exit_0(served):
    root, srv = served
    write(root, OLD)
    write(root, NEW)
    doc, text, md = all_formats(srv, 0)
    assert doc["identical"] is True
    assert doc["v1"]["identical"] and doc["v2"]["identical"]
    assert doc["v1"]["rules"] == [] and doc["v2"]["mapping_changed"] is False
    assert all(r["status"] == "same" for r in doc["v2"]["ranges"])
    assert doc["summary"] == {"v1": "v1: identical (3 rules)",
                              "v2": "v2: identical (2 OCP version ranges)"}
    assert text[0] == "gcs --diff old 1.0.0 -> new 1.0.1: identical"
    assert "mapping: unchanged, 2 entries" in text
    assert md[0].endswith(": identical")

    # one version against itself is fetched once, and identical
    res = gcs_diff(srv, versions=(OLD, OLD))
    assert res.returncode == 0, describe(res)


def test_renamed_files_with_the_same_bytes_are_identical(served):
    """What clusters receive is compared, not paths: a file moved to another
    path with the same content changes nothing for them (but is shown)."""
    root, srv = served
    write(root, OLD)
    write(root, NEW, mapping=[["4.0.0", "moved/a.json"], ["4.17.0", "moved/b.json"]],
          files={"moved/a.json": FILE_A, "moved/b.json": FILE_B})
    doc, text, _ = all_formats(srv, 0)
    assert doc["identical"] is True and doc["v2"]["mapping_changed"] is True
    assert "OCP >= 4.0.0, < 4.17.0: a.json -> moved/a.json: the same bytes" in text
    assert doc["summary"]["v2"].endswith("; the mapping names other files with the same bytes")


def test_invalid_version_is_trouble_reported_as_check_does(served):
    root, srv = served
    write(root, OLD)
    bad = copy.deepcopy(FILE_A)
    bad["container_logs"][0]["namespace"] = "default"  # not openshift-* or kube-*
    write(root, NEW, files={"a.json": bad, "b.json": FILE_B})
    for fmt in ("text", "json"):
        res = gcs_diff(srv, "--format", fmt)
        assert res.returncode == 2, describe(res)
        assert res.stdout == "", describe(res)
        lines = res.stderr.splitlines()
        assert any(line.startswith("new 1.0.1: v2/a.json: /container_logs/0/namespace: ")
                   for line in lines), describe(res)
        assert lines[-1] == "gcs: 1 problem; nothing compared", describe(res)

    # a version missing from the download server
    res = gcs_diff(srv, versions=(OLD, "9.9.9"))
    assert res.returncode == 2, describe(res)
    assert "new 9.9.9: v1/rules.json: " in res.stderr and "HTTP 404" in res.stderr, describe(res)


def test_without_arguments_compares_stable_and_canary(served):
    root, srv = served
    write(root, OLD)
    write(root, NEW, rules=V1_RULES[:2])
    res = gcs_diff(srv, "--format", "json", versions=(), STABLE_VERSION=OLD, CANARY_VERSION=NEW)
    assert res.returncode == 1, describe(res)
    doc = json.loads(res.stdout)
    VALIDATOR.validate(doc)
    assert doc["old"] == {"label": "stable", "version": OLD}
    assert doc["new"] == {"label": "canary", "version": NEW}
    assert doc["v1"]["rule_counts"]["removed"] == 1

    res = gcs_diff(srv, versions=(), STABLE_VERSION=OLD, CANARY_VERSION="none")
    assert res.returncode == 2, describe(res)
    assert "CANARY_VERSION is none" in res.stderr


def test_explicit_versions_need_no_stable_version(served):
    root, srv = served
    write(root, OLD)
    write(root, NEW)
    res = gcs_diff(srv, STABLE_VERSION=None, CANARY_VERSION=None)
    assert res.returncode == 0, describe(res)


NOT_A_VERSION = "not a version (letters, digits, '.', '-', '+', '_') (see gcs --help)"


@pytest.mark.parametrize("versions, message", [
    (("1.0/../x", NEW), 'gcs: STABLE_VERSION="1.0/../x": ' + NOT_A_VERSION),
    ((OLD, "a b"), 'gcs: CANARY_VERSION="a b": ' + NOT_A_VERSION),
    ((OLD, "none"), "gcs: --diff OLD NEW: NEW is none"),
    ((OLD, ""), "gcs: --diff OLD NEW: NEW is none"),
])
def test_versions_are_checked_as_the_variables_are(versions, message):
    """OLD and NEW pass the checks STABLE_VERSION and CANARY_VERSION pass,
    with the same one-line refusal and exit 2."""
    res = run_gcs(["--diff", *versions], base_env())
    assert res.returncode == 2, describe(res)
    assert res.stdout == ""
    assert res.stderr.splitlines() == [message], describe(res)


def test_versions_given_win_over_the_variables(served):
    root, srv = served
    write(root, OLD)
    write(root, NEW)
    res = gcs_diff(srv, STABLE_VERSION="bad/x", CANARY_VERSION="x y")
    assert res.returncode == 0, describe(res)
    assert res.stdout.startswith("gcs --diff old 1.0.0 -> new 1.0.1: identical\n"), describe(res)


@pytest.mark.parametrize("args", [
    ["--diff", OLD],
    ["--diff", OLD, NEW, "--format", "yaml"],
    ["--format", "json"],
    ["--diff", OLD, NEW, "extra"],
    ["--diff", OLD, NEW, "--check"],
    ["--diff", "1.0/../x", NEW],
])
def test_usage_errors_exit_2(args):
    res = run_gcs(args, base_env())
    assert res.returncode == 2, describe(res)
    assert res.stdout == ""
    assert res.stderr.startswith("gcs: "), describe(res)


def test_the_real_pair_in_rules(served):
    """rules/1.1.3 against rules/1.2.0, as the repository ships them."""
    res = run_gcs(["--diff", "1.1.3", "1.2.0", "--format", "json"], base_env())
    assert res.returncode == 1, describe(res)
    doc = json.loads(res.stdout)
    VALIDATOR.validate(doc)
    assert [(c["change"], c["name"]) for c in doc["v1"]["rules"]] == [
        ("added", "alert PrometheusRemoteStorageFailures")]
    assert doc["v1"]["version"] == {"old": "1.1.3", "new": "1.2.0"}
    assert len(doc["v2"]["ranges"]) == 5
    assert all(r["status"] == "changed" for r in doc["v2"]["ranges"])

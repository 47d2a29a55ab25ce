"""build/gcs --check over broken and valid conditions trees read from disk.

Each broken tree must be refused before listening: exit 1 (not a signal, not
a usage error) and a line on stderr naming the channel, the version, the file
and the problem (with its JSON pointer where there is one). Each valid tree
must be accepted with a summary naming every version and every served file.
"""
import json
import os
import shutil

import pytest

from conftest import ROOT, RULES, base_env, run_gcs
from trees import (assert_accepted, assert_problem, assert_refused, copy_tree, describe,
                   plain_lines, problem_lines, rule_index, stderr_lines, v2_validation)

V1 = "v1/rules.json"
MAPPING = "v2/cluster_version_mapping.json"
CHANNEL = {"1.1.3": "stable", "1.2.0": "canary"}


@pytest.fixture
def tree(tmp_path):
    return copy_tree(tmp_path / "trees")


def check_both(tree, **env):
    """Stable 1.1.3 and canary 1.2.0, as the embedded default runs."""
    return tree.check(stable="1.1.3", canary="1.2.0", **env)


def rules_key(rel):
    return "rules" if rel == V1 else "conditional_gathering_rules"


# --- strict JSON -------------------------------------------------------------

def truncate_half(data):
    return data[: len(data) // 2]


def dup_top_key(data):
    return data.replace(b"{", b'{"version": "0.0.1",', 1)


def dup_nested_key(data):
    marker = b'"container": "alertmanager",'
    assert marker in data
    return data.replace(marker, marker + b"\n" + marker, 1)


def nul_in_string(data):
    i = data.index(b'"openshift-')
    return data[: i + 1] + b"\x00" + data[i + 1:]


def set_version_bytes(raw):
    """Mutation replacing the version string's content with raw bytes."""
    def mutate(data):
        doc = json.loads(data)
        old = json.dumps(doc["version"]).encode()
        key = b'"version": ' + old
        assert key in data
        return data.replace(key, b'"version": "' + raw + b'"', 1)
    return mutate


JSON_CASES = [
    # id, version, file, mutation, pattern the line must match (None: file named is enough)
    ("truncated", "1.1.3", V1, truncate_half, r"premature|end of|truncat|eof|unexpected|expected"),
    ("empty-file", "1.1.3", V1, lambda d: b"", None),
    ("truncated-v2", "1.2.0", "v2/remote_configurations/config_default.json", truncate_half,
     r"premature|end of|truncat|eof|unexpected|expected"),
    ("truncated-mapping", "1.2.0", MAPPING, truncate_half,
     r"premature|end of|truncat|eof|unexpected|expected"),
    ("duplicate-key-top", "1.1.3", V1, dup_top_key, r"duplicate"),
    ("duplicate-key-nested", "1.2.0", "v2/remote_configurations/config_default.json", dup_nested_key,
     r"duplicate"),
    ("trailing-object", "1.1.3", V1, lambda d: d + b'\n{"version": "x"}',
     r"trailing|end of (file|input) expected|extra|after|garbage"),
    ("trailing-bracket", "1.2.0", MAPPING, lambda d: d + b"]",
     r"trailing|end of (file|input) expected|extra|after|garbage"),
    ("nul-in-string", "1.1.3", "v2/config_default.json", nul_in_string, r"nul|0x0|\\u0000|control|zero"),
    ("nul-after-value", "1.1.3", V1, lambda d: d + b"\x00", None),
    ("nul-before-value", "1.2.0", V1, lambda d: b"\x00" + d, None),
    ("utf8-invalid-byte", "1.1.3", V1, set_version_bytes(b"1.1.3\xff"), r"utf-?8|decode|byte|encod"),
    ("utf8-overlong", "1.2.0", V1, set_version_bytes(b"\xc0\xaf"), r"utf-?8|decode|byte|encod"),
    ("utf8-surrogate", "1.2.0", V1, set_version_bytes(b"\xed\xa0\x80"), r"utf-?8|decode|byte|encod"),
    ("utf8-truncated-sequence", "1.1.3", V1, set_version_bytes(b"1.1.3\xe2\x82"), r"utf-?8|decode|byte|encod"),
    ("escaped-nul", "1.1.3", V1, set_version_bytes(b"1.1.3\\u0000"), r"u0000|nul|zero"),
    ("trailing-comma", "1.2.0", MAPPING, lambda d: d.replace(b"]\n]", b"],\n]"), None),
    ("comment", "1.1.3", V1, lambda d: b"// comment\n" + d, None),
    ("single-quotes", "1.1.3", V1, lambda d: d.replace(b'"version"', b"'version'", 1), None),
    ("leading-zero-number", "1.1.3", V1, lambda d: d.replace(b'"tail_lines": 50', b'"tail_lines": 050', 1), None),
    ("integer-too-big", "1.1.3", V1,
     lambda d: d.replace(b'"tail_lines": 50', b'"tail_lines": 18446744073709551616', 1), None),
    ("nan", "1.1.3", V1, lambda d: d.replace(b'"tail_lines": 50', b'"tail_lines": NaN', 1), None),
    ("top-level-not-object", "1.1.3", V1, lambda d: b"[" + d + b"]", None),
]


@pytest.mark.parametrize("version,rel,mutate,pattern", [c[1:] for c in JSON_CASES],
                         ids=[c[0] for c in JSON_CASES])
def test_strict_json_refused(tree, version, rel, mutate, pattern):
    tree.write_bytes(version, rel, mutate(tree.read_bytes(version, rel)))
    res = check_both(tree)
    assert_problem(res, CHANNEL[version], version, rel, pattern=pattern)


def test_trailing_whitespace_and_non_ascii_accepted(tree):
    """RFC 8259 allows whitespace after the value and any Unicode in strings."""
    rel = v2_validation("1.1.3")
    doc = tree.load("1.1.3", rel)
    doc["container_logs"][0]["messages"].append("caf\u00e9 \u2713 \u2028 <&>")
    tree.write_bytes("1.1.3", rel, json.dumps(doc, ensure_ascii=False).encode() + b"\n\n \t\r\n")
    assert_accepted(check_both(tree))


# --- JSON Schema -------------------------------------------------------------

@pytest.mark.parametrize("version,rel", [("1.1.3", "v2/config_default.json"),
                                         ("1.2.0", "v2/remote_configurations/config_default.json"),
                                         ("1.1.3", V1), ("1.2.0", V1)])
def test_tail_lines_above_maximum_exact_line(tree, version, rel):
    doc = tree.load(version, rel)
    key = rules_key(rel)
    i = rule_index(doc[key], "logs_of_namespace")
    doc[key][i]["gathering_functions"]["logs_of_namespace"]["tail_lines"] = 5000
    tree.dump(version, rel, doc)
    res = check_both(tree)
    assert_refused(res)
    want = "%s %s: %s: /%s/%d/gathering_functions/logs_of_namespace/tail_lines: " \
           "5000 is greater than the maximum 4096" % (CHANNEL[version], version, rel, key, i)
    assert want in res.stderr.splitlines() or want in stderr_lines(res), \
        "missing line:\n%s\n%s" % (want, describe(res))


def mutate_fn(version, rel, edit):
    """Loads the file, applies edit(doc), writes it back."""
    def run(tree):
        doc = tree.load(version, rel)
        edit(doc)
        tree.dump(version, rel, doc)
    return run


def gf(doc, key, function):
    """(index, params) of the first rule using function."""
    i = rule_index(doc[key], function)
    return i, doc[key][i]["gathering_functions"][function]


def edit_tail_lines(value, function="containers_logs"):
    def edit(doc):
        key = "rules" if "rules" in doc else "conditional_gathering_rules"
        _, params = gf(doc, key, function)
        params["tail_lines"] = value
    return edit


def edit_unknown_function(doc):
    doc["conditional_gathering_rules"][0]["gathering_functions"]["foo_bar"] = {"x": 1}


def edit_bad_namespace(doc):
    _, params = gf(doc, "conditional_gathering_rules", "logs_of_namespace")
    params["namespace"] = "default"


def edit_missing_alert_name(doc):
    _, params = gf(doc, "conditional_gathering_rules", "containers_logs")
    del params["alert_name"]


def edit_previous_string(doc):
    _, params = gf(doc, "rules", "containers_logs")
    params["previous"] = "yes"


def edit_conditions_object(doc):
    doc["conditional_gathering_rules"][0]["conditions"] = {}


def edit_unknown_condition(doc):
    doc["conditional_gathering_rules"][0]["conditions"][0]["type"] = "cluster_is_on_fire"


def edit_empty_functions(doc):
    doc["conditional_gathering_rules"][0]["gathering_functions"] = {}


def edit_no_rules(doc):
    doc["rules"] = []


def edit_duplicate_rule(doc):
    doc["rules"].append(doc["rules"][0])


def edit_version_number(doc):
    doc["version"] = 113


def edit_alert_name_pattern(doc):
    doc["rules"][0]["conditions"][0]["alert"]["name"] = "bad name!"


def edit_container_log_namespace(doc):
    doc["container_logs"][0]["namespace"] = "default"


def edit_container_log_no_messages(doc):
    del doc["container_logs"][0]["messages"]


V2D_113 = "v2/config_default.json"
V2V_113 = "v2/config_validation.json"
V2D_120 = "v2/remote_configurations/config_default.json"

# id, version, file, edit, pointer (exact) or None, under (pointer prefix) or None, pattern
SCHEMA_CASES = [
    ("tail-lines-zero", "1.1.3", V2D_113, edit_tail_lines(0),
     "/conditional_gathering_rules/0/gathering_functions/containers_logs/tail_lines", None,
     r"less than|minimum"),
    ("tail-lines-string", "1.2.0", V2D_120, edit_tail_lines("50"),
     "/conditional_gathering_rules/1/gathering_functions/containers_logs/tail_lines", None,
     r"type|integer"),
    ("tail-lines-fraction", "1.2.0", V2D_120, edit_tail_lines(50.5),
     "/conditional_gathering_rules/1/gathering_functions/containers_logs/tail_lines", None,
     r"type|integer"),
    ("unknown-gathering-function", "1.2.0", V2D_120, edit_unknown_function, None,
     "/conditional_gathering_rules/0/gathering_functions", r"foo_bar"),
    ("bad-namespace-pattern", "1.1.3", V2D_113, edit_bad_namespace,
     "/conditional_gathering_rules/7/gathering_functions/logs_of_namespace/namespace", None,
     r"pattern|match"),
    ("missing-required", "1.2.0", V2D_120, edit_missing_alert_name, None,
     "/conditional_gathering_rules/1/gathering_functions/containers_logs", r"alert_name"),
    ("wrong-type-boolean", "1.1.3", V1, edit_previous_string,
     "/rules/1/gathering_functions/containers_logs/previous", None, r"type|boolean"),
    ("wrong-type-array", "1.2.0", V2D_120, edit_conditions_object,
     "/conditional_gathering_rules/0/conditions", None, r"type|array"),
    ("unknown-condition-type", "1.2.0", V2D_120, edit_unknown_condition, None,
     "/conditional_gathering_rules/0/conditions/0", None),
    ("no-gathering-functions", "1.1.3", V2D_113, edit_empty_functions, None,
     "/conditional_gathering_rules/0/gathering_functions", r"propert|least|minimum|fewer"),
    ("no-rules", "1.2.0", V1, edit_no_rules, "/rules", None, r"item|least|minimum|fewer|empty"),
    ("duplicate-rule", "1.1.3", V1, edit_duplicate_rule, "/rules", None, r"unique|duplicate|same"),
    ("version-not-string", "1.2.0", V1, edit_version_number, "/version", None, r"type|string"),
    ("alert-name-pattern", "1.1.3", V1, edit_alert_name_pattern, None, "/rules/0/conditions/0", None),
    ("container-log-namespace", "1.1.3", V2V_113, edit_container_log_namespace,
     "/container_logs/0/namespace", None, r"pattern|match"),
    ("container-log-missing-messages", "1.1.3", V2V_113, edit_container_log_no_messages, None,
     "/container_logs/0", r"messages"),
]


@pytest.mark.parametrize("version,rel,edit,pointer,under,pattern", [c[1:] for c in SCHEMA_CASES],
                         ids=[c[0] for c in SCHEMA_CASES])
def test_schema_violation_refused(tree, version, rel, edit, pointer, under, pattern):
    mutate_fn(version, rel, edit)(tree)
    res = check_both(tree)
    assert_problem(res, CHANNEL[version], version, rel, pointer=pointer, under=under, pattern=pattern)


def test_every_problem_in_a_file_is_reported(tree):
    rel = V2D_113
    doc = tree.load("1.1.3", rel)
    rules = doc["conditional_gathering_rules"]
    i = rule_index(rules, "logs_of_namespace")
    rules[i]["gathering_functions"]["logs_of_namespace"]["tail_lines"] = 5000
    rules[0]["gathering_functions"]["containers_logs"]["tail_lines"] = 0
    tree.dump("1.1.3", rel, doc)
    res = check_both(tree)
    assert_problem(res, "stable", "1.1.3", rel,
                   pointer="/conditional_gathering_rules/%d/gathering_functions/logs_of_namespace/tail_lines" % i,
                   pattern="5000 is greater than the maximum 4096")
    assert_problem(res, "stable", "1.1.3", rel,
                   pointer="/conditional_gathering_rules/0/gathering_functions/containers_logs/tail_lines")
    assert len(problem_lines(res, "stable", "1.1.3", rel)) >= 2, describe(res)


@pytest.mark.parametrize("version,rel", [("1.1.3", V1), ("1.2.0", V1), ("1.1.3", V2D_113),
                                         ("1.2.0", V2D_120), ("1.2.0", v2_validation("1.2.0"))])
def test_extra_top_level_key_refused(tree, version, rel):
    """The Insights Operator decodes with DisallowUnknownFields."""
    doc = tree.load(version, rel)
    doc["extra_field"] = True
    tree.dump(version, rel, doc)
    assert_problem(check_both(tree), CHANNEL[version], version, rel, pattern=r"extra_field")


def test_unknown_keys_inside_rules_accepted(tree):
    """Only the top level is closed; inside rules Go's decoding dropped unknown keys."""
    rel = V2V_113
    doc = tree.load("1.1.3", rel)
    doc["conditional_gathering_rules"][0]["note"] = {"b": [1, 2], "a": None}
    doc["container_logs"][0]["owner"] = "team"
    tree.dump("1.1.3", rel, doc)
    assert_accepted(check_both(tree))


# --- mapping -----------------------------------------------------------------

def test_mapping_empty_refused(tree):
    tree.set_mapping("1.2.0", [])
    assert_problem(check_both(tree), "canary", "1.2.0", MAPPING)


def test_mapping_not_array_refused(tree):
    tree.set_mapping("1.1.3", {"4.0.0": "config_default.json"})
    assert_problem(check_both(tree), "stable", "1.1.3", MAPPING)


def test_mapping_unsorted_refused(tree):
    m = tree.mapping("1.2.0")
    m[1], m[2] = m[2], m[1]  # 4.17.0 before 4.17.0-0
    tree.set_mapping("1.2.0", m)
    assert_problem(check_both(tree), "canary", "1.2.0", MAPPING,
                   pattern=r"order|sort|increas|preced|ascend|descend|greater|less|before|after|below|above")


def test_mapping_duplicate_version_refused(tree):
    tree.set_mapping("1.1.3", [["4.0.0", "config_default.json"], ["4.17.0", "config_validation.json"],
                               ["4.17.0", "config_default.json"]])
    assert_problem(check_both(tree), "stable", "1.1.3", MAPPING)


def test_mapping_duplicate_entry_refused(tree):
    m = tree.mapping("1.1.3")
    m.append(m[-1])
    tree.set_mapping("1.1.3", m)
    assert_problem(check_both(tree), "stable", "1.1.3", MAPPING)


def test_mapping_versions_equal_by_precedence_refused(tree):
    """Build metadata does not count in precedence: 4.17.0+a equals 4.17.0."""
    tree.set_mapping("1.1.3", [["4.0.0", "config_default.json"], ["4.17.0", "config_validation.json"],
                               ["4.17.0+build.1", "config_default.json"]])
    assert_problem(check_both(tree), "stable", "1.1.3", MAPPING)


@pytest.mark.parametrize("bad", ["4.17", "v4.17.0", "04.1.0", "4.17.0-01", "4.17.0-", "4.17.0+",
                                 "4.17.0.0", " 4.17.0", "4.17.0-rc..1", ""])
def test_mapping_invalid_semver_refused(tree, bad):
    m = tree.mapping("1.2.0")
    m[0][0] = bad
    tree.set_mapping("1.2.0", m)
    assert_problem(check_both(tree), "canary", "1.2.0", MAPPING, under="/0")


def test_mapping_invalid_semver_in_the_middle_refused(tree):
    m = tree.mapping("1.1.3")
    m[2][0] = "4.17"
    tree.set_mapping("1.1.3", m)
    assert_problem(check_both(tree), "stable", "1.1.3", MAPPING, under="/2")


@pytest.mark.parametrize("first", ["4.17.0-1", "4.17.0-0.1", "4.17.0", "4.18.0", "5.0.0"])
def test_mapping_first_entry_above_4_17_0_0_refused(tree, first):
    tree.set_mapping("1.2.0", [[first, "remote_configurations/config_default.json"]])
    assert_problem(check_both(tree), "canary", "1.2.0", MAPPING, pattern=r"4\.17\.0-0|first")


@pytest.mark.parametrize("first", ["4.17.0-0", "0.0.0", "4.16.99", "4.17.0-0+build"])
def test_mapping_first_entry_at_or_below_4_17_0_0_accepted(tree, first):
    tree.set_mapping("1.2.0", [[first, "remote_configurations/config_validation.json"],
                               ["4.18.0", "remote_configurations/config_default.json"]])
    assert_accepted(check_both(tree))


def test_mapping_entry_wrong_shape_refused(tree):
    m = tree.mapping("1.1.3")
    m[1] = ["4.17.0-0"]
    tree.set_mapping("1.1.3", m)
    assert_problem(check_both(tree), "stable", "1.1.3", MAPPING, under="/1")


def test_mapping_path_not_string_refused(tree):
    m = tree.mapping("1.1.3")
    m[1][1] = 7
    tree.set_mapping("1.1.3", m)
    assert_problem(check_both(tree), "stable", "1.1.3", MAPPING, under="/1")


PATH_CASES = [
    ("dotdot", "../v1/rules.json", r"\.\.|outside|escape|confin|parent|relative"),
    ("dotdot-inner", "remote_configurations/../../v1/rules.json", r"\.\.|outside|escape|confin|parent|relative"),
    ("dotdot-stays-inside", "remote_configurations/../remote_configurations/config_default.json",
     r"\.\.|outside|escape|confin|parent|relative"),
    ("absolute", "/etc/passwd", r"absolute|relative|outside|confin"),
    ("backslash", "remote_configurations\\config_default.json", r"backslash|\\\\"),
    ("backslash-dotdot", "..\\v1\\rules.json", r"backslash|\\\\|\.\."),
    ("percent-slash", "remote_configurations%2Fconfig_default.json", r"percent|%|escape"),
    ("percent-dotdot", "%2e%2e/v1/rules.json", r"percent|%|escape"),
    ("empty", "", None),
]


@pytest.mark.parametrize("path,pattern", [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES])
def test_mapping_path_not_confined_refused(tree, path, pattern):
    m = tree.mapping("1.2.0")
    m[1][1] = path
    tree.set_mapping("1.2.0", m)
    assert_problem(check_both(tree), "canary", "1.2.0", MAPPING, under="/1", pattern=pattern)


def test_mapping_absolute_path_to_a_valid_file_refused(tree):
    """Even when the absolute path names a valid configuration of the tree."""
    m = tree.mapping("1.1.3")
    m[1][1] = tree.path("1.1.3", "v2/config_validation.json")
    tree.set_mapping("1.1.3", m)
    assert_problem(check_both(tree), "stable", "1.1.3", MAPPING, under="/1",
                   pattern=r"absolute|relative|outside|confin")


def test_mapping_names_missing_file_refused(tree):
    m = tree.mapping("1.2.0")
    m[3][1] = "remote_configurations/missing.json"
    tree.set_mapping("1.2.0", m)
    assert_problem(check_both(tree), "canary", "1.2.0", "v2/remote_configurations/missing.json",
                   pattern=r"not found|no such|missing|couldn|exist|open|read|404")


@pytest.mark.parametrize("path", ["remote_configurations", "remote_configurations/"])
def test_mapping_names_a_directory_refused(tree, path):
    m = tree.mapping("1.2.0")
    m[1][1] = path
    tree.set_mapping("1.2.0", m)
    res = check_both(tree)
    assert_refused(res)
    assert [line for line in stderr_lines(res) if line.startswith("canary 1.2.0: v2/")], describe(res)


def test_mapped_file_invalid_refused_even_if_only_named_late(tree):
    """The last entry's file is fetched and validated like the first's."""
    doc = tree.load("1.2.0", V2D_120)
    doc["conditional_gathering_rules"][0]["gathering_functions"]["foo_bar"] = {}
    tree.write_text("1.2.0", "v2/remote_configurations/late.json", json.dumps(doc))
    m = tree.mapping("1.2.0")
    m[-1][1] = "remote_configurations/late.json"
    tree.set_mapping("1.2.0", m)
    assert_problem(check_both(tree), "canary", "1.2.0", "v2/remote_configurations/late.json",
                   pattern="foo_bar")


# --- container-log regexes ---------------------------------------------------

def set_container_log(tree, version, **fields):
    rel = v2_validation(version)
    doc = tree.load(version, rel)
    doc["container_logs"][0].update(fields)
    tree.dump(version, rel, doc)
    return rel


def test_lookahead_in_message_refused(tree):
    rel = set_container_log(tree, "1.1.3", messages=["error resolving resource", "error(?=x)"])
    assert_problem(check_both(tree), "stable", "1.1.3", rel, pointer="/container_logs/0/messages/1",
                   pattern=r"lookahead|\(\?=|re2|not supported|unsupported")


def test_backreference_in_pod_name_regex_refused(tree):
    rel = set_container_log(tree, "1.2.0", pod_name_regex="(kube)-\\1")
    assert_problem(check_both(tree), "canary", "1.2.0", rel, pointer="/container_logs/0/pod_name_regex",
                   pattern=r"backreference|back reference|\\\\1|re2|not supported|unsupported")


RE2_REJECTS = [
    ("lookbehind", "(?<=a)b"),
    ("negative-lookahead", "a(?!b)"),
    ("negative-lookbehind", "(?<!a)b"),
    ("atomic-group", "(?>ab)c"),
    ("possessive", "a++b"),
    ("possessive-star", "a*+b"),
    ("recursion", "a(?R)?b"),
    ("subroutine", "(a)(?1)"),
    ("conditional", "(a)?(?(1)b|c)"),
    ("named-backreference", "(?P<n>a)\\k<n>"),
    ("python-named-backreference", "(?P<n>a)(?P=n)"),
    ("numbered-backreference-g", "(a)\\g1"),
    ("match-start-reset", "a\\Kb"),
    ("backtracking-verb", "a(*FAIL)|b"),
    ("comment-group", "a(?#note)b"),
    ("extended-flag", "(?x)a b"),
    ("branch-reset", "(?|(a)|(b))"),
    ("single-code-unit", "a\\Cb"),
    ("end-before-newline", "a\\Z"),
    ("escape-e", "\\e"),
    ("nested-quantifier", "a**"),
    ("repeat-over-1000", "a{1001}"),
    ("lone-quote-end", "a\\E"),
]


@pytest.mark.parametrize("regex", [c[1] for c in RE2_REJECTS], ids=[c[0] for c in RE2_REJECTS])
def test_re2_rejected_construct_refused(tree, regex):
    """Go's regexp refuses each of these, though PCRE2 compiles most of them."""
    rel = set_container_log(tree, "1.1.3", messages=["error resolving resource", regex])
    assert_problem(check_both(tree), "stable", "1.1.3", rel, pointer="/container_logs/0/messages/1",
                   pattern=r"re2|go\b|not supported|unsupported")


def test_unbalanced_paren_refused(tree):
    rel = set_container_log(tree, "1.2.0", messages=["error (resolving resource"])
    assert_problem(check_both(tree), "canary", "1.2.0", rel, under="/container_logs/0/messages")


def test_message_set_join_with_unbalanced_close_paren_refused(tree):
    """A message with an unbalanced ")" fails alone and in the |-join."""
    rel = set_container_log(tree, "1.2.0", messages=["Internal error occurred", "resources)"])
    assert_problem(check_both(tree), "canary", "1.2.0", rel, under="/container_logs/0/messages")


def test_messages_failing_alone_but_joining_cleanly_refused(tree):
    """"(a" and "b)" join into "(a|b)", which compiles: each must be checked alone."""
    rel = set_container_log(tree, "1.1.3", messages=["(a", "b)"])
    res = check_both(tree)
    assert_problem(res, "stable", "1.1.3", rel, under="/container_logs/0/messages/0")
    assert_problem(res, "stable", "1.1.3", rel, under="/container_logs/0/messages/1")


def test_invalid_pod_name_regex_refused(tree):
    rel = set_container_log(tree, "1.1.3", pod_name_regex="kube-[a-z")
    assert_problem(check_both(tree), "stable", "1.1.3", rel, pointer="/container_logs/0/pod_name_regex")


def test_go_compatible_regexes_accepted(tree):
    """What Go's RE2 syntax accepts must not be refused as lookaround or the like."""
    set_container_log(tree, "1.1.3", pod_name_regex="(?i)kube-(?:controller|scheduler)-.*",
                      messages=["\\bfoo\\b", "(?P<n>x+)y", "[[:alpha:]]{2,3}", "a|b", "(?s:.)",
                                "\\d+\\.\\d+", "\\(literal\\)", "^$", "\\Qa.b\\E", "x*?y",
                                "(?U)a+", "(?i-s:a)", "\\pL\\p{Greek}\\PN", "[]a]", "[^]a]", "\\_",
                                "\\x{41}\\x41", "\\0", "\\z\\A", "a{2,}b{3}c{0,1000}"])
    assert_accepted(check_both(tree))


@pytest.mark.parametrize("regex", ["\\(?=x\\)", "[(?=]", "\\Q(?=\\E", "\\Q\\1\\E", "[(?<!]", "\\\\(?:x)"])
def test_lookalikes_of_rejected_constructs_accepted(tree, regex):
    """Escaped, quoted or bracketed, "(?=" and "\\1" are plain characters to Go too."""
    set_container_log(tree, "1.1.3", messages=[regex])
    assert_accepted(check_both(tree))


def test_octal_escape_accepted(tree):
    """Go's regexp reads \\101 as the octal escape for "A" (only a single digit
    \\1 to \\7 is a backreference); PCRE2 reads it the same way."""
    set_container_log(tree, "1.1.3", messages=["\\101", "x\\012y"])
    assert_accepted(check_both(tree))


# --- sizes and depth ---------------------------------------------------------

def pad_to(data, size):
    assert len(data) <= size
    return data + b" " * (size - len(data))


def test_file_just_over_cap_refused(tree):
    rel = V2D_120
    tree.write_bytes("1.2.0", rel, pad_to(tree.read_bytes("1.2.0", rel), 65537))
    res = check_both(tree, GCS_MAX_FILE_BYTES=65536)
    assert_problem(res, "canary", "1.2.0", rel, pattern=r"6553[67]")


def test_file_at_cap_accepted(tree):
    rel = V2D_120
    tree.write_bytes("1.2.0", rel, pad_to(tree.read_bytes("1.2.0", rel), 65536))
    assert_accepted(check_both(tree, GCS_MAX_FILE_BYTES=65536))


def test_file_over_default_cap_refused(tree):
    tree.write_bytes("1.1.3", V1, pad_to(tree.read_bytes("1.1.3", V1), 8 * 1024 * 1024 + 1))
    res = check_both(tree)
    assert_problem(res, "stable", "1.1.3", V1, pattern=r"8388608|8388609|8 ?MiB|too large|larger|size")


DEEP = 100000
DEEP_CASES = [
    ("array", b"[" * DEEP + b"]" * DEEP),
    ("object", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    ("unclosed", b"[" * DEEP),
    ("inside-valid-top", b'{"version": "1.1.3", "rules": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
]


@pytest.mark.parametrize("data", [c[1] for c in DEEP_CASES], ids=[c[0] for c in DEEP_CASES])
def test_deep_nesting_refused_without_crash(tree, data):
    tree.write_bytes("1.1.3", V1, data)
    res = check_both(tree)
    assert res.returncode == 1, "killed by signal %d\n%s" % (-res.returncode, describe(res))
    assert_problem(res, "stable", "1.1.3", V1)


# --- missing pieces ----------------------------------------------------------

def test_missing_v1_rules_refused(tree):
    tree.remove("1.1.3", V1)
    assert_problem(check_both(tree), "stable", "1.1.3", V1,
                   pattern=r"not found|no such|missing|couldn|exist|open|read")


def test_missing_mapping_refused(tree):
    tree.remove("1.2.0", MAPPING)
    assert_problem(check_both(tree), "canary", "1.2.0", MAPPING,
                   pattern=r"not found|no such|missing|couldn|exist|open|read")


@pytest.mark.parametrize("channel", ["stable", "canary"])
def test_missing_version_refused(tree, channel):
    env = {"stable": "9.9.9", "canary": "1.2.0"} if channel == "stable" else {"stable": "1.1.3", "canary": "9.9.9"}
    res = tree.check(**env)
    assert_refused(res)
    lines = [line for line in stderr_lines(res) if ("%s 9.9.9" % channel) in line]
    assert lines, describe(res)


# --- channels ----------------------------------------------------------------

def test_canary_broken_stable_fine(tree):
    mutate_fn("1.2.0", V1, edit_no_rules)(tree)
    res = check_both(tree)
    assert_problem(res, "canary", "1.2.0", V1, pointer="/rules")
    assert not [line for line in stderr_lines(res) if "stable 1.1.3:" in line], describe(res)


def test_stable_broken_canary_fine(tree):
    mutate_fn("1.1.3", V1, edit_no_rules)(tree)
    res = check_both(tree)
    assert_problem(res, "stable", "1.1.3", V1, pointer="/rules")
    assert not [line for line in stderr_lines(res) if "canary 1.2.0:" in line], describe(res)


def test_stable_equal_to_canary_validated_once(tree):
    """Equal versions are fetched (and so reported) once."""
    mutate_fn("1.1.3", V1, edit_no_rules)(tree)
    res = tree.check(stable="1.1.3", canary="1.1.3")
    assert_refused(res)
    lines = [line for line in plain_lines(res) if "1.1.3: v1/rules.json: /rules" in line]
    assert len(lines) == 1, describe(res)


def test_problem_in_file_named_by_several_entries_reported_once(tree):
    """config_default.json is named by three mapping entries: one file, one problem, one line."""
    rel = V2D_120
    doc = tree.load("1.2.0", rel)
    i = rule_index(doc["conditional_gathering_rules"], "logs_of_namespace")
    doc["conditional_gathering_rules"][i]["gathering_functions"]["logs_of_namespace"]["tail_lines"] = 5000
    tree.dump("1.2.0", rel, doc)
    assert sum(1 for _, p in tree.mapping("1.2.0") if "v2/" + p == rel) == 3
    res = check_both(tree)
    assert_problem(res, "canary", "1.2.0", rel, pattern="5000 is greater than the maximum 4096")
    lines = [line for line in plain_lines(res) if line.startswith("canary 1.2.0: " + rel + ": ")]
    assert len(lines) == 1, describe(res)


# --- schemas ----------------------------------------------------------------

def schema_copy(tmp_path):
    d = tmp_path / "schemas"
    shutil.copytree(os.path.join(RULES, "schemas"), d, copy_function=shutil.copyfile)
    os.chmod(d, 0o755)
    for name in os.listdir(d):
        os.chmod(d / name, 0o644)
    return d


def test_schema_with_unimplemented_keyword_refused(tree, tmp_path):
    d = schema_copy(tmp_path)
    p = d / "container_log.schema.json"
    schema = json.loads(p.read_text())
    schema["properties"]["pod_name_regex"]["format"] = "regex"
    p.write_text(json.dumps(schema, indent=2))
    res = check_both(tree, GCS_SCHEMA_DIR=str(d))
    assert res.returncode == 1, describe(res)
    assert "listening" not in res.stderr, describe(res)
    assert [line for line in stderr_lines(res) if "format" in line and "container_log" in line], describe(res)


def test_schema_with_upstream_typo_refused(tree, tmp_path):
    """The upstream typo "descriptions" is an unknown keyword, not a comment."""
    d = schema_copy(tmp_path)
    p = d / "cluster_version_mapping.schema.json"
    schema = json.loads(p.read_text())
    schema["items"]["descriptions"] = schema["items"].pop("description")
    p.write_text(json.dumps(schema, indent=2))
    res = check_both(tree, GCS_SCHEMA_DIR=str(d))
    assert res.returncode == 1, describe(res)
    assert [line for line in stderr_lines(res) if "descriptions" in line], describe(res)


def test_missing_schema_dir_refused(tree, tmp_path):
    res = check_both(tree, GCS_SCHEMA_DIR=str(tmp_path / "nowhere"))
    assert res.returncode == 1, describe(res)
    assert "nowhere" in res.stderr, describe(res)


# --- valid trees and the summary ---------------------------------------------

def assert_summary(res, tree, versions):
    """One line per version and per served file: every version and every mapped file named."""
    lines = res.stdout.splitlines()
    for v in versions:
        assert [line for line in lines if v in line], "version %s not in summary\n%s" % (v, describe(res))
        for rel in tree.mapped_files(v):
            assert [line for line in lines if rel[len("v2/"):] in line], \
                "%s of %s not in summary\n%s" % (rel, v, describe(res))
    expected = sum(1 + len(tree.mapped_files(v)) for v in set(versions))
    assert len(lines) >= expected, "fewer summary lines than versions and files\n%s" % describe(res)


@pytest.mark.parametrize("stable,canary", [("1.1.3", None), ("1.2.0", None), ("1.1.3", "1.2.0"),
                                           ("1.2.0", "1.1.3"), ("1.1.3", "1.1.3")])
def test_valid_tree_accepted(tree, stable, canary):
    res = tree.check(stable=stable, canary=canary)
    assert_accepted(res)
    assert_summary(res, tree, [stable] + ([canary] if canary else []))


@pytest.mark.parametrize("canary", [None, "", "none"])
def test_no_canary_accepted(tree, canary):
    res = tree.check(stable="1.2.0", canary=canary)
    assert_accepted(res)
    assert_summary(res, tree, ["1.2.0"])
    assert "1.1.3" not in res.stdout, describe(res)


def test_no_canary_does_not_fetch_anything_else(tree):
    """With no canary, a broken other version in the tree is not looked at."""
    mutate_fn("1.1.3", V1, edit_no_rules)(tree)
    assert_accepted(tree.check(stable="1.2.0", canary="none"))


def test_file_url_accepted(tree):
    res = tree.check(stable="1.1.3", canary="1.2.0", scheme="file")
    assert_accepted(res)
    assert_summary(res, tree, ["1.1.3", "1.2.0"])


def test_defaults_from_repository_root_accepted():
    """GCS_CONDITIONS_URL and GCS_SCHEMA_DIR default to rules/ under the working directory."""
    env = base_env(STABLE_VERSION="1.1.3", CANARY_VERSION="1.2.0", GCS_CONDITIONS_URL=None,
                   GCS_SCHEMA_DIR=None)
    res = run_gcs(["--check"], env, cwd=ROOT)
    assert_accepted(res)


def test_subdirectories_in_mapping_paths_accepted(tree):
    for name in ("config_default.json", "config_validation.json"):
        tree.write_bytes("1.1.3", "v2/a/b/c/" + name, tree.read_bytes("1.1.3", "v2/" + name))
        tree.remove("1.1.3", "v2/" + name)
    m = tree.mapping("1.1.3")
    for entry in m:
        entry[1] = "a/b/c/" + entry[1]
    tree.set_mapping("1.1.3", m)
    res = check_both(tree)
    assert_accepted(res)
    assert_summary(res, tree, ["1.1.3", "1.2.0"])


def test_single_entry_mapping_accepted(tree):
    tree.set_mapping("1.2.0", [["4.0.0", "remote_configurations/config_default.json"]])
    res = check_both(tree)
    assert_accepted(res)


# --- usage -------------------------------------------------------------------

def test_unknown_flag_is_usage_error():
    res = run_gcs(["--chek"], base_env())
    assert res.returncode == 2, describe(res)
    assert "usage" in (res.stderr + res.stdout).lower(), describe(res)
    assert "listening" not in res.stderr, describe(res)


def test_positional_argument_is_usage_error():
    res = run_gcs(["--check", "extra"], base_env())
    assert res.returncode == 2, describe(res)


def test_missing_stable_version_is_usage_error():
    res = run_gcs(["--check"], base_env(STABLE_VERSION=None))
    assert res.returncode == 2, describe(res)
    assert "STABLE_VERSION" in res.stderr, describe(res)


def test_missing_stable_version_without_check_is_usage_error():
    res = run_gcs([], base_env(STABLE_VERSION=None, GCS_LISTEN="127.0.0.1:0"), timeout=30)
    assert res.returncode == 2, describe(res)
    assert "listening" not in res.stderr, describe(res)


def test_version_flag():
    res = run_gcs(["--version"], base_env(STABLE_VERSION=None))
    assert res.returncode == 0, describe(res)
    assert res.stdout.strip(), describe(res)


def test_help_flag():
    res = run_gcs(["--help"], base_env(STABLE_VERSION=None))
    assert res.returncode == 0, describe(res)
    out = res.stdout
    for word in ("--check", "STABLE_VERSION", "CANARY_VERSION", "GCS_CONDITIONS_URL"):
        assert word in out, "%s not in --help\n%s" % (word, describe(res))


@pytest.mark.parametrize("version", ["../1.1.3", "1.1.3/../1.2.0", "1.1.3?x", "1.1.3 "])
def test_version_that_is_not_a_version_refused(tree, version):
    """A version ends up in the download URL: it cannot carry a path or a query."""
    res = tree.check(stable=version, canary=None)
    assert res.returncode == 2, describe(res)
    assert "STABLE_VERSION" in res.stderr, describe(res)


def test_bad_setting_refused_before_fetching(tree):
    res = tree.check(stable="1.1.3", canary="1.2.0", GCS_FETCH_TRIES="many")
    assert res.returncode == 2, describe(res)
    assert "GCS_FETCH_TRIES" in res.stderr, describe(res)

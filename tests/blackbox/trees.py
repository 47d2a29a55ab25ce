"""Conditions trees in temporary directories, the one builder the black-box
tests use: copies of rules/<version> (every file writable, to be broken by the
--check tests) and trees made up from documents; then helpers to read what
build/gcs said about a tree.

A tree has the layout of the download server:

    <root>/<version>/v1/rules.json
    <root>/<version>/v2/cluster_version_mapping.json
    <root>/<version>/v2/<path named by the mapping>

gcs is pointed at it with GCS_CONDITIONS_URL=<root>/{version} (Tree.env)."""
import json
import os
import re
import shutil

from conftest import RULES, base_env, run_gcs

VERSIONS = ("1.1.3", "1.2.0")


class Tree:
    """Versions copied under root/<version>/; every file writable."""

    def __init__(self, root):
        self.root = str(root)

    def dir(self, version):
        return os.path.join(self.root, version)

    def path(self, version, rel):
        return os.path.join(self.root, version, rel)

    def copy(self, version, as_version=None):
        """Copies rules/<version> to <root>/<as_version or version>, every
        file writable; returns its directory."""
        target = self.dir(as_version or version)
        # copyfile, not copy: the repository's files may be read-only
        shutil.copytree(os.path.join(RULES, version), target, copy_function=shutil.copyfile)
        for d, _, files in os.walk(target):
            os.chmod(d, 0o755)
            for name in files:
                os.chmod(os.path.join(d, name), 0o644)
        return target

    def write(self, version, v1=None, mapping=None, files=None, v1_version=None):
        """Writes a made-up version tree and returns its directory.

        v1: the rules.json document (default: two rules, version v1_version
        or version). mapping: [[ocp version, path], ...] (default: one entry
        at 4.0.0). files: {path: remote configuration} (default: one distinct
        configuration per mapped path)."""
        if v1 is None:
            v1 = {"version": v1_version or version,
                  "rules": [alert_rule("FixtureAlertOne"), alert_rule("FixtureAlertTwo")]}
        if mapping is None:
            mapping = [["4.0.0", "config.json"]]
        if files is None:
            files = {path: distinct_config(version, i)
                     for i, path in enumerate(dict.fromkeys(p for _, p in mapping))}
        self.dump(version, "v1/rules.json", v1)
        self.set_mapping(version, mapping)
        for path, doc in files.items():
            self.dump(version, "v2/" + path, doc)
        return self.dir(version)

    def read_bytes(self, version, rel):
        with open(self.path(version, rel), "rb") as f:
            return f.read()

    def write_bytes(self, version, rel, data):
        full = self.path(version, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)

    def write_text(self, version, rel, text):
        self.write_bytes(version, rel, text.encode("utf-8"))

    def load(self, version, rel):
        return json.loads(self.read_bytes(version, rel))

    def dump(self, version, rel, value):
        # ensure_ascii=False keeps raw UTF-8, as the real files have it
        self.write_text(version, rel, json.dumps(value, indent=2, ensure_ascii=False))

    def remove(self, version, rel):
        os.remove(self.path(version, rel))

    def mapping(self, version):
        return self.load(version, "v2/cluster_version_mapping.json")

    def set_mapping(self, version, entries):
        self.dump(version, "v2/cluster_version_mapping.json", entries)

    def mapped_files(self, version):
        """Distinct v2 paths ("v2/<relative path>") the mapping names, in order."""
        seen = []
        for _, rel in self.mapping(version):
            if "v2/" + rel not in seen:
                seen.append("v2/" + rel)
        return seen

    def url_template(self, scheme="path"):
        base = os.path.join(self.root, "{version}")
        return "file://" + base if scheme == "file" else base

    def env(self, stable="1.1.3", canary=None, scheme="path", **overrides):
        """Environment running gcs on this tree; canary None = unset."""
        overrides.setdefault("GCS_CONDITIONS_URL", self.url_template(scheme))
        return base_env(STABLE_VERSION=stable, CANARY_VERSION=canary, **overrides)

    def check(self, stable="1.1.3", canary=None, scheme="path", **overrides):
        return run_gcs(["--check"], self.env(stable, canary, scheme, **overrides))


def copy_tree(dest, versions=VERSIONS):
    """Copies rules/<version> for each version into dest; returns the Tree."""
    tree = Tree(dest)
    for v in versions:
        tree.copy(v)
    return tree


# --- documents for made-up trees ------------------------------------------

def alert_rule(alert, **functions):
    """A valid gathering rule firing on alert; functions default to a pod definition."""
    if not functions:
        functions = {"pod_definition": {"alert_name": alert}}
    return {"conditions": [{"type": "alert_is_firing", "alert": {"name": alert}}],
            "gathering_functions": functions}


def container_log(namespace, pod_name_regex, messages, previous=None, **extra):
    log = {"namespace": namespace, "pod_name_regex": pod_name_regex, "messages": list(messages)}
    if previous is not None:
        log["previous"] = previous
    log.update(extra)
    return log


def remote_config(version, rules, logs=()):
    return {"conditional_gathering_rules": list(rules), "container_logs": list(logs),
            "version": version}


def distinct_config(version, index):
    """A valid remote configuration whose content differs for every index."""
    alert = "FixtureAlert%d" % index
    return remote_config(
        "%s-file%d" % (version, index),
        [alert_rule(alert, containers_logs={"alert_name": alert, "tail_lines": 10 + index})],
        [container_log("openshift-fixture-%d" % index, "pod-%d-.*" % index,
                       ["message %d" % index])])


def rule_index(rules, function):
    """Index of the first rule using the gathering function."""
    for i, rule in enumerate(rules):
        if function in rule["gathering_functions"]:
            return i
    raise LookupError("no rule uses " + function)


def v2_default(version):
    """The v2 file the first mapping entry names, as "v2/<path>"."""
    return {"1.1.3": "v2/config_default.json",
            "1.2.0": "v2/remote_configurations/config_default.json"}[version]


def v2_validation(version):
    return {"1.1.3": "v2/config_validation.json",
            "1.2.0": "v2/remote_configurations/config_validation.json"}[version]


# --- reading what gcs said -------------------------------------------------

def stderr_lines(res):
    """Lines of stderr; a JSON log record also contributes its string values
    joined, so a problem logged as a record is matched like a plain line."""
    out = []
    for line in res.stderr.splitlines():
        out.append(line)
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(" ".join(str(v) for v in rec.values() if isinstance(v, (str, int))))
    return out


def plain_lines(res):
    """stderr lines that are not JSON log records: the problem lines themselves."""
    out = []
    for line in res.stderr.splitlines():
        try:
            if isinstance(json.loads(line), dict):
                continue
        except ValueError:
            pass
        out.append(line)
    return out


def problem_lines(res, channel, version, file):
    """Lines naming "<channel> <version>: <file>"."""
    head = "%s %s: %s" % (channel, version, file)
    return [line for line in stderr_lines(res) if head in line]


def describe(res):
    return "exit %s\n--- stdout\n%s\n--- stderr\n%s" % (res.returncode, res.stdout, res.stderr)


def assert_refused(res):
    """Exit 1 (not a signal, not a usage error), and never got to listening."""
    assert res.returncode == 1, describe(res)
    both = res.stdout + res.stderr
    assert "listening" not in both, describe(res)
    assert "Sanitizer" not in both, describe(res)


def assert_problem(res, channel, version, file, pointer=None, pattern=None, under=None):
    """gcs refused the tree with a line naming channel, version, file, the
    JSON pointer when given (or a pointer at or below `under`), and matching
    pattern (a regex, any case). Returns the matching lines."""
    assert_refused(res)
    lines = problem_lines(res, channel, version, file)
    assert lines, "no line names %s %s: %s\n%s" % (channel, version, file, describe(res))
    if pointer is not None:
        lines = [line for line in lines if (": %s: " % pointer) in line or (": %s " % pointer) in line
                 or line.endswith(": " + pointer)]
        assert lines, "no line names pointer %s\n%s" % (pointer, describe(res))
    if under is not None:
        rx = re.compile(": " + re.escape(under) + "[/:]")
        lines = [line for line in lines if rx.search(line)]
        assert lines, "no line names a pointer under %s\n%s" % (under, describe(res))
    if pattern is not None:
        rx = re.compile(pattern, re.IGNORECASE)
        lines = [line for line in lines if rx.search(line)]
        assert lines, "no line matches /%s/\n%s" % (pattern, describe(res))
    return lines


def assert_accepted(res):
    assert res.returncode == 0, describe(res)
    assert "listening" not in res.stdout + res.stderr, describe(res)

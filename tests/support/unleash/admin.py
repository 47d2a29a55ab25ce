"""Drives a test Unleash server's admin API (started by tests/support/unleash.sh).

Used by the end-to-end tests as a module, and by hand:

    python3 tests/support/unleash/admin.py rollout TOGGLE PERCENT   # create if needed, enable
    python3 tests/support/unleash/admin.py off TOGGLE
    python3 tests/support/unleash/admin.py client                   # what the client API serves

Everything is in the project "default" and the environment "development".
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_STATE = os.path.join(HERE, "..", "..", ".cache", "unleash-state.env")


def read_state(path=None):
    """The KEY=value lines unleash.sh start wrote."""
    state = {}
    with open(path or os.environ.get("UNLEASH_STATE", DEFAULT_STATE)) as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep:
                state[key] = value
    return state


class Admin:
    def __init__(self, state, project="default", environment="development"):
        self.url = state["UNLEASH_URL"]
        self.admin_token = state["UNLEASH_ADMIN_TOKEN"]
        self.backend_token = state["UNLEASH_BACKEND_TOKEN"]
        self.project = project
        self.environment = environment

    def _call(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", token or self.admin_token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: HTTP {e.code}: {e.read().decode()[:300]}") from e
        return json.loads(text) if text.strip() else None

    def _feature(self, name):
        return f"/admin/projects/{self.project}/features/{name}"

    def _env(self, name):
        return f"{self._feature(name)}/environments/{self.environment}"

    def feature(self, name):
        """The feature, or None when it does not exist."""
        try:
            return self._call("GET", self._feature(name))
        except RuntimeError as e:
            if "HTTP 404" in str(e):
                return None
            raise

    def create_feature(self, name):
        return self._call("POST", f"/admin/projects/{self.project}/features",
                          {"name": name, "type": "release"})

    def strategies(self, name):
        return self._call("GET", f"{self._env(name)}/strategies")

    def add_strategy(self, name, strategy):
        """Returns the new strategy's id."""
        return self._call("POST", f"{self._env(name)}/strategies", strategy)["id"]

    def update_strategy(self, name, strategy_id, strategy):
        return self._call("PUT", f"{self._env(name)}/strategies/{strategy_id}", strategy)

    def delete_strategy(self, name, strategy_id):
        return self._call("DELETE", f"{self._env(name)}/strategies/{strategy_id}")

    def enable(self, name):
        self._call("POST", f"{self._env(name)}/on")

    def disable(self, name):
        self._call("POST", f"{self._env(name)}/off")

    @staticmethod
    def flexible_rollout(name, percent, constraints=()):
        return {
            "name": "flexibleRollout",
            "constraints": list(constraints),
            "parameters": {"rollout": str(percent), "stickiness": "default", "groupId": name},
        }

    def set_rollout(self, name, percent, constraints=()):
        """Makes the toggle exist, carry exactly one flexibleRollout strategy at
        percent (with constraints), and be enabled. Returns the strategy id."""
        if self.feature(name) is None:
            self.create_feature(name)
        existing = [s for s in self.strategies(name) if s["name"] == "flexibleRollout"]
        for extra in self.strategies(name):
            if extra["name"] != "flexibleRollout":
                self.delete_strategy(name, extra["id"])
        if existing:
            sid = existing[0]["id"]
            self.update_strategy(name, sid, self.flexible_rollout(name, percent, constraints))
            for extra in existing[1:]:
                self.delete_strategy(name, extra["id"])
        else:
            sid = self.add_strategy(name, self.flexible_rollout(name, percent, constraints))
        self.enable(name)
        return sid

    def add_dependency(self, child, parent, enabled=True):
        """Makes child depend on parent (Unleash's dependent features)."""
        self._call("POST", f"{self._feature(child)}/dependencies",
                   {"feature": parent, "enabled": enabled})

    def create_segment(self, name, constraints):
        """Returns the new segment's id."""
        return self._call("POST", "/admin/segments",
                          {"name": name, "constraints": constraints})["id"]

    def client_features(self):
        """What SDKs receive: GET /client/features with the backend token."""
        return self._call("GET", "/client/features", token=self.backend_token)

    def served(self, name):
        """The toggle as the client API serves it, or None."""
        for t in self.client_features()["features"]:
            if t["name"] == name:
                return t
        return None

    def wait_served(self, name, enabled, rollout=None, constraints=None, timeout=30):
        """Waits until the client API serves the change (it lags about a
        second): enabled, and when given one flexibleRollout at rollout with
        as many constraints. Returns the toggle as served."""
        deadline = time.time() + timeout
        while True:
            t = self.served(name)
            if t is not None and t["enabled"] == enabled and (
                    rollout is None or [s["parameters"].get("rollout") for s in t["strategies"]]
                    == [str(rollout)]) and (
                    constraints is None or len(t["strategies"][0]["constraints"]) == len(constraints)):
                return t
            assert time.time() < deadline, f"Unleash never served {name} enabled={enabled} {rollout}"
            time.sleep(0.2)

    def client_features_text(self, spec=None):
        """The raw body of GET /client/features. With spec (the
        Unleash-Client-Spec an SDK sends) segments come apart from the
        toggles; without it the server inlines their constraints."""
        req = urllib.request.Request(self.url + "/client/features")
        req.add_header("Authorization", self.backend_token)
        if spec:
            req.add_header("Unleash-Client-Spec", spec)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode()

    def application(self, app_name):
        """The admin view of an application (its instances), or None."""
        try:
            return self._call("GET", f"/admin/metrics/applications/{app_name}")
        except RuntimeError as e:
            if "HTTP 404" in str(e):
                return None
            raise

    def toggle_usage(self, name, app_name):
        """(yes, no) the application reported for the toggle in the last hour,
        as Unleash stored them (it writes received metrics every 5 s)."""
        raw = self._call("GET", f"/admin/client-metrics/features/{name}/raw?hoursBack=1")
        rows = [r for r in raw.get("data", []) if r.get("appName") == app_name]
        return sum(r["yes"] for r in rows), sum(r["no"] for r in rows)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    admin = Admin(read_state())
    cmd = argv[1]
    if cmd == "rollout" and len(argv) == 4:
        print(admin.set_rollout(argv[2], int(argv[3])))
    elif cmd == "off" and len(argv) == 3:
        admin.disable(argv[2])
    elif cmd == "on" and len(argv) == 3:
        admin.enable(argv[2])
    elif cmd == "client" and len(argv) == 2:
        print(json.dumps(admin.client_features(), indent=2))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

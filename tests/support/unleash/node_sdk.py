"""The official Node SDK (unleash-client) deciding a toggle offline through
evaluate.js, for the tests that compare gcs's decisions with it ID by ID.
The pinned SDK is installed under tests/.cache/unleash by
tests/support/unleash.sh install."""
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
EVALUATE_JS = os.path.join(HERE, "evaluate.js")
NODE_MODULES = os.path.normpath(os.path.join(HERE, "..", "..", ".cache", "unleash", "node_modules"))


def decisions(features, toggle, user_ids, context=None, segments=(), hostname=None):
    """isEnabled(toggle) for each user ID, in order, given the client API's
    features (the toggle, its parents) and segments; with hostname, the SDK
    runs with HOSTNAME set to it (what applicationHostname compares)."""
    req = {"features": list(features), "segments": list(segments), "toggle": toggle,
           "context": context or {}, "userIds": list(user_ids)}
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    if hostname is not None:
        env["HOSTNAME"] = hostname
    out = subprocess.run(["node", EVALUATE_JS], input=json.dumps(req), capture_output=True,
                         text=True, check=True, timeout=120, env=env)
    return json.loads(out.stdout)

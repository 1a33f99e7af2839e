#!/usr/bin/env python3
"""Tests for clients/python/referee_client.py (stdlib unittest).

Run from the repository root:  python3 clients/python/tests/test_referee_client.py
The daemon tests use $REFEREE_BIN, else <repo>/.build/debug/referee.
"""

import doctest
import json
import os
import shutil
import socketserver
import sys
import tempfile
import threading
import types
import unittest
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
CLIENT = HERE.parent
REPO = CLIENT.parent.parent
sys.path.insert(0, str(CLIENT))

import referee_client  # noqa: E402
from referee_client import (  # noqa: E402
    RefereeClient, RefereeConnectionError, RefereeError, SUMMARY_COLUMNS,
    summary_frame, summary_rows,
)

BINARY = os.environ.get("REFEREE_BIN") or str(REPO / ".build" / "debug" / "referee")
PROTOCOLS = str(REPO / "Protocols")
EXAMPLE = REPO / "Protocols" / "examples" / "checkout-green-button.json"
BINOMIAL = {"metric": "binomial", "control": {"n": 83, "successes": 5},
            "treatment": {"n": 99, "successes": 12}}


def require_binary():
    if not (os.path.isfile(BINARY) and os.access(BINARY, os.X_OK)):
        raise AssertionError(
            "referee binary not found at %s: set $REFEREE_BIN or build the package" % BINARY)


class DaemonTestCase(unittest.TestCase):
    """Each test gets its own temporary store and a fresh daemon."""

    def setUp(self):
        require_binary()
        self.tmp = tempfile.mkdtemp(prefix="referee-client-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.store = os.path.join(self.tmp, "store.sqlite")
        self.client = RefereeClient(binary=BINARY, store=self.store, protocols=PROTOCOLS,
                                    actor="pm.alice", timeout=30)
        self.addCleanup(self.client.close)


class DaemonTests(DaemonTestCase):

    def test_start_and_stop(self):
        self.assertIsNone(self.client.returncode)
        self.client.close()
        self.assertEqual(self.client.returncode, 0)
        self.client.close()  # idempotent
        with self.assertRaises(RefereeConnectionError):
            self.client.call("server.info")

    def test_context_manager(self):
        with RefereeClient(binary=BINARY, store=self.store, protocols=PROTOCOLS) as c:
            self.assertEqual(c.call("server.info")["name"], "referee")
        self.assertEqual(c.returncode, 0)

    def test_server_info(self):
        info = self.client.call("server.info")
        self.assertEqual(info["name"], "referee")
        self.assertEqual(info["principal"], "pm.alice")
        self.assertEqual(os.path.realpath(info["store"]), os.path.realpath(self.store))
        self.assertIn("stats.compare", info["methods"])
        self.assertIn("standard", [p["name"] for p in info["protocols"]])

    def test_every_read_only_method_from_rpc_discover(self):
        with open(os.path.join(REPO, "Protocols", "examples", "checkout-green-button.json")) as f:
            doc = json.load(f)
        self.client.checked_call("experiment.register", experiment=dict(doc, dimensions=["country"]))
        key = doc["key"]
        self.client.checked_call("groups.put", name="staff", values=["u1", "u2"], reason="the test's saved group")
        binomial = {"metric": "binomial", "control": {"n": 83, "successes": 5}, "treatment": {"n": 99, "successes": 12}}
        examples = {
            "server.info": {}, "rpc.discover": {}, "experiment.get": {"key": key}, "experiment.list": {"limit": 10},
            "experiment.check": {"experiment": dict(doc, key="other")}, "conflicts.scan": {},
            "assign": {"unit": "u1", "layer": "checkout"}, "assign.bulk": {"units": ["u1", "u2"], "layer": "checkout"},
            "stats.compare": binomial, "stats.compare_batch": {"comparisons": [binomial]},
            "stats.chance_to_beat": {"control": {"n": 100, "successes": 10}, "treatment": {"n": 100, "successes": 12}},
            "stats.srm": {"observed": [10, 12], "weights": [1, 1]},
            "stats.sample_size": {"metric": "binomial", "baseline": {"rate": 0.5}, "mde": {"absolute": 0.25}, "power": 0.9},
            "stats.power": {"metric": "binomial", "baseline": {"rate": 0.5}, "mde": {"absolute": 0.25}, "n_control": 50},
            "stats.mde": {"metric": "binomial", "baseline": {"rate": 0.5}, "n_control": 500, "power": 0.8},
            "stats.adjust": {"p_values": [0.01, 0.04], "method": "holm"},
            "stats.mann_whitney": {"control": [1, 2, 3], "treatment": [4, 5, 6]},
            "stats.compare_quantiles": {"control": list(range(100)), "treatment": list(range(5, 105)), "q": 0.5},
            "results.summary": {"key": key}, "results.timeseries": {"key": key}, "results.export": {"key": key, "what": "summary"},
            "results.segments": {"key": key, "dimension": "country"},
            "access.list": {}, "audit.log": {"limit": 5},
            "audit.head": {}, "audit.verify": {}, "store.integrity": {}, "protocol.list": {}, "protocol.get": {"name": "standard"},
            "targeting.eval": {"targeting": {"id": {"$inGroup": "staff"}, "tags": {"$elemMatch": {"$eq": "beta"}}},
                               "attributes": {"id": "u1", "tags": ["beta"]}},
            "groups.get": {"name": "staff"}, "groups.list": {},
            "holdout.get": {"key": "growth-holdout"}, "holdout.list": {},
            "results.interactions": {"key": key},
            "results.sql": {"key": key, "dialect": "duckdb", "as_of": "2026-12-25"}, "results.aggregates": {"key": key},
        }
        self.client.checked_call("holdout.register", holdout={
            "key": "growth-holdout", "protocol": "standard", "unit": "user_id", "share": 0.05,
            "scope": {"layers": "all"}, "schedule": {"start": "2026-12-01T00:00:00Z", "end": "2027-06-01T00:00:00Z"}})
        methods = self.client.methods()
        writes = {"experiment.register", "experiment.update", "experiment.amend", "experiment.transition", "results.record",
                  "results.ingest", "access.grant", "access.revoke", "session.act_for", "groups.put", "shutdown",
                  "holdout.register", "holdout.update", "holdout.transition", "results.pull"}
        self.assertEqual(set(methods) - writes, set(examples), "every read-only method has an example here")
        for method, params in examples.items():
            bound = getattr(self.client, method.replace(".", "_"))
            self.assertIsNotNone(bound(**params), method)
        # Mistakes are caught before anything is sent, naming them.
        with self.assertRaisesRegex(ValueError, "unknown parameter kee"):
            self.client.experiment_get(kee=key)
        with self.assertRaisesRegex(ValueError, "missing required parameter key"):
            self.client.experiment_get()
        with self.assertRaisesRegex(ValueError, "parameter limit must be integer"):
            self.client.experiment_list(limit="ten")
        with self.assertRaisesRegex(ValueError, "unknown method"):
            self.client.check_params("experiment.nope", {})
        with self.assertRaises(AttributeError):
            self.client.experiment_nope

    def test_register_then_get(self):
        with open(EXAMPLE) as f:
            doc = json.load(f)
        rec = self.client.call("experiment.register", experiment=doc)
        self.assertEqual((rec["key"], rec["state"], rec["version"]),
                         ("checkout-green-button", "draft", 1))
        got = self.client.call("experiment.get", key="checkout-green-button")
        self.assertEqual(got["owner"], "pm.alice")
        self.assertEqual(got["document"]["hypothesis"], doc["hypothesis"])
        listed = self.client.call_params("experiment.list", {"owner": "pm.alice"})
        self.assertEqual(listed["count"], 1)

    def test_not_found_error(self):
        with self.assertRaises(RefereeError) as cm:
            self.client.call("experiment.get", key="no-such-experiment")
        e = cm.exception
        self.assertEqual(e.code, 1003)
        self.assertEqual(e.data["reason"], "not_found")
        self.assertEqual(e.reason, "not_found")
        self.assertIn("no-such-experiment", e.message)
        self.assertIn("1003", str(e))
        self.assertIn("not_found", str(e))
        self.assertIn(e.message, str(e))
        # the daemon is still usable after an error
        self.assertEqual(self.client.call("server.info")["name"], "referee")

    def test_unknown_method_and_bad_params(self):
        with self.assertRaises(RefereeError) as cm:
            self.client.call("no.such.method")
        self.assertEqual(cm.exception.code, -32601)
        with self.assertRaises(RefereeError) as cm:
            self.client.call_params("experiment.get", {"key": 42})
        self.assertEqual(cm.exception.code, -32602)

    def test_stats_compare_binomial(self):
        r = self.client.call("stats.compare", **BINOMIAL)
        self.assertAlmostEqual(r["p_value"], 0.1591813, places=6)
        self.assertFalse(r["significant"])
        self.assertEqual(r, self.client.call_params("stats.compare", BINOMIAL))

    def test_batch_good_and_bad(self):
        out = self.client.batch([
            ("stats.compare", BINOMIAL),
            ("experiment.get", {"key": "missing"}),
            ("server.info", None),
        ])
        self.assertEqual(len(out), 3)
        self.assertAlmostEqual(out[0]["p_value"], 0.1591813, places=6)
        self.assertIsInstance(out[1], RefereeError)
        self.assertEqual((out[1].code, out[1].reason), (1003, "not_found"))
        self.assertEqual(out[2]["name"], "referee")
        self.assertEqual(self.client.batch([]), [])
        # plain calls still line up after a batch
        self.assertEqual(self.client.call("server.info")["name"], "referee")

    def test_thread_safety(self):
        errors, results = [], {}

        def worker(t):
            try:
                for i in range(25):
                    successes = 1 + (t * 25 + i) % 50
                    r = self.client.call("stats.compare", metric="binomial",
                                         control={"n": 100, "successes": 10},
                                         treatment={"n": 100, "successes": successes})
                    results[(t, i)] = (successes, r)
            except Exception as e:  # reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=30)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 100)
        for successes, r in results.values():
            # each thread got the answer to its own request
            self.assertAlmostEqual(r["treatment"]["mean"], successes / 100)

    def test_daemon_failure_reports_stderr(self):
        c = RefereeClient(binary=BINARY, store=self.store,
                          protocols=os.path.join(self.tmp, "missing-dir"), timeout=30)
        self.addCleanup(c.close)
        with self.assertRaises(RefereeConnectionError) as cm:
            c.call("server.info")
        self.assertIn("missing-dir", str(cm.exception))

    def test_docstring_example(self):
        cwd = os.getcwd()
        os.chdir(str(REPO))
        try:
            result = doctest.testmod(referee_client, optionflags=doctest.ELLIPSIS)
        finally:
            os.chdir(cwd)
        self.assertGreater(result.attempted, 0)
        self.assertEqual(result.failed, 0)


class BinaryLookupTests(unittest.TestCase):

    def test_argument_then_environment(self):
        with mock.patch.dict(os.environ, {"REFEREE_BIN": "/from/env"}):
            self.assertEqual(referee_client.find_binary("/explicit"), "/explicit")
            self.assertEqual(referee_client.find_binary(), "/from/env")

    def test_path_then_repo_builds(self):
        env = dict(os.environ)
        env.pop("REFEREE_BIN", None)
        with mock.patch.dict(os.environ, env, clear=True):
            with mock.patch("shutil.which", return_value="/on/path/referee"):
                self.assertEqual(referee_client.find_binary(), "/on/path/referee")
            with tempfile.TemporaryDirectory() as repo, \
                    mock.patch("shutil.which", return_value=None), \
                    mock.patch.object(referee_client, "REPO", Path(repo)):
                with self.assertRaises(FileNotFoundError):
                    referee_client.find_binary()
                for flavour in ("debug", "release"):
                    p = Path(repo, ".build", flavour, "referee")
                    p.parent.mkdir(parents=True)
                    p.write_text("#!/bin/sh\n")
                    p.chmod(0o755)
                    self.assertEqual(referee_client.find_binary(), str(p))


SUMMARY = {
    "experiment": "checkout-green-button",
    "as_of": "2026-12-15T00:00:00Z",
    "metrics": [
        {"metric": "checkout_conversion", "role": "primary",
         "variants": [{"variant": "control", "n": 1000, "mean": 0.12},
                      {"variant": "green", "n": 1010, "mean": 0.15},
                      {"variant": "blue", "n": 990, "mean": 0.11}],
         "comparisons": [
             {"variant": "green", "estimate": 0.03, "ci": [0.001, 0.059], "relative": 0.25,
              "relative_ci": [0.01, 0.49], "p_value": 0.04, "adjusted_p_value": 0.08,
              "significant": False},
             {"variant": "blue", "estimate": -0.01, "ci": [-0.038, 0.018], "relative": -0.083,
              "relative_ci": [-0.31, 0.15], "p_value": 0.48, "adjusted_p_value": 0.48,
              "significant": False}]},
        {"metric": "crash_rate", "role": "guardrail",
         # control deliberately not first: it is the first variant no comparison names
         "variants": [{"variant": "green", "n": 1010, "mean": 0.004},
                      {"variant": "control", "n": 1000, "mean": 0.002}],
         "comparisons": [
             {"variant": "green", "estimate": 0.002, "ci": [0.0005, 0.0035], "relative": 1.0,
              "relative_ci": [0.2, 1.8], "p_value": 0.01, "adjusted_p_value": 0.01,
              "significant": True, "harm_detected": True}]},
    ],
    "decision": {"recommendation": "rollback", "reasons": ["crash_rate harmed"]},
}


class SummaryTests(unittest.TestCase):

    def test_summary_rows(self):
        rows = summary_rows(SUMMARY)
        self.assertEqual(len(rows), 3)
        for row in rows:
            self.assertEqual(tuple(row), SUMMARY_COLUMNS)
            self.assertEqual(row["experiment"], "checkout-green-button")
            self.assertEqual(row["as_of"], "2026-12-15T00:00:00Z")
            self.assertEqual(row["recommendation"], "rollback")
        green, blue, crash = rows
        self.assertEqual(green, {
            "experiment": "checkout-green-button", "as_of": "2026-12-15T00:00:00Z",
            "metric": "checkout_conversion", "role": "primary", "variant": "green",
            "control_mean": 0.12, "treatment_mean": 0.15, "estimate": 0.03,
            "ci_low": 0.001, "ci_high": 0.059, "relative": 0.25,
            "relative_ci_low": 0.01, "relative_ci_high": 0.49,
            "p_value": 0.04, "adjusted_p_value": 0.08, "significant": False,
            "harm_detected": False, "recommendation": "rollback"})
        self.assertEqual((blue["variant"], blue["control_mean"], blue["treatment_mean"]),
                         ("blue", 0.12, 0.11))
        self.assertEqual((crash["metric"], crash["role"], crash["variant"]),
                         ("crash_rate", "guardrail", "green"))
        self.assertEqual((crash["control_mean"], crash["treatment_mean"]), (0.002, 0.004))
        self.assertTrue(crash["significant"])
        self.assertTrue(crash["harm_detected"])

    def test_summary_rows_tolerates_missing_fields(self):
        rows = summary_rows({"experiment": "e", "metrics": [
            {"metric": "m", "variants": [], "comparisons": [{"variant": "b", "ci": None}]},
            {"metric": "no-comparisons", "variants": [{"variant": "a", "mean": 1}]}]})
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["variant"], "b")
        for key in ("as_of", "control_mean", "treatment_mean", "ci_low", "ci_high",
                    "recommendation"):
            self.assertIsNone(rows[0][key])
        self.assertEqual(summary_rows({"metrics": []}), [])

    def test_summary_frame_without_pandas(self):
        with mock.patch.dict(sys.modules, {"pandas": None}):  # makes `import pandas` fail
            with self.assertRaises(ImportError) as cm:
                summary_frame(SUMMARY)
        self.assertIn("pandas", str(cm.exception))
        self.assertIn("summary_rows", str(cm.exception))

    def test_summary_frame_calls_dataframe(self):
        calls = []
        fake = types.ModuleType("pandas")
        fake.DataFrame = lambda data, columns=None: calls.append((data, columns)) or "frame"
        with mock.patch.dict(sys.modules, {"pandas": fake}):
            self.assertEqual(summary_frame(SUMMARY), "frame")
        self.assertEqual(calls, [(summary_rows(SUMMARY), list(SUMMARY_COLUMNS))])

    def test_summary_frame_with_real_pandas(self):
        try:
            import pandas  # noqa: F401
        except ImportError:
            self.skipTest("pandas is not installed")
        frame = summary_frame(SUMMARY)
        self.assertEqual(list(frame.columns), list(SUMMARY_COLUMNS))
        self.assertEqual(len(frame), 3)
        self.assertEqual(list(frame["variant"]), ["green", "blue", "green"])
        self.assertEqual(list(frame["harm_detected"]), [False, False, True])


class FakeHandler(socketserver.StreamRequestHandler):
    """A tiny JSON-RPC server: `echo` returns its params, `fail` returns an error."""

    def answer(self, request):
        self.server.seen.append(request.get("method"))
        rid = request.get("id")
        method = request.get("method")
        if method == "echo":
            return {"jsonrpc": "2.0", "id": rid, "result": request.get("params")}
        if method == "shutdown":
            return {"jsonrpc": "2.0", "id": rid, "result": {"stopping": True}}
        if method == "fail":
            return {"jsonrpc": "2.0", "id": rid,
                    "error": {"code": 1009, "message": "degenerate input",
                              "data": {"reason": "invalid_input"}}}
        return {"jsonrpc": "2.0", "id": rid,
                "error": {"code": -32601, "message": "Unknown method",
                          "data": {"reason": "method_not_found"}}}

    def handle(self):
        for raw in self.rfile:
            request = json.loads(raw)
            # a stray message first, which the client must skip
            self.wfile.write(b'{"jsonrpc":"2.0","id":"not-yours","result":0}\n')
            if isinstance(request, list):
                response = [self.answer(r) for r in reversed(request)]  # any order is legal
            else:
                response = self.answer(request)
            self.wfile.write((json.dumps(response) + "\n").encode())
            self.wfile.flush()


class SocketTransportTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rc-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.path = os.path.join(self.tmp, "referee.sock")
        server = socketserver.ThreadingUnixStreamServer(self.path, FakeHandler)
        server.daemon_threads = True
        server.seen = []
        self.server = server
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)

    def test_calls_errors_and_batches_over_socket(self):
        with RefereeClient(socket=self.path, timeout=5) as c:
            self.assertEqual(c.call("echo", a=1, b=[1, 2]), {"a": 1, "b": [1, 2]})
            self.assertEqual(c.call_params("echo", {"method": "x"}), {"method": "x"})
            with self.assertRaises(RefereeError) as cm:
                c.call("fail")
            self.assertEqual((cm.exception.code, cm.exception.reason), (1009, "invalid_input"))
            out = c.batch([("echo", {"n": 1}), ("fail", None), ("echo", {"n": 2})])
            self.assertEqual(out[0], {"n": 1})
            self.assertIsInstance(out[1], RefereeError)
            self.assertEqual(out[2], {"n": 2})
        # closing a socket client does not stop a shared daemon
        self.assertNotIn("shutdown", self.server.seen)

    def test_socket_shutdown_on_close_opt_in(self):
        with RefereeClient(socket=self.path, timeout=5, shutdown_on_close=True) as c:
            c.call("echo")
        self.assertEqual(self.server.seen[-1], "shutdown")

    def test_connect_failure(self):
        with self.assertRaises(RefereeConnectionError):
            RefereeClient(socket=os.path.join(self.tmp, "nobody-here.sock"))


if __name__ == "__main__":
    unittest.main(verbosity=2)

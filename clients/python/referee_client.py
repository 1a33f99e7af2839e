#!/usr/bin/env python3
"""Referee client for notebooks and scripts (Python 3.9+, standard library only).

Starts ``referee serve`` as a subprocess (or connects to a Unix domain socket
speaking the same protocol) and talks JSON-RPC 2.0 to it, one JSON object per
line.  Errors from the daemon are raised as :class:`RefereeError`.

Example (run from the repository root; it uses a throw-away store)::

    >>> import json, os, tempfile
    >>> from referee_client import RefereeClient, RefereeError
    >>> store = os.path.join(tempfile.mkdtemp(), "demo.sqlite")
    >>> with open("Protocols/examples/checkout-green-button.json") as f:
    ...     doc = json.load(f)
    >>> with RefereeClient(store=store, protocols="Protocols", actor="pm.alice") as c:
    ...     rec = c.call("experiment.register", experiment=doc)
    ...     got = c.call("experiment.get", key="checkout-green-button")
    ...     cmp = c.call("stats.compare", metric="binomial",
    ...                  control={"n": 83, "successes": 5},
    ...                  treatment={"n": 99, "successes": 12})
    ...     try:
    ...         c.call("experiment.get", key="no-such-experiment")
    ...     except RefereeError as e:
    ...         err = (e.code, e.reason)
    >>> rec["state"], rec["version"], got["owner"]
    ('draft', 1, 'pm.alice')
    >>> round(cmp["p_value"], 4), cmp["significant"]
    (0.1592, False)
    >>> err
    (1003, 'not_found')

Other entry points:

* ``client.call_params(method, {...})`` when a parameter is called ``method``
  or is not a Python identifier;
* ``client.batch([(method, params), ...])`` sends one JSON-RPC batch and
  returns, in order, each result or a :class:`RefereeError` instance;
* ``summary_rows(summary)`` / ``summary_frame(summary)`` flatten a
  ``results.summary`` result into one row per (metric, compared variant);
* from a shell: ``python3 clients/python/referee_client.py stats.compare '{"metric": ...}'``
  (``--store``, ``--protocols``, ``--actor``, ``--binary``, ``--socket`` as above).

The binary is the ``binary`` argument, else ``$REFEREE_BIN``, else ``referee``
on ``PATH``, else ``<repo>/.build/release/referee``, else
``<repo>/.build/debug/referee``.
"""

import collections
import json
import os
import queue
import shutil
import socket as _socket
import subprocess
import sys
import threading
from pathlib import Path

__all__ = [
    "RefereeClient",
    "RefereeError",
    "RefereeConnectionError",
    "find_binary",
    "summary_rows",
    "summary_frame",
    "SUMMARY_COLUMNS",
]

# The repository, when the client runs from its checkout (clients/python/referee_client.py).
REPO = Path(__file__).resolve().parent.parent.parent

SUMMARY_COLUMNS = (
    "experiment", "as_of", "metric", "role", "variant",
    "control_mean", "treatment_mean", "estimate", "ci_low", "ci_high",
    "relative", "relative_ci_low", "relative_ci_high",
    "p_value", "adjusted_p_value", "significant", "harm_detected",
    "recommendation",
)

_EOF = object()


class RefereeError(Exception):
    """A JSON-RPC error object returned by the daemon.

    ``code`` (int), ``message`` (str) and ``data`` (usually a dict with
    ``reason``, plus details such as ``violations`` or ``path``).
    """

    def __init__(self, code, message, data=None):
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    @property
    def reason(self):
        return self.data.get("reason") if isinstance(self.data, dict) else None

    @classmethod
    def from_error(cls, error):
        if not isinstance(error, dict):
            return cls(None, "malformed error object: %r" % (error,), None)
        return cls(error.get("code"), error.get("message", ""), error.get("data"))

    def __str__(self):
        reason = self.reason
        head = "[%s %s]" % (self.code, reason) if reason else "[%s]" % (self.code,)
        return "%s %s" % (head, self.message)

    def __repr__(self):
        return "RefereeError(%r, %r, %r)" % (self.code, self.message, self.data)


class RefereeConnectionError(ConnectionError):
    """The daemon could not be reached, went away, or did not answer in time."""


def find_binary(binary=None):
    """Resolve the ``referee`` executable (see the module docstring for the order)."""
    if binary:
        return str(binary)
    env = os.environ.get("REFEREE_BIN")
    if env:
        return env
    on_path = shutil.which("referee")
    if on_path:
        return on_path
    for flavour in ("release", "debug"):
        candidate = REPO / ".build" / flavour / "referee"
        if candidate.is_file() and os.access(str(candidate), os.X_OK):
            return str(candidate)
    raise FileNotFoundError(
        "cannot find the referee binary: pass binary=..., set $REFEREE_BIN, put "
        "'referee' on PATH, or build it (swift build) so that %s/.build/{release,debug}/referee exists"
        % REPO)


def _json_type_matches(value, wanted):
    """Whether a Python value has the JSON Schema type ``wanted`` (a name or a list of names)."""
    names = wanted if isinstance(wanted, list) else [wanted]
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, (list, tuple)),
        "null": lambda v: v is None,
    }
    return any(checks.get(n, lambda v: True)(value) for n in names)


def _encode(obj):
    # allow_nan=False: NaN/Infinity are not JSON; fail here rather than in the daemon.
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            + "\n").encode("utf-8")


class RefereeClient:
    """A connection to one ``referee serve`` daemon.

    ``timeout`` (seconds, default None = wait forever) bounds each call;
    ``shutdown_on_close`` (default: True for a subprocess, False for a socket,
    so closing a notebook does not stop a shared daemon) decides whether
    :meth:`close` sends ``shutdown``.
    """

    def __init__(self, binary=None, store=None, protocols=None, actor=None, socket=None,
                 extra_args=(), timeout=None, shutdown_on_close=None, env=None):
        self.timeout = timeout
        self._methods = None
        self._lock = threading.RLock()
        self._next_id = 0
        self._lines = queue.Queue()
        self._stderr = collections.deque(maxlen=500)
        self._closed = False
        self._proc = None
        self._sock = None
        self._threads = []
        self.socket_path = socket
        if socket is not None:
            self.shutdown_on_close = bool(shutdown_on_close)
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.connect(os.fspath(socket))
            except OSError as e:
                sock.close()
                raise RefereeConnectionError("cannot connect to %s: %s" % (socket, e)) from e
            self._sock = sock
            self._reader = sock.makefile("rb")
            self.argv = None
        else:
            self.shutdown_on_close = True if shutdown_on_close is None else bool(shutdown_on_close)
            argv = [find_binary(binary), "serve"]
            if store is not None:
                argv += ["--store", os.fspath(store)]
            if protocols is not None:
                argv += ["--protocols", os.fspath(protocols)]
            if actor is not None:
                argv += ["--actor", str(actor)]
            argv += [str(a) for a in extra_args]
            self.argv = argv
            try:
                self._proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=env, bufsize=0)
            except OSError as e:
                raise RefereeConnectionError("cannot start %s: %s" % (argv[0], e)) from e
            self._reader = self._proc.stdout
            self._start_thread(self._drain_stderr, "referee-stderr")
        self._start_thread(self._read_stdout, "referee-stdout")

    # -- plumbing ---------------------------------------------------------

    def _start_thread(self, target, name):
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _drain_stderr(self):
        try:
            for raw in iter(self._proc.stderr.readline, b""):
                self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    def _read_stdout(self):
        try:
            for raw in iter(self._reader.readline, b""):
                self._lines.put(raw)
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(_EOF)

    def _send(self, payload):
        try:
            if self._sock is not None:
                self._sock.sendall(payload)
            else:
                self._proc.stdin.write(payload)
                self._proc.stdin.flush()
        except (OSError, ValueError) as e:
            raise self._gone("cannot send request (%s)" % e) from e

    def _gone(self, what):
        """A RefereeConnectionError with the exit status and stderr tail, if any."""
        detail = what
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=2)
                detail += "; referee exited with status %s" % code
            except subprocess.TimeoutExpired:
                pass
            for t in self._threads:
                if t.name == "referee-stderr":
                    t.join(timeout=1)
        tail = self.stderr
        if tail:
            detail += "\n--- referee stderr (last lines) ---\n" + "\n".join(tail.splitlines()[-20:])
        return RefereeConnectionError(detail)

    def _receive(self, matches, timeout):
        """Read lines until ``matches(message)`` returns non-None; return that value."""
        while True:
            try:
                raw = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise RefereeConnectionError(
                    "no response from referee within %s s" % timeout) from None
            if raw is _EOF:
                self._lines.put(_EOF)  # keep reporting EOF to later calls
                raise self._gone("referee closed the connection")
            try:
                message = json.loads(raw.decode("utf-8"))
            except ValueError:
                continue  # not ours to judge; the daemon never writes non-JSON to stdout
            # An error with id null (parse error, over-limit line or batch) answers the request
            # in flight: with the lock held there is only one.
            if (isinstance(message, dict) and message.get("id") is None
                    and "error" in message):
                raise RefereeError.from_error(message["error"])
            found = matches(message)
            if found is not None:
                return found

    def _take_id(self):
        self._next_id += 1
        return self._next_id

    # -- public API -------------------------------------------------------

    @property
    def stderr(self):
        """What the daemon wrote on stderr so far (last 500 lines; subprocess mode only)."""
        return "\n".join(self._stderr)

    def call(self, method, /, **params):
        """Call ``method`` with keyword parameters; return its ``result``."""
        return self.call_params(method, params if params else None)

    def methods(self):
        """The daemon's methods from ``rpc.discover`` (OpenRPC 1.3): ``{name: method object}``, fetched once."""
        if self._methods is None:
            document = self.call_params("rpc.discover")
            self._methods = {m["name"]: m for m in document["methods"]}
        return self._methods

    def check_params(self, method, params):
        """Validates ``params`` against the method's declared params before sending: unknown methods, unknown
        or missing parameter names and JSON types are refused here with :class:`ValueError`, naming them."""
        methods = self.methods()
        if method not in methods:
            raise ValueError("unknown method %r; the daemon offers: %s" % (method, ", ".join(sorted(methods))))
        declared = {p["name"]: p for p in methods[method]["params"]}
        params = params or {}
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise ValueError("%s: unknown parameter %s; expected %s" % (method, ", ".join(unknown), ", ".join(sorted(declared)) or "none"))
        missing = sorted(n for n, p in declared.items() if p.get("required") and n not in params)
        if missing:
            raise ValueError("%s: missing required parameter %s" % (method, ", ".join(missing)))
        for name, value in params.items():
            wanted = declared[name]["schema"].get("type")
            if wanted and value is not None and not _json_type_matches(value, wanted):
                raise ValueError("%s: parameter %s must be %s, got %s" % (method, name, wanted, type(value).__name__))

    def checked_call(self, method, /, **params):
        """:meth:`call` after :meth:`check_params`: mistakes are caught before anything is sent."""
        self.check_params(method, params)
        return self.call(method, **params)

    def __getattr__(self, name):
        """``client.experiment_get(key=...)`` calls ``experiment.get`` (checked): every method the daemon
        describes is offered, with the dot written as an underscore."""
        if name.startswith("_"):
            raise AttributeError(name)
        methods = self.methods()
        for method in methods:
            if method.replace(".", "_") == name:
                def bound(**params):
                    return self.checked_call(method, **params)
                bound.__name__ = name
                bound.__doc__ = methods[method].get("summary", "")
                return bound
        raise AttributeError("%s: no method %s in rpc.discover" % (type(self).__name__, name))

    def call_params(self, method, params=None, timeout=None):
        """Call ``method`` with ``params`` (dict, list or None); return its ``result``.

        Raises RefereeError for an error response and RefereeConnectionError
        when the daemon is gone or does not answer within ``timeout``
        (default: the client's ``timeout``).
        """
        request = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            request["params"] = params
        timeout = self.timeout if timeout is None else timeout
        with self._lock:
            self._check_open()
            request["id"] = rid = self._take_id()
            self._send(_encode(request))

            def matches(message):
                if isinstance(message, dict) and message.get("id") == rid:
                    return message
                return None  # a late answer to an earlier, timed-out request

            response = self._receive(matches, timeout)
        if "error" in response:
            raise RefereeError.from_error(response["error"])
        return response.get("result")

    def batch(self, calls, timeout=None):
        """Send ``[(method, params), ...]`` as one JSON-RPC batch.

        Returns a list in the same order: each element is the call's result,
        or a RefereeError instance (not raised) for a call that failed.
        """
        calls = list(calls)
        if not calls:
            return []
        timeout = self.timeout if timeout is None else timeout
        with self._lock:
            self._check_open()
            requests, ids = [], []
            for item in calls:
                method, params = (item, None) if isinstance(item, str) else item
                rid = self._take_id()
                request = {"jsonrpc": "2.0", "id": rid, "method": method}
                if params is not None:
                    request["params"] = params
                requests.append(request)
                ids.append(rid)
            self._send(_encode(requests))
            wanted = set(ids)

            def matches(message):
                if isinstance(message, list) and any(
                        isinstance(m, dict) and m.get("id") in wanted for m in message):
                    return message
                return None

            responses = self._receive(matches, timeout)
        by_id = {m.get("id"): m for m in responses if isinstance(m, dict)}
        out = []
        for rid in ids:
            m = by_id.get(rid)
            if m is None:
                out.append(RefereeError(None, "no response for request id %s in the batch" % rid))
            elif "error" in m:
                out.append(RefereeError.from_error(m["error"]))
            else:
                out.append(m.get("result"))
        return out

    def _check_open(self):
        if self._closed:
            raise RefereeConnectionError("this RefereeClient is closed")

    def close(self, timeout=20.0):
        """Send ``shutdown`` (see ``shutdown_on_close``), close the pipe or socket,
        wait up to ``timeout`` seconds for the daemon to exit, then kill it."""
        if self._closed:
            return
        if self.shutdown_on_close:
            try:
                self.call_params("shutdown", None, timeout=timeout)
            except (RefereeError, RefereeConnectionError, OSError):
                pass
        with self._lock:
            self._closed = True
            if self._sock is not None:
                for closer in (lambda: self._sock.shutdown(_socket.SHUT_RDWR),
                               self._reader.close, self._sock.close):
                    try:
                        closer()
                    except OSError:
                        pass
            if self._proc is not None:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
                try:
                    self._proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            for t in self._threads:
                t.join(timeout=1)
            if self._proc is not None:
                for pipe in (self._proc.stdout, self._proc.stderr):
                    try:
                        pipe.close()
                    except OSError:
                        pass

    @property
    def returncode(self):
        """The daemon's exit status once it has exited (subprocess mode), else None."""
        return self._proc.poll() if self._proc is not None else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# -- results.summary helpers ------------------------------------------------

def _pair(value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value[0], value[1]
    return None, None


def summary_rows(summary):
    """Flatten a ``results.summary`` result: one dict per (metric, compared variant).

    Keys are SUMMARY_COLUMNS.  The control is the first entry of a metric's
    ``variants`` that no comparison names.  Values the summary lacks are None,
    except ``harm_detected``, which is False when absent.
    """
    decision = summary.get("decision") or {}
    rows = []
    for metric in summary.get("metrics") or []:
        variants = metric.get("variants") or []
        comparisons = metric.get("comparisons") or []
        compared = {c.get("variant") for c in comparisons}
        means = {}
        for v in variants:
            means.setdefault(v.get("variant"), v.get("mean"))
        control = next((v for v in variants if v.get("variant") not in compared), None)
        for c in comparisons:
            ci_low, ci_high = _pair(c.get("ci"))
            rel_low, rel_high = _pair(c.get("relative_ci"))
            rows.append({
                "experiment": summary.get("experiment"),
                "as_of": summary.get("as_of"),
                "metric": metric.get("metric"),
                "role": metric.get("role"),
                "variant": c.get("variant"),
                "control_mean": control.get("mean") if control else None,
                "treatment_mean": means.get(c.get("variant")),
                "estimate": c.get("estimate"),
                "ci_low": ci_low,
                "ci_high": ci_high,
                "relative": c.get("relative"),
                "relative_ci_low": rel_low,
                "relative_ci_high": rel_high,
                "p_value": c.get("p_value"),
                "adjusted_p_value": c.get("adjusted_p_value"),
                "significant": c.get("significant"),
                "harm_detected": bool(c.get("harm_detected", False)),
                "recommendation": decision.get("recommendation"),
            })
    return rows


def summary_frame(summary):
    """``summary_rows(summary)`` as a pandas DataFrame (columns in SUMMARY_COLUMNS order)."""
    try:
        import pandas
    except ImportError as e:
        raise ImportError(
            "summary_frame needs pandas, which is not installed (pip install pandas); "
            "summary_rows(summary) gives the same data as a list of dicts") from e
    return pandas.DataFrame(summary_rows(summary), columns=list(SUMMARY_COLUMNS))


# -- command line -------------------------------------------------------------

def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(
        prog="referee_client.py",
        description="Call one referee JSON-RPC method and print its result as JSON.")
    parser.add_argument("method", help="e.g. server.info, experiment.get, stats.compare")
    parser.add_argument("params", nargs="?",
                        help="params as a JSON object or array; '-' reads them from stdin")
    parser.add_argument("--binary")
    parser.add_argument("--store")
    parser.add_argument("--protocols")
    parser.add_argument("--actor")
    parser.add_argument("--socket", help="connect to a Unix socket instead of starting the daemon")
    args = parser.parse_args(argv)
    params = None
    if args.params is not None:
        text = sys.stdin.read() if args.params == "-" else args.params
        try:
            params = json.loads(text)
        except ValueError as e:
            parser.error("params are not valid JSON: %s" % e)
    try:
        with RefereeClient(binary=args.binary, store=args.store, protocols=args.protocols,
                           actor=args.actor, socket=args.socket) as client:
            result = client.call_params(args.method, params)
    except RefereeError as e:
        print(json.dumps({"code": e.code, "message": e.message, "data": e.data}, indent=2),
              file=sys.stderr)
        return 1
    except (RefereeConnectionError, FileNotFoundError) as e:
        print("referee_client: %s" % e, file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

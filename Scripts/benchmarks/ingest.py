#!/usr/bin/env python3
"""Ingestion benchmark for Scripts/bench: generates a unit-level CSV (3 variants, 4 metrics including a ratio),
times `referee ingest` on it (wall time and peak memory) and DuckDB computing the same per-variant sums from the
same file, and prints both and the ratio as RESULT lines.

    python3 Scripts/benchmarks/ingest.py ROWS REFEREE_BINARY
"""
import json, os, random, resource, subprocess, sys, tempfile, time

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000_000
binary = sys.argv[2] if len(sys.argv) > 2 else ".build/release/referee"

def report(name, value, unit, **extra):
    print(f"{name:58s} {value:14.3f} {unit}")
    print("RESULT " + json.dumps(dict(name=name, value=value, unit=unit, **extra), sort_keys=True))

work = tempfile.mkdtemp(prefix="referee-ingest-bench-")
csv = os.path.join(work, "units.csv")
protocols = os.path.join(work, "protocols")
os.mkdir(protocols)
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for name in ("standard.json", "sequential.json", "metrics.json"):
    with open(os.path.join(repo, "Protocols", name)) as src, open(os.path.join(protocols, name), "w") as dst:
        dst.write(src.read())

# Generate in chunks with a fast LCG so 50M rows take minutes, not hours.
t0 = time.perf_counter()
rng = random.Random(7)
dims_csv = os.path.join(work, "units-dims.csv")
tails_csv = os.path.join(work, "units-tails.csv")
countries = [f"c{i}" for i in range(20)]
with open(csv, "w") as f, open(dims_csv, "w") as g, open(tails_csv, "w") as h:
    h.write("unit_id,variant,day,checkout_conversion,revenue_per_user,clicks_per_session.numerator,clicks_per_session.denominator,crash_rate,session_length_seconds\n")
    f.write("unit_id,variant,day,checkout_conversion,revenue_per_user,clicks_per_session.numerator,clicks_per_session.denominator,crash_rate\n")
    g.write("unit_id,variant,day,country,platform,checkout_conversion,revenue_per_user,clicks_per_session.numerator,clicks_per_session.denominator,crash_rate\n")
    variants = ("control", "b", "c")
    chunk, dchunk, tchunk = [], [], []
    for i in range(rows):
        r = rng.random()
        v = variants[int(r * 3)]
        sessions = 1 + int(r * 997) % 5
        values = f"{1 if r * 7 % 1 < 0.12 else 0},{r * 40:.2f},{int(r * 991) % 9},{sessions},{1 if r * 13 % 1 < 0.01 else 0}\n"
        chunk.append(f"u{i},{v},2026-12-{1 + i % 28:02d}," + values)
        dchunk.append(f"u{i},{v},2026-12-{1 + i % 28:02d},{countries[int(r * 9973) % 20]},{('ios', 'android', 'web')[i % 3]}," + values)
        # Heavy-tailed session lengths (Pareto, alpha 1.5) for the quantile metric.
        tchunk.append(f"u{i},{v},2026-12-{1 + i % 28:02d}," + values[:-1] + f",{30 * (1 - (r * 7919) % 1) ** (-1 / 1.5):.1f}\n")
        if len(chunk) == 100_000:
            f.writelines(chunk); chunk.clear()
            g.writelines(dchunk); dchunk.clear()
            h.writelines(tchunk); tchunk.clear()
    f.writelines(chunk)
    g.writelines(dchunk)
    h.writelines(tchunk)
size = os.path.getsize(csv)
print(f"generated {rows:,} rows ({size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

doc = json.load(open(os.path.join(repo, "Protocols/examples/checkout-green-button.json")))
doc["variants"] = [{"key": "control", "weight": 0.34, "control": True}, {"key": "b", "weight": 0.33}, {"key": "c", "weight": 0.33}]
doc["metrics"] = {"primary": "checkout_conversion", "secondary": ["revenue_per_user", "clicks_per_session"], "guardrails": ["crash_rate"]}
exp = os.path.join(work, "exp.json")
json.dump(doc, open(exp, "w"))
store = os.path.join(work, "s.sqlite")
common = ["--store", store, "--protocols", protocols]
subprocess.run([binary, "register", exp] + common, check=True, stdout=subprocess.DEVNULL)
# Results are recorded for experiments that have run; the registrant may not approve (four eyes).
for state, actor in (("review", "pm.alice"), ("approved", "bench.approver"), ("running", "pm.alice")):
    subprocess.run([binary, "transition", "checkout-green-button", state, "--actor", actor] + common, check=True, stdout=subprocess.DEVNULL)
# The same experiment with two dimensions (country: 20 values, platform: 3), in a layer of its own.
dims_doc = dict(doc, key="checkout-dims", layer="checkout-dims", parameters=["checkout.dims"], dimensions=["country", "platform"])
dims_exp = os.path.join(work, "exp-dims.json")
json.dump(dims_doc, open(dims_exp, "w"))
# In a store of its own: beside checkout-green-button it would also be crossed with it (interactions), which the
# crossing benchmark below measures on its own.
dims_store = ["--store", os.path.join(work, "dims.sqlite"), "--protocols", protocols]
subprocess.run([binary, "register", dims_exp] + dims_store, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for state, actor in (("review", "pm.alice"), ("approved", "bench.approver"), ("running", "pm.alice")):
    subprocess.run([binary, "transition", "checkout-dims", state, "--actor", actor] + dims_store, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

# Heavy tails: the same file read by an experiment whose revenue_per_user is capped at its 99th percentile and with a
# quantile metric (the 90th percentile of session length), against one reading the same columns as plain means.
tails_protocols = os.path.join(work, "protocols-tails")
os.mkdir(tails_protocols)
for name in ("standard.json", "sequential.json"):
    with open(os.path.join(protocols, name)) as src, open(os.path.join(tails_protocols, name), "w") as dst:
        dst.write(src.read())
catalog = json.load(open(os.path.join(protocols, "metrics.json")))
catalog["metrics"]["revenue_per_user"]["capping"] = {"type": "percentile", "value": 0.99}
json.dump(catalog, open(os.path.join(tails_protocols, "metrics.json"), "w"))
tails_store = os.path.join(work, "tails.sqlite")
for key, tails, metrics in (("tails-plain", False, ["revenue_per_user", "clicks_per_session", "session_length_seconds"]),
                            ("tails-heavy", True, ["revenue_per_user", "clicks_per_session", "session_length_p90"])):
    tdoc = dict(doc, key=key, layer=key, parameters=[f"{key}.p"], metrics=dict(doc["metrics"], secondary=metrics))
    path = os.path.join(work, f"{key}.json")
    json.dump(tdoc, open(path, "w"))
    tcommon = ["--store", tails_store, "--protocols", tails_protocols if tails else protocols]
    subprocess.run([binary, "register", path] + tcommon, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for state, actor in (("review", "pm.alice"), ("approved", "bench.approver"), ("running", "pm.alice")):
        subprocess.run([binary, "transition", key, state, "--actor", actor] + tcommon, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

# Interactions: the same experiment in a store where 5 experiments of other layers overlap it (no targeting, so each
# unit's arm in each is computed from its id at ingestion), against the store where it runs alone.
crossed_store = os.path.join(work, "crossed.sqlite")
crossed = ["--store", crossed_store, "--protocols", protocols]
for key, d in [("checkout-green-button", doc)] + [
        (f"overlap-{k}", dict(doc, key=f"overlap-{k}", layer=f"layer-{k}", parameters=[f"overlap.{k}"], targeting={}, traffic=0.5 + 0.1 * k,
                              variants=[{"key": "control", "weight": 0.5, "control": True}, {"key": "treatment", "weight": 0.5}]))
        for k in range(5)]:
    path = os.path.join(work, f"{key}-crossed.json")
    json.dump(d, open(path, "w"))
    subprocess.run([binary, "register", path] + crossed, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for state, actor in (("review", "pm.alice"), ("approved", "bench.approver"), ("running", "pm.alice")):
        subprocess.run([binary, "transition", key, state, "--actor", actor] + crossed, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def run_referee(key="checkout-green-button", path=csv, options=None):
    t0 = time.perf_counter()
    subprocess.run([binary, "ingest", key, path] + (options or common), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0

def run_duckdb():
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""
        SELECT variant, count(*) AS n,
               sum(checkout_conversion), sum(revenue_per_user), sum(revenue_per_user * revenue_per_user),
               sum("clicks_per_session.numerator"), sum("clicks_per_session.denominator"),
               sum("clicks_per_session.numerator" * "clicks_per_session.denominator"), sum(crash_rate)
        FROM read_csv_auto('{csv}') GROUP BY variant ORDER BY variant""").fetchall()
    con.close()
    return time.perf_counter() - t0

# The file was just written: flush it, then alternate the two tools and keep each one's best of two runs,
# so neither pays alone for a cold page cache or a burst of background writeback on this shared machine.
os.sync()
referee_runs, duck_runs = [run_referee()], []
# Peak memory of the first run, before DuckDB grows this process: a child forked later would count it.
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
try:
    import duckdb
except ImportError:
    duckdb = None
    print("duckdb not installed: no peer figure", file=sys.stderr)
if duckdb:
    duck_runs.append(run_duckdb())
referee_runs.append(run_referee())
if duckdb:
    duck_runs.append(run_duckdb())
referee_s = min(referee_runs)
# Two dimension columns against none, the same rows, alternately (best of two each).
plain, dims = [], []
for _ in range(2):
    plain.append(run_referee())
    dims.append(run_referee("checkout-dims", dims_csv, dims_store))
report(f"referee ingest {rows:,} rows with 2 dimensions / without", min(dims) / min(plain), "x",
       with_dimensions_s=round(min(dims), 3), without_s=round(min(plain), 3))
os.remove(dims_csv) if not os.environ.get("REFEREE_BENCH_KEEP") else None
plain, overlapping = [], []
for _ in range(2):
    plain.append(run_referee())
    overlapping.append(run_referee(options=crossed))
check = subprocess.run([binary, "call", "results.interactions", '{"key": "checkout-green-button", "as_of": "2027-01-01T00:00:00Z"}'] + crossed,
                       capture_output=True, text=True)
pairs = len(json.loads(check.stdout).get("pairs", [])) if check.returncode == 0 else 0
report(f"referee ingest {rows:,} rows crossed with 5 overlapping experiments / alone", min(overlapping) / min(plain), "x",
       crossed_s=round(min(overlapping), 3), alone_s=round(min(plain), 3), pairs_stored=pairs)
plain, heavy = [], []
for _ in range(2):
    plain.append(run_referee("tails-plain", tails_csv, ["--store", tails_store, "--protocols", protocols]))
    heavy.append(run_referee("tails-heavy", tails_csv, ["--store", tails_store, "--protocols", tails_protocols]))
report(f"referee ingest {rows:,} rows with a quantile and a percentile-capped metric / without", min(heavy) / min(plain), "x",
       with_s=round(min(heavy), 3), without_s=round(min(plain), 3))
os.remove(tails_csv) if not os.environ.get("REFEREE_BENCH_KEEP") else None
report(f"referee ingest {rows:,} rows", referee_s, "s", peak_rss_mb=round(peak_mb, 1), mb_per_s=round(size / 1e6 / referee_s, 1),
       runs=[round(t, 2) for t in referee_runs])
if not duckdb:
    sys.exit(0)
duck_s = min(duck_runs)
report(f"peer duckdb per-variant sums {rows:,} rows", duck_s, "s", runs=[round(t, 2) for t in duck_runs])
report("referee ingest / duckdb wall time", referee_s / duck_s, "x")
os.remove(csv) if not os.environ.get("REFEREE_BENCH_KEEP") else None


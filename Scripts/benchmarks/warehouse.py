#!/usr/bin/env python3
"""`referee pull` against `psql` running the query `referee sql` prints, on one local PostgreSQL.

usage: warehouse.py REFEREE_BINARY [FACT_ROWS] [UNITS]   (defaults 20,000,000 and 2,000,000)

Starts a throwaway cluster (Scripts/dev/postgres), fills it in SQL (exposures of UNITS units, half of them in each
variant, 5% exposed twice and 2% in both variants; FACT_ROWS orders and sessions, a tenth of them before exposure),
registers the shipped example experiment with two dimensions, then times, alternating, psql -f on the printed query
(its rows read and discarded) and `referee pull` end to end (process start, connection, query, rows, one store
transaction), best of three each. Prints RESULT lines for Scripts/bench.
"""
import json, os, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
referee = os.path.abspath(sys.argv[1])
facts = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000_000
units = int(sys.argv[3]) if len(sys.argv) > 3 else 2_000_000
work = tempfile.mkdtemp(prefix="referee-bench-wh-")
os.chmod(work, 0o755)   # the cluster runs as an unprivileged user, who must reach its folder inside
pg = os.path.join(work, "pg")
env_lines = subprocess.check_output([os.path.join(root, "Scripts/dev/postgres"), "start", pg], text=True)
env = dict(os.environ)
for line in env_lines.splitlines():
    k, v = line.removeprefix("export ").split("=", 1)
    env[k] = v
url = env["REFEREE_TEST_POSTGRES_URL"].replace("?sslmode=disable", "")
env["PGPASSWORD"] = env["REFEREE_TEST_POSTGRES_PASSWORD"]
env["REFEREE_WAREHOUSE_PASSWORD"] = env["PGPASSWORD"]

def psql(*args, **kw):
    return subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args], env=env, check=True, **kw)

def result(name, value, unit, **notes):
    print("RESULT " + json.dumps({"name": name, "value": value, "unit": unit, **notes}))

try:
    t0 = time.time()
    half = facts // 2
    psql("-o", "/dev/null", "-c", f"""
        CREATE SCHEMA analytics;
        SELECT setseed(0.2026);
        CREATE UNLOGGED TABLE analytics.exposures AS
          SELECT 'u' || g AS user_id, 'checkout-green-button' AS experiment_key,
                 CASE WHEN g % 2 = 0 THEN 'control' ELSE 'green' END AS variant,
                 TIMESTAMP '2026-12-01' + (random() * 24 * 86400) * INTERVAL '1 second' AS exposed_at,
                 (ARRAY['US','CA','MX','BR','DE','FR','GB','JP','IN','AU'])[1 + (g % 10)] AS country,
                 (ARRAY['ios','android','web'])[1 + (g % 3)] AS platform
          FROM generate_series(1, {units}) AS g;
        INSERT INTO analytics.exposures
          SELECT user_id, experiment_key, CASE WHEN random() < 0.4 THEN variant ELSE CASE variant WHEN 'control' THEN 'green' ELSE 'control' END END,
                 exposed_at + INTERVAL '1 hour', country, 'web'
          FROM analytics.exposures WHERE random() < 0.05;
        CREATE UNLOGGED TABLE analytics.orders AS
          SELECT 'u' || (1 + floor(random() * {units * 1.05})::bigint) AS user_id,
                 TIMESTAMP '2026-11-20' + (random() * 40 * 86400) * INTERVAL '1 second' AS ordered_at,
                 round((random() * 80)::numeric, 2)::double precision AS amount,
                 CASE WHEN random() < 0.85 THEN 'paid' ELSE 'refunded' END AS status
          FROM generate_series(1, {half}) AS g;
        CREATE UNLOGGED TABLE analytics.sessions AS
          SELECT 'u' || (1 + floor(random() * {units * 1.05})::bigint) AS user_id,
                 TIMESTAMP '2026-11-25' + (random() * 35 * 86400) * INTERVAL '1 second' AS started_at,
                 floor(random() * 12)::int AS clicks, CASE WHEN random() < 0.02 THEN 1 ELSE 0 END AS crashed
          FROM generate_series(1, {facts - half}) AS g;
        ANALYZE;
    """)
    print(f"warehouse bench: {units:,} units, {facts:,} fact rows loaded in {time.time() - t0:.0f} s", file=sys.stderr)
    protocols = os.path.join(work, "protocols")
    os.makedirs(protocols)
    for name in os.listdir(os.path.join(root, "Protocols")):
        if name.endswith(".json"):
            text = open(os.path.join(root, "Protocols", name)).read()
            if name == "warehouse.json":
                d = json.loads(text)
                d["sources"]["analytics"]["url"] = env["REFEREE_TEST_POSTGRES_URL"]
                text = json.dumps(d)
            open(os.path.join(protocols, name), "w").write(text)
    store = os.path.join(work, "bench.db")
    doc = json.load(open(os.path.join(root, "Protocols/examples/checkout-green-button.json")))
    doc["dimensions"] = ["country", "platform"]
    doc["metrics"] = {"primary": "checkout_conversion", "secondary": ["revenue_per_user", "clicks_per_session"], "guardrails": ["crash_rate"]}
    open(os.path.join(work, "exp.json"), "w").write(json.dumps(doc))
    base = ["--store", store, "--protocols", protocols]
    def ref(*args, actor="pm.alice"):
        return subprocess.run([referee, *args, *base, "--actor", actor], env=env, check=True, capture_output=True, text=True).stdout
    ref("register", os.path.join(work, "exp.json"))
    for state, actor in [("review", "pm.alice"), ("approved", "approver.bob"), ("running", "pm.alice")]:
        ref("transition", "checkout-green-button", state, actor=actor)
    as_of = "2026-12-28T00:00:00Z"
    sql = ref("sql", "checkout-green-button", "--source", "analytics", "--as-of", as_of)
    open(os.path.join(work, "query.sql"), "w").write(sql)
    psql_times, pull_times, report = [], [], None
    for _ in range(3):
        t = time.time(); psql("-o", "/dev/null", "-f", os.path.join(work, "query.sql")); psql_times.append(time.time() - t)
        t = time.time(); report = json.loads(ref("pull", "checkout-green-button", "--source", "analytics", "--as-of", as_of, actor="analyst.ann"))
        pull_times.append(time.time() - t)
    a, b = min(psql_times), min(pull_times)
    print(f"warehouse bench: psql {a:.2f} s, referee pull {b:.2f} s ({b / a:.3f}x), {report['bytes_fetched']:,} bytes, {report['rows_returned']} rows", file=sys.stderr)
    result("psql -f (the query referee sql prints)", a, "s", units=units, fact_rows=facts, runs=3)
    result("referee pull end to end", b, "s", units=units, fact_rows=facts, rows=report["rows_returned"], bytes_fetched=report["bytes_fetched"], runs=3)
    result("referee pull / psql wall time", b / a, "x", goal="<= 1.1")
    result("referee pull bytes fetched", report["bytes_fetched"], "bytes", goal="< 1,000,000")
finally:
    subprocess.run([os.path.join(root, "Scripts/dev/postgres"), "stop", pg])
    subprocess.run(["rm", "-rf", work])

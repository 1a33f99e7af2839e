#!/usr/bin/env python3
"""The warehouse route tests' other half (run by WarehouseRouteTests in .venv-tests).

  generate DIR [--odd]       a seeded dataset: exposures.csv, orders.csv, sessions.csv, and units.csv, the unit-level
                             file `referee ingest` reads, computed here with plain loops from the same events (the oracle
                             of the windows); --odd gives dimension values with quotes, semicolons and comment markers
  duckdb DIR SQL [--read D]  loads the CSV files into DuckDB and runs the query in file SQL; with --read D the text is
                             first parsed as dialect D by sqlglot and translated to DuckDB. Prints {columns, rows}.
  schema S FILE… [--invalid]  each FILE is valid against JSON Schema S (with --invalid: each is refused).
  parse SQL --read D         parses the text as dialect D (sqlglot); exits 1 naming the problem when it does not parse,
                             or when it holds more than one statement.
"""
import csv, datetime as dt, json, random, sys

START = dt.datetime(2026, 12, 1)
END = dt.datetime(2026, 12, 29)
AS_OF = dt.datetime(2026, 12, 18)
KEY = "checkout-green-button"
DAY = 86400

def ts(t):
    return t.strftime("%Y-%m-%d %H:%M:%S")

def generate(out, odd):
    rng = random.Random(20261202)
    countries = ["US", "CA", "MX", "BR", "DE"] + [f"C{i:02d}" for i in range(58)]
    if odd:
        countries[1] = "O'Brien; -- x"
        countries[2] = 'semi;colon /* c */ "q"'
        countries[3] = "back\\slash'"
    platforms = ["ios", "android", None]
    exposures, orders, sessions = [], [], []
    units = {}
    for u in range(3000):
        unit = f"u{u:05d}"
        variant = "control" if rng.random() < 0.5 else "green"
        # First exposures over 10 days; the as-of time (Dec 18) cuts the later units' 7- and 14-day windows short.
        first = START + dt.timedelta(seconds=rng.randrange(0, 10 * DAY))
        # A few exposures before the start or after the end: outside the schedule, not counted.
        if rng.random() < 0.03:
            exposures.append((unit, KEY, variant, ts(START - dt.timedelta(seconds=rng.randrange(1, 5 * DAY))), "US", "ios"))
        country = countries[min(int(rng.expovariate(1 / 15)), len(countries) - 1)] if rng.random() < 0.97 else None
        platform = platforms[rng.randrange(3)]
        rows = [(first, variant)]
        for _ in range(rng.randrange(0, 3)):
            rows.append((first + dt.timedelta(seconds=rng.randrange(1, 5 * DAY)), variant))
        if rng.random() < 0.03:   # seen in both variants: excluded
            rows.append((first + dt.timedelta(seconds=rng.randrange(1, 3 * DAY)), "green" if variant == "control" else "control"))
        for i, (t, v) in enumerate(rows):
            # Later rows may carry other dimension values: the earliest row's count.
            c = country if i == 0 else countries[rng.randrange(len(countries))]
            exposures.append((unit, KEY, v, ts(t), c, platform if i == 0 else "android"))
        # Another experiment's exposures of the same units.
        if rng.random() < 0.3:
            exposures.append((unit, "search-ranking", "treatment", ts(first), "US", "ios"))
        units[unit] = rows
        lift = 1.15 if variant == "green" else 1.0
        for _ in range(rng.randrange(0, 6)):
            t = first + dt.timedelta(seconds=rng.randrange(-20 * DAY, 30 * DAY))
            amount = round(rng.expovariate(1 / 30) * lift, 2)
            orders.append((unit, ts(t), amount, "paid" if rng.random() < 0.85 else "refunded"))
        for _ in range(rng.randrange(0, 7)):
            t = first + dt.timedelta(seconds=rng.randrange(-5 * DAY, 20 * DAY))
            sessions.append((unit, ts(t), rng.randrange(0, 12), 1 if rng.random() < 0.05 else 0))
    # Events of units never exposed.
    for u in range(200):
        orders.append((f"n{u:04d}", ts(START + dt.timedelta(seconds=rng.randrange(0, 20 * DAY))), 12.5, "paid"))
        sessions.append((f"n{u:04d}", ts(START + dt.timedelta(seconds=rng.randrange(0, 20 * DAY))), 3, 0))
    with open(f"{out}/exposures.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "experiment_key", "variant", "exposed_at", "country", "platform"])
        w.writerows(exposures)
    with open(f"{out}/orders.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "ordered_at", "amount", "status"])
        w.writerows(orders)
    with open(f"{out}/sessions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "started_at", "clicks", "crashed"])
        w.writerows(sessions)
    oracle(out, exposures, orders, sessions)

def oracle(out, exposures, orders, sessions):
    """Each unit's values, by loops over the events, exactly as the definitions of the tests' warehouse.json say."""
    parse = lambda s: dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S")
    end = min(END, AS_OF)
    seen = {}
    for unit, key, variant, t, country, platform in exposures:
        t = parse(t)
        if key != KEY or not (START <= t < end):
            continue
        seen.setdefault(unit, []).append((t, variant, country, platform))
    by_unit_orders, by_unit_sessions = {}, {}
    for unit, t, amount, status in orders:
        by_unit_orders.setdefault(unit, []).append((parse(t), amount, status))
    for unit, t, clicks, crashed in sessions:
        by_unit_sessions.setdefault(unit, []).append((parse(t), clicks, crashed))
    rows = []
    for unit in sorted(seen):
        rs = sorted(seen[unit], key=lambda r: r[0])
        if len({r[1] for r in rs}) != 1 or rs[0][1] not in ("control", "green"):
            continue
        first, variant, country, platform = rs[0]
        def within(t, a, b):
            return first + dt.timedelta(seconds=a) <= t < (first + dt.timedelta(seconds=b) if b is not None else end) and t < AS_OF
        paid = [(t, a) for t, a, s in by_unit_orders.get(unit, []) if s == "paid"]
        conversion = 1 if sum(1 for t, a in paid if within(t, 0, 7 * DAY)) > 0 else 0
        revenue = sum(a for t, a in paid if within(t, 0, None))
        revenue_pre = sum(a for t, a in paid if within(t, -14 * DAY, 0))
        ss = by_unit_sessions.get(unit, [])
        crash = max([c for t, k, c in ss if within(t, 0, int(3.5 * DAY))], default=0)
        clicks = sum(k for t, k, c in ss if within(t, 0, 14 * DAY))
        count = sum(1 for t, k, c in ss if within(t, 0, 14 * DAY))
        rows.append([unit, variant, first.strftime("%Y-%m-%d"), country or "", platform or "", conversion, repr(float(revenue)),
                     repr(float(revenue_pre)), crash, clicks, count])
    with open(f"{out}/units.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["unit_id", "variant", "day", "country", "platform", "checkout_conversion", "revenue_per_user", "revenue_per_user.pre",
                    "crash_rate", "clicks_per_session.numerator", "clicks_per_session.denominator"])
        w.writerows(rows)

def load_duckdb(data):
    import duckdb
    con = duckdb.connect()
    con.execute("CREATE SCHEMA analytics")
    con.execute(f"CREATE TABLE analytics.exposures AS SELECT * FROM read_csv('{data}/exposures.csv', header=true, columns={{'user_id': 'VARCHAR', 'experiment_key': 'VARCHAR', 'variant': 'VARCHAR', 'exposed_at': 'TIMESTAMP', 'country': 'VARCHAR', 'platform': 'VARCHAR'}})")
    con.execute(f"CREATE TABLE analytics.orders AS SELECT * FROM read_csv('{data}/orders.csv', header=true, columns={{'user_id': 'VARCHAR', 'ordered_at': 'TIMESTAMP', 'amount': 'DOUBLE', 'status': 'VARCHAR'}})")
    con.execute(f"CREATE TABLE analytics.sessions AS SELECT * FROM read_csv('{data}/sessions.csv', header=true, columns={{'user_id': 'VARCHAR', 'started_at': 'TIMESTAMP', 'clicks': 'INTEGER', 'crashed': 'INTEGER'}})")
    return con

def statements(text, read):
    import sqlglot
    read = {"postgresql": "postgres"}.get(read, read)
    parsed = [s for s in sqlglot.parse(text, read=read) if s is not None]
    if len(parsed) != 1:
        raise SystemExit(f"{len(parsed)} statements in the text, not one")
    return parsed[0]

def main():
    cmd = sys.argv[1]
    if cmd == "generate":
        generate(sys.argv[2], "--odd" in sys.argv)
    elif cmd == "duckdb":
        data, sql = sys.argv[2], open(sys.argv[3]).read()
        if "--read" in sys.argv:
            sql = statements(sql, sys.argv[sys.argv.index("--read") + 1]).sql(dialect="duckdb")
        else:
            statements(sql, "duckdb")
        con = load_duckdb(data)
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description]
        rows = [[v if not isinstance(v, (dt.date, dt.datetime)) else str(v) for v in r] for r in cur.fetchall()]
        print(json.dumps({"columns": columns, "rows": rows}))
    elif cmd == "schema":
        # schema SCHEMA FILE...: each file valid against the JSON Schema (exit 1 naming the first error), or with --invalid, each refused.
        import jsonschema
        schema = json.load(open(sys.argv[2]))
        jsonschema.Draft202012Validator.check_schema(schema)
        files = [a for a in sys.argv[3:] if a != "--invalid"]
        for name in files:
            errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(name))))
            if ("--invalid" in sys.argv) != bool(errors):
                raise SystemExit(f"{name}: " + (errors[0].message if errors else "valid, expected refused"))
        print("ok")
    elif cmd == "parse":
        statements(open(sys.argv[2]).read(), sys.argv[sys.argv.index("--read") + 1])
        print("ok")

if __name__ == "__main__":
    main()

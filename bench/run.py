#!/usr/bin/env python3
"""latchkey benchmark: the release server pinned to one core, wrk pinned to another.

Prints a table of throughput, memory and start-up figures, each beside the limit this machine
reaches on the same core (OpenSSL RSA-2048 signs/s, argon2id hashes/s with the configured
parameters). Not a test: it asserts nothing, it measures. Usage: bench/run.sh
"""
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "latchkey")
LUA = os.path.join(ROOT, "bench", "lua")
SERVER_CPU = os.environ.get("LK_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("LK_LOAD_CPU", "1")
SECS = int(os.environ.get("LK_BENCH_SECS", "10"))
REDIRECT = "http://127.0.0.1:9/cb"
PASSWORD = "bench password 123"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(data, *args, env=None):
    out = subprocess.run(["taskset", "-c", LOAD_CPU, BIN, "--data-dir", data, "--json", *args],
                         check=True, capture_output=True, text=True, env={**os.environ, **(env or {})}).stdout
    return json.loads(out.strip().splitlines()[-1])


class Server:
    def __init__(self, data, port, config=None, env=None, cpu=SERVER_CPU):
        self.port = port
        env = dict(os.environ, LATCHKEY_LOG__LEVEL="warn", **(env or {}))
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpu, BIN, *(["--config", config] if config else []), "--data-dir", data, "serve",
             "--bind", f"127.0.0.1:{port}", "--issuer", f"http://127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, env=env)
        while True:
            try:
                status, _, _ = self.http("GET", "/.well-known/openid-configuration")
                if status == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - t0 > 30:
                raise SystemExit("latchkey did not answer within 30 s")
            time.sleep(0.0005)
        self.first_answer_ms = (time.perf_counter() - t0) * 1000

    def http(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read().decode()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def rss_kib(self, field="VmRSS"):
        # taskset execs latchkey, so the pid is the server's.
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def cookie_of(headers, name):
    m = re.search(name + r"=([^;]+)", headers.get("set-cookie", ""))
    return m.group(1) if m else None


def sign_in_tokens(server, client_id, basic, n):
    """One password sign-in, then n-1 single sign-on code exchanges: n refresh tokens."""
    q = urllib.parse.urlencode({"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
                                "scope": "openid profile offline_access"})
    status, h, _ = server.http("GET", "/authorize?" + q)
    browser = cookie_of(h, "lk_browser")
    cookies = {"Cookie": f"lk_browser={browser}"}
    _, _, page = server.http("GET", h["location"], cookies)
    req = re.search(r'name="request" value="([^"]+)"', page).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"request": req, "csrf": csrf, "username": "bench", "password": PASSWORD})
    status, h, _ = server.http("POST", "/login", {**cookies, "Content-Type": "application/x-www-form-urlencoded"}, form)
    session = cookie_of(h, "lk_session")
    tokens = []
    location = h["location"]
    for i in range(n):
        if i:
            _, h, _ = server.http("GET", "/authorize?" + q, {"Cookie": f"lk_browser={browser}; lk_session={session}"})
            location = h["location"]
        code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)["code"][0]
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
        status, _, resp = server.http("POST", "/token", {"Authorization": "Basic " + basic,
                                                         "Content-Type": "application/x-www-form-urlencoded"}, body)
        assert status == 200, resp
        tokens.append(json.loads(resp))
    return tokens


def db_bytes(data):
    """(bytes of database pages in use, as SQLite sees them including the WAL; bytes of the
    database, WAL and SHM files on disk)."""
    db = sqlite3.connect(f"file:{os.path.join(data, 'latchkey.db')}?mode=ro", uri=True)
    try:
        pages, free, page_size = (db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
    finally:
        db.close()
    files = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data) if f.startswith("latchkey.db"))
    return (pages - free) * page_size, files


def table_bytes(data):
    """Bytes of pages each table uses, its indexes included (SQLite's dbstat), and how many
    sign-in log rows there are."""
    db = sqlite3.connect(f"file:{os.path.join(data, 'latchkey.db')}?mode=ro", uri=True)
    try:
        owner = dict(db.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')"))
        sizes = {}
        for name, size in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            sizes[table] = sizes.get(table, 0) + size
        signins = db.execute("SELECT count(*) FROM signin_log").fetchone()[0]
    finally:
        db.close()
    return sizes, signins


# How long housekeeping keeps what a sign-in writes, in days (README: Operating latchkey):
# logs for log.retention_days, sessions 12 h plus a week, codes a day past expiry, refresh-token
# families their 30 days, grants without one only minutes.
KEPT_DAYS = {"signin_log": 30, "audit_log": 30, "sessions": 7.5, "session_apps": 7.5, "authorization_codes": 1,
             "signin_history": 30, "grants": 30, "refresh_tokens": 30}


def steady_state(before, after):
    """Bytes per sign-in by table, measured, and the database size they add up to for 1000 people
    signing in once a day, each day's rows kept as long as housekeeping keeps them."""
    (b, nb), (a, na) = before, after
    n = max(na - nb, 1)
    per = {t: (a.get(t, 0) - b.get(t, 0)) / n for t in a if a.get(t, 0) > b.get(t, 0)}
    total = sum(per.get(t, 0) * days * 1000 for t, days in KEPT_DAYS.items())
    return per, n, total


def pending_row_bytes(data, where="1"):
    """Average bytes of pending sign-in rows' values (id, browser hash, CSRF token, flow JSON, IP)."""
    db = sqlite3.connect(f"file:{os.path.join(data, 'latchkey.db')}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT COUNT(*), AVG(length(id) + length(browser_hash) + length(csrf_token) + length(params) + length(ip))"
                         " FROM auth_requests WHERE " + where).fetchone()
        return row[0], row[1] or 0
    finally:
        db.close()


def anonymous_growth(server, data, spread):
    """1000 anonymous GET /login (each parks a pending sign-in): from one IP, or from 1000 IPs
    (X-Forwarded-For through the trusted loopback proxy). Returns statuses, growth of the pages in
    use and of the files."""
    time.sleep(0.5)
    before = db_bytes(data)
    statuses = {}
    for i in range(1000):
        headers = {"X-Forwarded-For": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"} if spread else {"X-Forwarded-For": "192.0.2.77"}
        status, _, _ = server.http("GET", "/login", headers)
        statuses[status] = statuses.get(status, 0) + 1
    after = db_bytes(data)
    return statuses, after[0] - before[0], after[1] - before[1]


def wrk(server, script, threads, conns, env, cpu=LOAD_CPU):
    cmd = ["taskset", "-c", cpu, "wrk", f"-t{threads}", f"-c{conns}", f"-d{SECS}s", "--latency",
           "-s", os.path.join(LUA, script), f"http://127.0.0.1:{server.port}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "LK_LUA": LUA, **env}).stdout
    m = re.search(r"LK_RESULT ok=(\d+) bad=(\d+) secs=([\d.]+) p99_ms=([\d.]+)", out)
    if not m:
        raise SystemExit("wrk printed no result:\n" + out)
    ok, bad, secs, p99 = int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4))
    return ok / secs, bad, p99


def rsa_limit():
    out = subprocess.run(["taskset", "-c", SERVER_CPU, "openssl", "speed", "-seconds", "3", "rsa2048"],
                         check=True, capture_output=True, text=True).stdout
    line = [l for l in out.splitlines() if l.startswith("rsa 2048")][-1].split()
    return float(line[5])


def ecdsa_limit():
    out = subprocess.run(["taskset", "-c", SERVER_CPU, "openssl", "speed", "-seconds", "3", "ecdsap256"],
                         check=True, capture_output=True, text=True).stdout
    line = [l for l in out.splitlines() if "ecdsa (nistp256)" in l][-1].split()
    return float(line[-2])


def argon_limit(data):
    argon = subprocess.run(["taskset", "-c", SERVER_CPU, BIN, "--data-dir", data, "--json", "bench-argon2", "--seconds", "3"],
                           check=True, capture_output=True, text=True).stdout
    return json.loads(argon)["argon2id_hashes_per_sec"]


def machine_limits(data):
    return rsa_limit(), argon_limit(data)


PG_URL = os.environ.get("LK_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")


def engines(rsa_signs, argon_rate):
    """client_credentials, refresh and password sign-ins on SQLite (one instance), PostgreSQL (one
    instance) and PostgreSQL (two instances, one per core, a wrk per instance beside it). The
    PostgreSQL server runs on the same two cores."""
    if subprocess.run(["pg_isready", "-q", "-d", PG_URL]).returncode != 0:
        return [f"PostgreSQL does not answer at {PG_URL}: the engine comparison was skipped."]
    base = PG_URL.rsplit("/", 1)[0]
    rows = []
    for name, instances, pg in (("SQLite, one instance", 1, False), ("PostgreSQL, one instance", 1, True),
                                ("PostgreSQL, two instances", 2, True)):
        data = tempfile.mkdtemp(prefix="latchkey-bench-engine-")
        db = f"lk_bench_{os.getpid()}"
        env = {}
        if pg:
            subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {db}"], check=True)
            subprocess.run(["psql", PG_URL, "-qc", f"CREATE DATABASE {db}"], check=True)
            env = {"LATCHKEY_DATABASE__URL": f"{base}/{db}", "LATCHKEY_KEYS__ENCRYPTION_SECRET": "bench secret"}
        try:
            cli(data, "policy", "security-defaults", "off", env=env)
            cli(data, "user", "add", "--username", "bench", "--password", PASSWORD, env=env)
            app = cli(data, "client", "add", "--name", "Bench app", "--redirect-uri", REDIRECT, env=env)
            svc = cli(data, "client", "add", "--name", "Bench service", "--grant-type", "client_credentials", env=env)
            b64 = __import__("base64").b64encode
            app_basic = b64(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
            svc_basic = b64(f"{svc['client_id']}:{svc['client_secret']}".encode()).decode()
            cpus = [SERVER_CPU] if instances == 1 else [SERVER_CPU, LOAD_CPU]
            servers = []
            for i, cpu in enumerate(cpus):
                d = data if i == 0 else tempfile.mkdtemp(prefix="latchkey-bench-engine-", dir=data)
                servers.append(Server(d, free_port(), env=env, cpu=cpu))
            tokens = sign_in_tokens(servers[0], app["client_id"], app_basic, 64 * instances + 1)
            auth_q = urllib.parse.urlencode({"client_id": app["client_id"], "redirect_uri": REDIRECT,
                                             "response_type": "code", "scope": "openid"})
            envs = []
            for i, server in enumerate(servers):
                token_file = os.path.join(data, f"refresh_tokens_{i}.txt")
                with open(token_file, "w") as f:
                    f.write("\n".join(t["refresh_token"] for t in tokens[1 + 64 * i:1 + 64 * (i + 1)]) + "\n")
                envs.append({"LK_APP_BASIC": app_basic, "LK_CC_BASIC": svc_basic, "LK_ACCESS_TOKEN": tokens[0]["access_token"],
                             "LK_REFRESH_TOKENS": token_file, "LK_AUTHORIZE_PATH": "/authorize?" + auth_q,
                             "LK_REDIRECT_ENC": urllib.parse.quote(REDIRECT, safe=""),
                             "LK_PASSWORD_ENC": urllib.parse.quote_plus(PASSWORD)})
            result = {}
            for scenario, script, threads, conns in (("client_credentials", "client_credentials.lua", 1, 16),
                                                     ("refresh", "refresh.lua", 1, 16), ("signin", "signin.lua", 4, 4)):
                # One wrk per instance, at once, each on the other core (two instances) or CPU 1.
                outs = [None] * len(servers)

                def load(i):
                    cpu = LOAD_CPU if len(servers) == 1 else cpus[1 - i]
                    outs[i] = wrk(servers[i], script, threads, conns, envs[i], cpu=cpu)

                threads_ = [threading.Thread(target=load, args=(i,)) for i in range(len(servers))]
                for t in threads_:
                    t.start()
                for t in threads_:
                    t.join()
                result[scenario] = (sum(o[0] for o in outs), sum(o[1] for o in outs))
            for server in servers:
                server.stop()
            rows.append((name, result))
        finally:
            shutil.rmtree(data, ignore_errors=True)
            if pg:
                subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])
    sqlite = rows[0][1]
    lines = ["| engine | client_credentials /s | refresh /s | password sign-ins /s | non-200 |", "|---|---|---|---|---|"]
    for name, r in rows:
        rel = lambda k: "" if r is sqlite else f" ({100 * r[k][0] / sqlite[k][0]:.0f}% of SQLite)"
        lines.append(f"| {name} | {r['client_credentials'][0]:.0f}{rel('client_credentials')} | {r['refresh'][0]:.0f}{rel('refresh')} "
                     f"| {r['signin'][0]:.1f}{rel('signin')} | {sum(v[1] for v in r.values())} |")
    lines.append(f"Machine limits on one core, same run: {rsa_signs:.0f} RSA-2048 signs/s, {argon_rate:.1f} argon2id hashes/s. "
                 "Goal: PostgreSQL one instance ≥ 70% of SQLite's refresh and sign-in rates; client credentials unaffected.")
    return lines


def main():
    if os.environ.get("LK_BENCH_ONLY") == "engines":
        rsa_signs, argon_rate = machine_limits(tempfile.mkdtemp(prefix="latchkey-bench-"))
        print("\n".join(engines(rsa_signs, argon_rate)))
        return
    for tool in ("wrk", "taskset", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (bench/run.sh installs it)")
    data = tempfile.mkdtemp(prefix="latchkey-bench-")
    try:
        rsa_signs, argon_rate = machine_limits(data)
        port = free_port()
        first = Server(data, port)  # empty data dir: migrations, key generation, first admin
        cold_ms = first.first_answer_ms
        first.stop()
        # A password sign-in is what is measured: security defaults would first ask the bench user
        # to register MFA (skippable for 14 days), which is another page, not another hash.
        cli(data, "policy", "security-defaults", "off")
        cli(data, "user", "add", "--username", "bench", "--password", PASSWORD)
        app = cli(data, "client", "add", "--name", "Bench app", "--redirect-uri", REDIRECT)
        svc = cli(data, "client", "add", "--name", "Bench service", "--grant-type", "client_credentials")
        app_basic = __import__("base64").b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
        svc_basic = __import__("base64").b64encode(f"{svc['client_id']}:{svc['client_secret']}".encode()).decode()

        server = Server(data, port)
        warm_ms = server.first_answer_ms
        time.sleep(1)
        idle_kib = server.rss_kib()
        tokens = sign_in_tokens(server, app["client_id"], app_basic, 64)
        token_file = os.path.join(data, "refresh_tokens.txt")
        with open(token_file, "w") as f:
            f.write("\n".join(t["refresh_token"] for t in tokens[1:]) + "\n")
        access = tokens[0]["access_token"]

        peak = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], server.rss_kib())
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        common = {"LK_APP_BASIC": app_basic, "LK_CC_BASIC": svc_basic, "LK_ACCESS_TOKEN": access,
                  "LK_REFRESH_TOKENS": token_file}
        auth_q = urllib.parse.urlencode({"client_id": app["client_id"], "redirect_uri": REDIRECT,
                                         "response_type": "code", "scope": "openid"})
        results = {
            "client_credentials": wrk(server, "client_credentials.lua", 1, 16, common),
            "refresh": wrk(server, "refresh.lua", 1, 16, common),
        }
        # This machine's limits drift from minute to minute (shared hardware): measure them again
        # next to the scenarios they bound and keep the higher figure, so ratios are not flattered.
        rsa_signs = max(rsa_signs, rsa_limit())
        before_signins = table_bytes(data)
        results.update({
            "signin": wrk(server, "signin.lua", 4, 4, {**common, "LK_AUTHORIZE_PATH": "/authorize?" + auth_q,
                                                       "LK_REDIRECT_ENC": urllib.parse.quote(REDIRECT, safe=""),
                                                       "LK_PASSWORD_ENC": urllib.parse.quote_plus(PASSWORD)}),
        })
        per_signin, signins_measured, steady = steady_state(before_signins, table_bytes(data))
        argon_rate = max(argon_rate, argon_limit(data))
        results.update({
            "userinfo": wrk(server, "bearer.lua", 1, 32, {**common, "LK_MODE": "userinfo"}),
            "introspect": wrk(server, "bearer.lua", 1, 32, {**common, "LK_MODE": "introspect"}),
            # The floor: the rate this core answers a request that does no work (a cached JWK Set).
            "floor": wrk(server, "bearer.lua", 1, 32, {**common, "LK_MODE": "floor"}),
        })
        ecdsa_signs = ecdsa_limit()
        stop.set()
        sampler.join()
        hwm_kib = server.rss_kib("VmHWM")
        server.stop()

        # Access tokens signed with ES256 (tokens.access_token_alg): a grant costs a P-256 signature.
        es_conf = os.path.join(data, "es256.toml")
        with open(es_conf, "w") as f:
            f.write('[tokens]\naccess_token_alg = "ES256"\n')
        server = Server(data, port, es_conf)
        results["client_credentials_es256"] = wrk(server, "client_credentials.lua", 1, 16, common)
        server.stop()

        # Anonymous requests must not grow the database. A fresh data directory (no free pages to
        # reuse: the worst case) and a server that trusts loopback as a proxy, so one process can
        # play one client or a thousand.
        fresh = os.path.join(data, "anonymous")
        os.makedirs(fresh)
        proxy_conf = os.path.join(data, "proxy.toml")
        with open(proxy_conf, "w") as f:
            f.write('[server]\ntrusted_proxies = ["127.0.0.1"]\n')
        server = Server(fresh, port, proxy_conf)
        client = cli(fresh, "client", "add", "--name", "Bench app", "--redirect-uri", REDIRECT)
        q = urllib.parse.urlencode({"client_id": client["client_id"], "redirect_uri": REDIRECT, "response_type": "code",
                                    "scope": "openid profile", "state": "af0ifjsldkj", "nonce": "n-0S6_WzA2Mj",
                                    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWPkwD5bE-cM8", "code_challenge_method": "S256"})
        status, _, _ = server.http("GET", "/authorize?" + q)
        assert status == 303, status
        _, app_row_bytes = pending_row_bytes(fresh, "params LIKE '%af0ifjsldkj%'")
        growth_one_ip = anonymous_growth(server, fresh, spread=False)
        growth_spread = anonymous_growth(server, fresh, spread=True)
        rows, row_bytes = pending_row_bytes(fresh, "ip LIKE '10.%'")
        server.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)

    def row(name, value, unit, limit, goal, met, errors=None):
        err = "" if errors is None else f"{errors}"
        return f"| {name} | {value} {unit} | {limit} | {goal} | {'yes' if met else '**no**'} | {err} |"

    cc, refresh, signin, ui, intro, cc_es, floor = (results[k] for k in ("client_credentials", "refresh", "signin", "userinfo", "introspect",
                                                                          "client_credentials_es256", "floor"))
    # An ES256 grant can go no faster than a request that does nothing plus one P-256 signature.
    es_bound = 1 / (1 / floor[0] + 1 / ecdsa_signs)
    lines = [
        f"latchkey benchmark — server on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}, {SECS} s per scenario, "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs",
        "",
        "| measure | result | machine limit (same core) | goal | met | non-200 |",
        "|---|---|---|---|---|---|",
        row("client_credentials grants (RS256)", f"{cc[0]:.0f}", "/s", f"{rsa_signs:.0f} RSA-2048 signs/s",
            f"≥ 85% of limit ({0.85 * rsa_signs:.0f}/s); got {100 * cc[0] / rsa_signs:.0f}%", cc[0] >= 0.85 * rsa_signs, cc[1]),
        row("client_credentials grants (ES256 access tokens)", f"{cc_es[0]:.0f}", "/s",
            f"{ecdsa_signs:.0f} P-256 signs/s; with the floor, at most {es_bound:.0f}/s",
            f"≥ 10000/s; got {100 * cc_es[0] / es_bound:.0f}% of the bound", cc_es[0] >= 10000, cc_es[1]),
        row("refresh-token grants", f"{refresh[0]:.0f}", "/s", f"{rsa_signs:.0f} RSA-2048 signs/s", "≥ 1500/s", refresh[0] >= 1500, refresh[1]),
        row("password sign-ins (authorize→login→code→token)", f"{signin[0]:.1f}", "/s", f"{argon_rate:.1f} argon2id hashes/s",
            f"≥ 85% of limit ({0.85 * argon_rate:.1f}/s); got {100 * signin[0] / argon_rate:.0f}%", signin[0] >= 0.85 * argon_rate, signin[1]),
        row("userinfo", f"{ui[0]:.0f}", "/s", f"floor {floor[0]:.0f}/s", f"≥ 15000/s; got {100 * ui[0] / floor[0]:.0f}% of the floor", ui[0] >= 15000, ui[1]),
        row("introspection", f"{intro[0]:.0f}", "/s", f"floor {floor[0]:.0f}/s", f"≥ 15000/s; got {100 * intro[0] / floor[0]:.0f}% of the floor", intro[0] >= 15000, intro[1]),
        row("the floor: GET /jwks (no database, no signature)", f"{floor[0]:.0f}", "/s", "—", "reported", True, floor[1]),
        row("RSS idle", f"{idle_kib / 1024:.1f}", "MiB", "—", "≤ 30 MiB", idle_kib <= 30 * 1024),
        row("RSS under load (peak sampled / VmHWM)", f"{peak[0] / 1024:.1f} / {hwm_kib / 1024:.1f}", "MiB", "—", "reported", True),
        row("first answer after start (existing data)", f"{warm_ms:.0f}", "ms", "—", "≤ 100 ms", warm_ms <= 100),
        row("first answer after start (empty data dir: keygen)", f"{cold_ms:.0f}", "ms", "—", "reported", True),
        "",
        "| anonymous requests | answers | database growth (pages in use) | files growth (db + WAL + SHM) |",
        "|---|---|---|---|",
        *(f"| 1000 GET /login from {who} | {', '.join(f'{n}× {s}' for s, n in sorted(st.items()))} | {used / 1024:.0f} KiB | {files / 1024:.0f} KiB |"
          for who, (st, used, files) in (("one IP", growth_one_ip), ("1000 IPs", growth_spread))),
        "",
        f"Fresh data directory. A pending sign-in row holds {row_bytes:.0f} bytes of values for /login (average of {rows}), "
        f"{app_row_bytes:.0f} for an app's /authorize request (PKCE, state, nonce); one client may hold 50 open. "
        "The WAL file is rewritten from its start after each checkpoint (every 1000 pages, ≈4 MiB): its size is a bound, not cumulative.",
        "",
        f"Database bytes per password sign-in (over {signins_measured} sign-ins of the scenario, indexes included): "
        + ", ".join(f"{t} {v:.0f}" for t, v in sorted(per_signin.items(), key=lambda kv: -kv[1])) + ".",
        f"Steady state for 1000 people signing in once a day, each row kept as long as housekeeping keeps it: "
        f"≈ {steady / 1024 / 1024:.1f} MiB.",
        "",
        *engines(rsa_signs, argon_rate),
    ]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "out", "results.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())

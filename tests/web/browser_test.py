#!/usr/bin/python3
"""The web console in a real browser (Debian's headless Chromium through chromedriver).

Against the PostgreSQL named by QUEUER_DB_* and in a schema of its own, with the real queuerd
(example plugin) and the real queuerctl:

  1. load the overview and wait for the live connection;
  2. add a job with `queuerctl add job` and see it appear on the overview without a reload;
  3. open its detail page from the overview, cancel it from the page (dialog, token from the
     URL's #token=), see CANCELLED on the page and in the database;
  4. check that a task name holding markup shows as text and runs nothing;
  5. take a screenshot of each page (1280 px wide, and the overview at phone width, where the
     page must not scroll sideways).

Every wait is bounded and says what did not happen. Exit 0 = passed, 1 = failed, 77 = the
browser is not installed (skipped; QUEUER_REQUIRE_BROWSER=1, set by scripts/test, turns that
into a failure).

  tests/web/browser_test.py --build-dir build/test [--screenshots DIR]

scripts/web-screenshots runs it with --screenshots docs/web (the README's pictures).
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
OVERALL_TIMEOUT_S = 420


class Failure(Exception):
    pass


def log(msg):
    print(f"browser_test: {msg}", file=sys.stderr, flush=True)


def missing_tools():
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("chromium")
    if not os.access(CHROMEDRIVER, os.X_OK):
        missing.append("chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    return missing


class Cluster:
    """A schema of its own, queuerd, and queuerctl calls against it."""

    def __init__(self, build_dir, workdir):
        self.build = build_dir
        self.work = workdir
        self.schema = "web_browser_" + secrets.token_hex(4)
        self.env = dict(os.environ, QUEUER_DB_SCHEMA=self.schema, NO_COLOR="1")
        self.env.pop("QUEUERD_WEB_TOKEN", None)
        self.env.pop("QUEUER_ENCRYPTION_KEY", None)
        self.procs = []

    def ctl(self, *args, check=True, timeout=60, stdin=None):
        r = subprocess.run([f"{self.build}/cli/queuerctl", *args], env=self.env,
                           capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and r.returncode != 0:
            raise Failure(f"queuerctl {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return r

    def add(self, task, params="[]", options=None):
        args = ["add", "job", "--task", task, "--params", params, "--json"]
        if options:
            args += ["--options", options]
        return json.loads(self.ctl(*args).stdout)["rid"]

    def start_daemon(self):
        cfg = os.path.join(self.work, "queuerd.yaml")
        with open(cfg, "w") as f:
            f.write(f"""worker:
  name: web-demo-1
  max_concurrency: 3
  heartbeat_interval: 1s
  poll_interval: 1s
  shutdown_grace: 2s
  isolation: thread
plugins:
  - path: {self.build}/plugins/examples/libqueuer_examples.so
master:
  master_lock_timeout: 30s
  master_poll_interval: 5s
  worker_stale_threshold: 30s
  retention_archive: 30d
logging:
  level: info
""")
        logf = open(os.path.join(self.work, "queuerd.log"), "w")
        p = subprocess.Popen([f"{self.build}/daemon/queuerd", "--config", cfg], env=self.env,
                             stdout=logf, stderr=subprocess.STDOUT)
        self.procs.append(p)
        wait_for(lambda: "ready: worker" in read(os.path.join(self.work, "queuerd.log")), 60,
                 "queuerd did not say 'ready: worker' within 60 s (see queuerd.log)")

    def start_web(self, token):
        env = dict(self.env, QUEUERD_WEB_TOKEN=token)
        out = open(os.path.join(self.work, "web.out"), "w")
        err = open(os.path.join(self.work, "web.err"), "w")
        p = subprocess.Popen([f"{self.build}/cli/queuerctl", "web", "--listen", "127.0.0.1:0"],
                             env=env, stdout=out, stderr=err)
        self.procs.append(p)
        url = []

        def started():
            if p.poll() is not None:
                raise Failure(f"queuerctl web exited {p.returncode}: "
                              f"{read(os.path.join(self.work, 'web.err'))}")
            m = re.search(r"at (http://\S+/)", read(os.path.join(self.work, "web.out")))
            if m:
                url.append(m.group(1))
            return bool(url)

        wait_for(started, 60, "queuerctl web printed no start line within 60 s")
        return url[0], p

    def psql(self, sql):
        env = dict(self.env, PGHOST=self.env.get("QUEUER_DB_HOST", "localhost"),
                   PGPORT=self.env.get("QUEUER_DB_PORT", "5432"),
                   PGDATABASE=self.env.get("QUEUER_DB_DATABASE", "postgres"),
                   PGUSER=self.env.get("QUEUER_DB_USERNAME", "postgres"),
                   PGPASSWORD=self.env.get("QUEUER_DB_PASSWORD", ""))
        return subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env,
                              capture_output=True, text=True, timeout=60)

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.psql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for(cond, seconds, message, interval=0.2):
    end = time.monotonic() + seconds
    while True:
        if cond():
            return
        if time.monotonic() >= end:
            raise Failure(message)
        time.sleep(interval)


def seed(c):
    """A little history, so that every page has something to show: jobs the example plugin runs
    (echo, fail, spawn, sleep) and jobs of tasks no worker offers, which stay queued."""
    lines = [json.dumps({"task": "echo", "parameters": [f"order-{1000 + i}", {"total": 12.5 * i}]})
             for i in range(30)]
    lines += [json.dumps({"task": "fail", "parameters": [f"upstream timeout after 30 s (order-{i})"]})
              for i in range(3)]
    lines += [json.dumps({"task": "email.send", "parameters": [f"user{i}@example.com", "welcome"]})
              for i in range(24)]
    lines += [json.dumps({"task": "image.resize", "parameters": [f"photos/{i}.jpg", 640]})
              for i in range(12)]
    c.ctl("add", "jobs", "--file", "-", stdin="\n".join(lines) + "\n")
    for _ in range(2):
        c.add("spawn")
    c.add("sleep", "[600000]")
    c.add("sleep", "[600000]")
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 3600))
    c.add("echo", '[1, "later"]', '{"schedule":{"start":"%s","max_count":1}}' % later)
    c.add("report.monthly", '["2026-11"]')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--screenshots", help="directory for the PNGs (default: BUILD/web-screenshots)")
    args = ap.parse_args()
    build = os.path.abspath(args.build_dir)
    shots = os.path.abspath(args.screenshots or os.path.join(build, "web-screenshots"))

    missing = missing_tools()
    if missing:
        msg = f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})"
        if os.environ.get("QUEUER_REQUIRE_BROWSER") == "1":
            log("FAILED: " + msg)
            return 1
        log("SKIPPED: " + msg)
        return SKIP
    if not os.environ.get("QUEUER_DB_HOST"):
        log("FAILED: QUEUER_DB_HOST is not set (run through ctest / scripts/test)")
        return 1

    def overall_timeout(signum, frame):
        raise Failure(f"the browser test did not finish within {OVERALL_TIMEOUT_S} s")

    signal.signal(signal.SIGALRM, overall_timeout)
    signal.alarm(OVERALL_TIMEOUT_S)

    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    work = tempfile.mkdtemp(prefix="queuer-browser.")
    c = Cluster(build, work)
    driver = None
    status = 1
    try:
        c.ctl("migrate")
        c.start_daemon()
        seed(c)
        # Let the daemon work through the history (the two sleeps keep running).
        wait_for(lambda: c.psql(f"SELECT count(*) FROM {c.schema}.job WHERE status = 'QUEUED' "
                                "AND task_name IN ('echo', 'fail', 'spawn', 'sleep')"
                                ).stdout.strip() == "0",
                 90, "queuerd did not claim the seeded echo/fail/spawn/sleep jobs within 90 s")

        token = secrets.token_hex(16)
        url, web = c.start_web(token)
        log(f"console at {url}")

        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        profile = tempfile.mkdtemp(prefix="chromium.", dir=work)
        for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--force-color-profile=srgb",
                  f"--user-data-dir={profile}", "--window-size=1280,900"]:
            opts.add_argument(a)
        service = Service(CHROMEDRIVER, log_output=os.path.join(work, "chromedriver.log")) \
            if "log_output" in Service.__init__.__code__.co_varnames \
            else Service(CHROMEDRIVER, log_path=os.path.join(work, "chromedriver.log"))
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=service, options=opts)
        driver.set_page_load_timeout(60)
        driver.set_window_size(1280, 900)

        def wait(cond, seconds, message):
            try:
                WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda d: cond())
            except TimeoutException:
                raise Failure(message) from None

        def css(sel):
            return driver.find_elements(By.CSS_SELECTOR, sel)

        def shot(name, max_height=1500):
            """The whole page (up to max_height px), at the window's width."""
            os.makedirs(shots, exist_ok=True)
            path = os.path.join(shots, name)
            size = driver.get_window_size()
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(size["width"], max(600, min(height, max_height)))
            time.sleep(0.3)
            driver.save_screenshot(path)
            driver.set_window_size(size["width"], size["height"])
            log(f"screenshot {path}")

        def js_errors():
            try:
                return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            except Exception:
                return []

        # 1. The overview, live.
        driver.get(url + "#token=" + token)
        wait(lambda: css("#conn[data-state=live]"), 30,
             "the overview did not connect to /events within 30 s (no live updates)")
        if "#token" in driver.current_url:
            raise Failure("the token stayed in the address bar: " + driver.current_url)
        driver.execute_script("window.__marker = 42;")

        # 2. A job added from the shell appears without a reload.
        rid = c.add("invoice.render", '["INV-2026-0042", {"pages": 3}]')
        log(f"added job {rid}")
        wait(lambda: css(f'#latest tr[data-rid="{rid}"]'), 30,
             f"job {rid} did not appear on the overview within 30 s of 'queuerctl add job' "
             "(live updates do not reach the page)")
        if driver.execute_script("return window.__marker") != 42:
            raise Failure("the overview was reloaded instead of updated in place")
        refreshes = int(driver.execute_script("return document.body.dataset.refreshes"))
        if refreshes < 1:
            raise Failure("the job appeared but the live region was never refreshed?")

        time.sleep(1)  # let the ages tick once before the picture
        shot("overview.png")

        # 4. Markup in a task name or a parameter is text, on the overview and the detail page.
        xss_task = '<img src=x onerror="window.__xss=1">'
        xss_rid = c.add(xss_task, '["<script>window.__xss=2</script>"]')
        wait(lambda: css(f'#latest tr[data-rid="{xss_rid}"]'), 30,
             f"job {xss_rid} did not appear on the overview within 30 s")
        if xss_task not in driver.find_element(By.ID, "live").text:
            raise Failure("the task name holding markup is not shown as text on the overview")
        driver.get(url + "job/" + xss_rid)
        wait(lambda: css("h1 .st-queued"), 30, f"the detail page of {xss_rid} does not show QUEUED")
        if "<script>window.__xss=2</script>" not in driver.find_element(By.ID, "live").text:
            raise Failure("the parameter holding markup is not shown as text on the detail page")
        if driver.execute_script("return window.__xss") is not None:
            raise Failure("markup from a task name or a parameter ran in the page")
        if css('#live img[src="x"]') or css("#live script"):
            raise Failure("markup from a task name or a parameter became an element")
        c.ctl("cancel", "job", "--rid", xss_rid)
        c.ctl("delete", "job", "--rid", xss_rid)  # out of the pictures
        driver.get(url)
        wait(lambda: css(f'#latest tr[data-rid="{rid}"]'), 30, "the overview lost the job")

        # 3. Its detail page, from the overview; cancel it there.
        css(f'#latest tr[data-rid="{rid}"] a.rid')[0].click()
        wait(lambda: driver.current_url.endswith("/job/" + rid), 30,
             f"clicking the job on the overview did not open /job/{rid}")
        wait(lambda: css("h1 .st-queued"), 30, f"the detail page of {rid} does not show QUEUED")
        if "INV-2026-0042" not in driver.find_element(By.ID, "live").text:
            raise Failure("the detail page does not show the job's parameters")
        buttons = [b for b in css("button[data-action]") if b.text.strip() == "Cancel job"]
        if not buttons:
            raise Failure("the detail page of a queued job has no 'Cancel job' button")
        buttons[0].click()
        wait(lambda: driver.execute_script("return document.getElementById('dlg').open"), 10,
             "clicking 'Cancel job' opened no confirmation dialog")
        if driver.find_element(By.ID, "dlg-token").is_displayed():
            raise Failure("the dialog asks for the token although the URL carried it")
        driver.find_element(By.ID, "dlg-ok").click()
        wait(lambda: css("h1 .st-cancelled"), 30,
             f"job {rid} was not shown CANCELLED within 30 s of confirming the cancel")
        got = json.loads(c.ctl("get", "jobArchive", "--rid", rid, "--json").stdout)
        if got["status"] != "CANCELLED":
            raise Failure(f"the page says CANCELLED but the archive says {got['status']}")
        log(f"job {rid} cancelled from the page")

        # 5. The other pages.
        driver.get(url + "jobs")
        wait(lambda: css("table.jobs tbody tr"), 30, "the jobs page lists no jobs")
        shot("jobs.png", 1000)
        driver.get(url + "archive")
        wait(lambda: css("table.jobs tbody tr"), 30, "the archive page lists no jobs")
        shot("archive.png", 1000)
        # A bulk retry from the page: it counts first, then queues the failed jobs again.
        driver.get(url + "archive?status=FAILED&task=fail")
        wait(lambda: len(css("td.err")) == 3, 30, "the archive filtered on FAILED does not show "
             "the 3 failed jobs with their error")
        css("button[data-bulk]")[0].click()
        wait(lambda: driver.execute_script("return document.getElementById('dlg').open"), 30,
             "'Retry matching' opened no dialog")
        text = driver.find_element(By.ID, "dlg-text").text
        if "3 jobs would be queued again" not in text:
            raise Failure(f"the bulk retry dialog does not give the count: {text!r}")
        driver.find_element(By.ID, "dlg-ok").click()
        wait(lambda: "Queued again 3 jobs" in driver.find_element(By.ID, "toast").text, 30,
             "the bulk retry did not report 'Queued again 3 jobs'")
        wait(lambda: c.psql(f"SELECT (SELECT count(*) FROM {c.schema}.job WHERE task_name = 'fail')"
                            f" + (SELECT count(*) FROM {c.schema}.job_archive WHERE task_name = "
                            "'fail')").stdout.strip() == "6", 30,
             "the bulk retry did not add 3 new 'fail' jobs")
        # A job with a parent and results: a spawned child.
        child = c.psql(f"SELECT rid FROM {c.schema}.job_archive WHERE options ->> 'parent_rid' "
                       "<> '' ORDER BY id LIMIT 1").stdout.strip()
        if not child:
            raise Failure("no spawned child job was archived (the spawn task did not run?)")
        driver.get(url + "job/" + child)
        wait(lambda: css("dl.facts a.rid"), 30, f"the detail page of child {child} shows no parent link")
        shot("job.png", 1300)
        driver.get(url + "workers")
        wait(lambda: "web-demo-1" in driver.find_element(By.ID, "live").text, 30,
             "the workers page does not show the running queuerd (web-demo-1)")
        shot("workers.png", 800)

        # A phone: the overview must not scroll sideways.
        driver.set_window_size(390, 844)
        driver.get(url)
        wait(lambda: css("#conn[data-state=live]"), 30, "the overview on a phone did not go live")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 1:
            raise Failure(f"at 390 px the overview is {overflow} px wider than the screen")
        shot("overview-phone.png")

        errors = js_errors()
        if errors:
            raise Failure("the browser logged errors: " + "; ".join(errors))
        status = 0
        log("PASSED")
    except Failure as e:
        log(f"FAILED: {e}")
        for name in ["web.err", "queuerd.log"]:
            text = read(os.path.join(work, name))
            if text:
                log(f"--- {name} (last lines) ---\n" + "\n".join(text.splitlines()[-25:]))
        if driver is not None:
            try:
                shot_path = os.path.join(shots, "failure.png")
                os.makedirs(shots, exist_ok=True)
                driver.save_screenshot(shot_path)
                log(f"the page at the failure: {driver.current_url}, screenshot {shot_path}")
            except Exception:
                pass
    finally:
        signal.alarm(0)
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        c.close()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Three notice-service nodes behind the shipped nginx configuration (issue #4, SPEC §3, §8).

Starts three real nodes (`.build/debug/notice-service`) on one PostgreSQL database and one
RabbitMQ, and nginx with deploy/nginx/notice.conf — only the marked lines replaced: upstream
servers, listen ports, server_name and a self-signed certificate made here. Then, through nginx
over TLS: users on different nodes each get exactly their notices, a broadcast reaches every
session, a SockJS xhr_streaming session works, TLS below 1.2 is refused, and after one node is
SIGKILLed its users reconnect and get everything published meanwhile, once.

Run by scripts/test (which installs nginx, python3-websocket, PostgreSQL and RabbitMQ and sets
NOTICE_TEST_POSTGRES_URL). Every wait is bounded; every process is stopped at the end.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid
import http.client

import websocket  # Debian python3-websocket

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.path.join(ROOT, ".build", "debug", "notice-service")
AMQP_URL = os.environ.get("NOTICE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get("NOTICE_TEST_POSTGRES_URL")
ORIGIN = "https://office.test"
TOKENS = {"alice": "1", "bob": "2", "carol": "3", "dave": "4", "erin": "5", "frank": "6"}
PUBLISHER = "svc"  # a dev token; dev tokens carry the publish scope


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def http_get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


# --- STOMP -----------------------------------------------------------------------------------

def stomp_frame(command, headers=None, body=""):
    lines = [command] + [f"{k}:{v}" for k, v in (headers or {}).items()]
    return "\n".join(lines) + "\n\n" + body + "\x00"


def stomp_parse(text):
    """Frames in `text` (heart-beat EOLs skipped) as (command, headers, body)."""
    frames = []
    for chunk in text.split("\x00"):
        chunk = chunk.lstrip("\r\n")
        if not chunk:
            continue
        head, _, body = chunk.partition("\n\n")
        lines = head.split("\n")
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers.setdefault(key, value)
        frames.append((lines[0], headers, body))
    return frames


class StompClient:
    """STOMP 1.2 over raw WebSocket through nginx."""

    def __init__(self, port, token, direct=False):
        """Through nginx (wss, /notice/ws), or `direct`ly to a node's /ws."""
        url = f"ws://127.0.0.1:{port}/ws" if direct else f"wss://127.0.0.1:{port}/notice/ws"
        context = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        self.ws = websocket.create_connection(url, sslopt=context, origin=ORIGIN, subprotocols=["v12.stomp"], timeout=30)
        self.pending = []
        self.ws.send(stomp_frame("CONNECT", {"accept-version": "1.2", "host": "office.test",
                                             "heart-beat": "0,0", "Authorization": f"Bearer {token}"}))
        command, headers, _ = self.next_frame()
        assert command == "CONNECTED", (command, headers)
        self.session = headers.get("session")

    def subscribe(self, destination):
        self.ws.send(stomp_frame("SUBSCRIBE", {"id": "s", "destination": destination, "receipt": "r"}))
        frames = []
        while True:
            frame = self.next_frame()
            if frame[0] == "RECEIPT":
                break
            frames.append(frame)
        self.pending = frames + self.pending

    def next_frame(self, timeout=30):
        if self.pending:
            return self.pending.pop(0)
        self.ws.settimeout(timeout)
        while True:
            frames = stomp_parse(self.ws.recv())
            if frames:
                self.pending.extend(frames[1:])
                return frames[0]

    def notice_ids(self, count=None, through=None, timeout=30):
        """notice-id of the next `count` MESSAGEs, or of every MESSAGE up to and including
        the one of notice `through`; fewer if they do not come within `timeout` seconds (a
        failure, never a verdict: there is no quiet window)."""
        ids = []
        deadline = time.monotonic() + timeout
        while (count is None or len(ids) < count) and (through is None or through not in ids):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                command, headers, _ = self.next_frame(timeout=left)
            except (websocket.WebSocketTimeoutException, socket.timeout):
                break
            if command == "MESSAGE":
                ids.append(headers["notice-id"])
        return ids

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


# --- the cluster -----------------------------------------------------------------------------

class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="notice-deploy-")
        self.run_id = uuid.uuid4().hex[:12]
        self.queue = f"test.deploy.{self.run_id}"
        self.exchange = f"test.deliver.{self.run_id}"
        self.database = f"deploy_{self.run_id}"
        self.nodes = {}
        self.nginx = None
        self.https_port = free_port()
        self.http_port = free_port()

    # PostgreSQL: a database of its own, dropped at the end.
    def database_url(self):
        parts = urllib.parse.urlsplit(POSTGRES_URL)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + self.database, parts.query, ""))

    def psql(self, sql):
        subprocess.run(["psql", POSTGRES_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True,
                       capture_output=True, timeout=30)

    def undelivered(self, users):
        """Rows of the nodes' database for a user that no session has been recorded to deliver,
        and users (of `users`) whose announcement mark has not reached the newest broadcast."""
        sql = ("SELECT (SELECT count(*) FROM notice_recipient WHERE recipient <> '' AND delivered_at IS NULL)"
               f" + {len(users)} - (SELECT count(*) FROM notice_announcement_delivered WHERE seq >="
               " (SELECT COALESCE(max(seq), 0) FROM notice_recipient WHERE recipient = ''))")
        result = subprocess.run(["psql", self.database_url(), "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                                check=True, capture_output=True, timeout=30, text=True)
        return int(result.stdout.strip())

    def start_node(self, name):
        port = self.nodes[name]["port"] if name in self.nodes else free_port()
        # The service refuses NOTICE_* settings it does not know: pass only the node's own.
        env = dict({k: v for k, v in os.environ.items() if not k.startswith("NOTICE_")},
                   NOTICE_HTTP_HOST="127.0.0.1", NOTICE_HTTP_PORT=str(port), NOTICE_NODE_ID=f"{name}-{self.run_id}",
                   NOTICE_AMQP_URL=AMQP_URL, NOTICE_AMQP_QUEUE=self.queue, NOTICE_AMQP_EXCHANGE=self.queue + ".direct",
                   NOTICE_AMQP_DELIVER_EXCHANGE=self.exchange, NOTICE_DB_URL=self.database_url(),
                   NOTICE_DEV_TOKENS=",".join(f"{t}:{u}" for t, u in TOKENS.items()) + f",{PUBLISHER}:publisher",
                   NOTICE_ALLOWED_ORIGINS=ORIGIN, NOTICE_LOG_LEVEL="warning")
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        process = subprocess.Popen([BINARY, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the child has its own descriptor
        self.nodes[name] = {"port": port, "process": process}
        wait_until(lambda: self.ready(name), 60, f"node {name} ready")

    def ready(self, name):
        if self.nodes[name]["process"].poll() is not None:
            raise AssertionError(f"node {name} exited: {self.tail(name)}")
        try:
            return http_get(self.nodes[name]["port"], "/health/ready")[0] == 200
        except OSError:
            return False

    def tail(self, name):
        with open(os.path.join(self.dir, f"{name}.log"), "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def start_nginx(self):
        key, cert = os.path.join(self.dir, "tls.key"), os.path.join(self.dir, "tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=office.test",
                        "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
        with open(os.path.join(ROOT, "deploy", "nginx", "notice.conf")) as f:
            conf = f.read()
        conf_dir = os.path.join(self.dir, "nginx")
        upstream = "".join(f"    server 127.0.0.1:{n['port']} max_fails=1 fail_timeout=10s;\n" for n in self.nodes.values())
        replaced = [
            (r"(?m)^    server 10\.0\.0\.\d+:8080 max_fails=1 fail_timeout=10s;\n", "", 3),
            (r"hash \$notice_affinity consistent;\n", "hash $notice_affinity consistent;\n" + upstream, 1),
            (r"listen 80;", f"listen 127.0.0.1:{self.http_port};", 1),
            (r"listen \[::\]:80;", f"listen [::1]:{self.http_port};", 1),
            (r"listen 443 ssl;", f"listen 127.0.0.1:{self.https_port} ssl;", 1),
            (r"listen \[::\]:443 ssl;", f"listen [::1]:{self.https_port} ssl;", 1),
            (r"/etc/nginx/tls/office\.example\.crt", cert, 1),
            (r"/etc/nginx/tls/office\.example\.key", key, 1),
            (r"server_name office\.example;", "server_name office.test;", 2),
            (r"/var/log/nginx/notice\.access\.log", f"{conf_dir}/logs/notice.access.log", 2),
        ]
        for pattern, replacement, count in replaced:
            conf, made = re.subn(pattern, lambda _: replacement, conf)
            assert made == count, f"deploy/nginx/notice.conf changed shape: {pattern!r} matched {made}, expected {count}"
        os.makedirs(os.path.join(conf_dir, "logs"))
        with open(os.path.join(conf_dir, "notice.conf"), "w") as f:
            f.write(conf)
        shutil.copy(os.path.join(ROOT, "deploy", "nginx", "notice-proxy.conf"), conf_dir)
        with open(os.path.join(conf_dir, "nginx.conf"), "w") as f:
            f.write(f"""worker_processes 1;
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {conf_dir}/logs/access.log;
    client_body_temp_path {conf_dir}/body;
    proxy_temp_path {conf_dir}/proxy;
    include {conf_dir}/notice.conf;
}}
""")
        subprocess.run(["nginx", "-t", "-p", conf_dir, "-c", f"{conf_dir}/nginx.conf"], check=True, capture_output=True, timeout=30)
        self.nginx = subprocess.Popen(["nginx", "-p", conf_dir, "-c", f"{conf_dir}/nginx.conf", "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def answers():
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return True
            except OSError:
                return False
        wait_until(answers, 20, "nginx listening")

    def https(self, method, path, token=None, body=None):
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=30,
                                                 context=ssl._create_unverified_context())
        headers = {"Host": "office.test"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def publish(self, record):
        """POST /notice/api/notices through nginx: validated and published to the queue."""
        status, body = self.https("POST", "/notice/api/notices", token=PUBLISHER, body=json.dumps(record))
        assert status == 202, (status, body)
        return json.loads(body)["id"]

    def stop(self):
        if self.nginx:
            self.nginx.terminate()
            self.nginx.wait(10)
        for node in self.nodes.values():
            if node["process"].poll() is None:
                node["process"].send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            try:
                node["process"].wait(20)
            except subprocess.TimeoutExpired:
                node["process"].kill()
        try:
            self.psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except subprocess.CalledProcessError:
            pass
        # The nodes' and nginx's logs: NOTICE_KEEP_DEPLOY_LOGS=1 keeps them for a look.
        if not os.environ.get("NOTICE_KEEP_DEPLOY_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)


class NginxClusterTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(POSTGRES_URL, "NOTICE_TEST_POSTGRES_URL is not set: run through scripts/test")
        self.assertTrue(os.access(BINARY, os.X_OK), f"{BINARY} missing: swift build first")
        self.cluster = Cluster()
        self.addCleanup(self.cluster.stop)
        self.cluster.psql(f'CREATE DATABASE "{self.cluster.database}"')
        for name in ("n1", "n2", "n3"):
            self.cluster.start_node(name)
        self.cluster.start_nginx()
        self.clients = []
        self.addCleanup(lambda: [c.close() for c in self.clients])
        # Session ids start with a per-process prefix: learn each node's, to tell where nginx
        # put a session.
        self.prefixes = {}
        for name, node in self.cluster.nodes.items():
            probe = StompClient(node["port"], "svc", direct=True)
            self.prefixes[probe.session.split("-")[0]] = name
            probe.close()

    def connect(self, token):
        """A subscribed client through nginx, and the node it landed on."""
        client = StompClient(self.cluster.https_port, token)
        self.clients.append(client)
        node = self.prefixes[client.session.split("-")[0]]
        client.subscribe(f"/notice/{TOKENS[token]}/remind")
        return client, node

    def test_tls_is_1_2_or_newer(self):
        for version, accepted in ((ssl.TLSVersion.TLSv1_1, False), (ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)):
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            try:
                context.minimum_version = context.maximum_version = version
                context.set_ciphers("ALL:@SECLEVEL=0")
            except (ValueError, ssl.SSLError):
                continue  # this OpenSSL cannot even offer it
            try:
                with socket.create_connection(("127.0.0.1", self.cluster.https_port), timeout=5) as raw:
                    with context.wrap_socket(raw) as tls:
                        handshake = tls.version()
            except (ssl.SSLError, ConnectionResetError):
                handshake = None
            self.assertEqual(handshake is not None, accepted, f"{version}: {handshake}")
        status, _ = http_get(self.cluster.http_port, "/notice/ws/info")
        self.assertEqual(status, 301, "plain HTTP redirects to HTTPS")
        self.assertEqual(self.cluster.https("GET", "/notice/health/ready")[0], 404, "health stays internal")

    def test_each_user_gets_exactly_their_notices_across_nodes_and_after_a_node_dies(self):
        # One session per user, through nginx; they must sit on at least two different nodes.
        placed = {}
        for token in TOKENS:
            client, node = self.connect(token)
            for _ in range(20):
                if token != list(TOKENS)[-1] or len(set(placed.values()) | {node}) >= 2:
                    break
                client.close()
                client, node = self.connect(token)
            placed[token] = node
            setattr(self, f"client_{token}", client)
        self.assertGreaterEqual(len(set(placed.values())), 2, f"nginx put every session on one node: {placed}")
        client = {token: getattr(self, f"client_{token}") for token in TOKENS}

        expected = {token: [] for token in TOKENS}
        for i in range(36):
            token = list(TOKENS)[i % len(TOKENS)]
            expected[token].append(self.cluster.publish({"userId": TOKENS[token], "title": f"n{i}"}))
        broadcast = self.cluster.publish({"broadcast": True, "title": "all"})
        for token in TOKENS:
            # Consumed by three competing nodes: each arrives once; order across nodes is not promised.
            got = client[token].notice_ids(count=len(expected[token]) + 1)
            self.assertEqual(sorted(got), sorted(expected[token] + [broadcast]), f"{token} on {placed[token]}")
        self.assert_nothing_more(client, placed)

        # A session records what it wrote in batches (every 200 ms): a node killed before the
        # batch commits would rightly replay those notices again (at least once) — the
        # broadcast too, an announcement replayed after each user's mark. The kill below is
        # about what is published while it is down, so it waits for the commit.
        wait_until(lambda: self.cluster.undelivered(TOKENS) == 0, 30, "every pushed notice recorded as delivered")

        # SIGKILL the node of the first user; its users reconnect through nginx.
        victim = placed[list(TOKENS)[0]]
        self.cluster.nodes[victim]["process"].kill()
        self.cluster.nodes[victim]["process"].wait(10)
        orphans = [token for token in TOKENS if placed[token] == victim]
        for token in orphans:
            client[token].close()
        missed = {token: [] for token in TOKENS}
        for i in range(24):
            token = list(TOKENS)[i % len(TOKENS)]
            missed[token].append(self.cluster.publish({"userId": TOKENS[token], "title": f"while down {i}"}))
        for token in TOKENS:
            if token in orphans:
                client[token], node = self.connect(token)
                self.assertNotEqual(node, victim)
                placed[token] = node
            got = client[token].notice_ids(count=len(missed[token]))
            self.assertEqual(len(got), len(set(got)), f"{token}: nothing twice")
            self.assertEqual(sorted(got), sorted(missed[token]), f"{token}: replayed after reconnecting" if token in orphans else f"{token}: live")
        # Nothing twice, and the reconnected sessions get live notices again.
        self.assert_nothing_more(client, placed)

    def assert_nothing_more(self, client, placed):
        """A marker notice per user, published now, is the next thing each session receives.

        Within a session frames come in order and a replay precedes live notices, so whatever
        was still on its way through the marker's path has come when the marker does; a
        notice that another node consumed earlier has, too, unless its relay is slower than
        the marker's whole trip (which a quiet window would not rule out either)."""
        markers = {token: self.cluster.publish({"userId": TOKENS[token], "title": "marker"}) for token in TOKENS}
        for token in TOKENS:
            self.assertEqual(client[token].notice_ids(through=markers[token]), [markers[token]],
                             f"{token} on {placed[token]}: nothing more before the marker")

    def test_sockjs_xhr_streaming_through_nginx(self):
        server, session = "417", uuid.uuid4().hex[:8]
        base = f"/notice/ws/{server}/{session}"
        context = ssl._create_unverified_context()
        stream = http.client.HTTPSConnection("127.0.0.1", self.cluster.https_port, timeout=30, context=context)
        # The token in the query, as a client that cannot set headers sends it (SPEC §4).
        stream.request("POST", base + "/xhr_streaming?access_token=bob", headers={"Host": "office.test", "Origin": ORIGIN})
        response = stream.getresponse()
        self.assertEqual(response.status, 200)
        buffer = ""

        def next_sockjs_frame():
            nonlocal buffer
            while "\n" not in buffer:
                chunk = response.read1(65536).decode()
                if not chunk:
                    raise AssertionError("stream ended")
                buffer += chunk
            line, buffer = buffer.split("\n", 1)
            return line

        frame = next_sockjs_frame()
        while frame.startswith("h"):  # the 2 KiB prelude, then heartbeats
            frame = next_sockjs_frame()
        self.assertEqual(frame, "o")

        def send(text):
            status, body = self.cluster.https("POST", base + "/xhr_send", body=json.dumps([text]))
            self.assertEqual(status, 204, body)

        def next_stomp():
            while True:
                frame = next_sockjs_frame()
                if frame.startswith("a"):
                    return stomp_parse("".join(json.loads(frame[1:])))

        send(stomp_frame("CONNECT", {"accept-version": "1.1,1.0", "heart-beat": "0,0"}))
        self.assertEqual(next_stomp()[0][0], "CONNECTED")
        send(stomp_frame("SUBSCRIBE", {"id": "sub-0", "destination": "/notice/2/remind", "receipt": "r"}))
        self.assertEqual(next_stomp()[0][0], "RECEIPT")
        send(stomp_frame("SEND", {"destination": "test"}, "test"))  # the legacy probe
        notice = self.cluster.publish({"userId": "2", "title": "over xhr_streaming"})
        command, headers, body = next_stomp()[0]
        self.assertEqual(command, "MESSAGE")
        self.assertEqual(headers["notice-id"], notice)
        self.assertEqual(json.loads(body)["title"], "over xhr_streaming")
        stream.close()
        # nginx logged the session's requests, and never the token in their query.
        log_path = os.path.join(self.cluster.dir, "nginx", "logs", "notice.access.log")
        def logged():
            with open(log_path) as f:
                return f.read()
        wait_until(lambda: base + "/xhr_streaming" in logged(), 20, "the xhr_streaming request in the access log")
        self.assertNotIn("access_token", logged())
        self.assertNotIn("bob", logged())


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""Opens a page in headless Chromium and drives it over the DevTools protocol: waits (bounded)
until a JavaScript condition holds, prints the value of a JavaScript expression, and saves a
screenshot. For tests that must see a page's state after it settled (a one-shot --dump-dom or
--screenshot takes whatever is there when its virtual time runs out).

usage: cdp_page.py URL --until JS --print JS --screenshot FILE [--timeout SECONDS] [--size WxH]
Exit status 0 when the condition held (the printed value and the screenshot are of that
moment), 1 when it did not in time (the value and screenshot are of the last moment), 2 on
usage or browser errors. Debian's python3-websocket is the only dependency.
"""
import argparse, base64, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

import websocket


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--until", required=True)
    parser.add_argument("--print", dest="expression", required=True)
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--timeout", type=float, default=45)
    parser.add_argument("--size", default="900,700")
    args = parser.parse_args()
    profile = tempfile.mkdtemp(prefix="notice-cdp-")
    browser = subprocess.Popen(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars", "--remote-debugging-port=0",
         "--remote-allow-origins=*", f"--user-data-dir={profile}", f"--window-size={args.size}", args.url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + args.timeout
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if time.monotonic() > deadline or browser.poll() is not None:
                print("chromium did not open its DevTools port", file=sys.stderr)
                return 2
            time.sleep(0.05)
        port = int(open(port_file).read().split()[0])
        page = None
        while page is None:
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5))
            page = next((t for t in targets if t.get("type") == "page"), None)
            if page is None:
                if time.monotonic() > deadline:
                    print("no page target", file=sys.stderr)
                    return 2
                time.sleep(0.05)
        socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10)
        counter = [0]

        def call(method, **params):
            counter[0] += 1
            socket.send(json.dumps({"id": counter[0], "method": method, "params": params}))
            while True:
                answer = json.loads(socket.recv())
                if answer.get("id") == counter[0]:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]

        def evaluate(expression):
            result = call("Runtime.evaluate", expression=expression, returnByValue=True)
            return result.get("result", {}).get("value")

        # The viewport exactly --size (the window's size includes what the browser draws around it).
        width, height = (int(x) for x in args.size.split(","))
        call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        held = False
        while time.monotonic() < deadline:
            try:
                if evaluate(args.until) is True:
                    held = True
                    break
            except RuntimeError:
                pass
            time.sleep(0.05)
        print(json.dumps(evaluate(args.expression)))
        data = call("Page.captureScreenshot", format="png")["data"]
        with open(args.screenshot, "wb") as out:
            out.write(base64.b64decode(data))
        socket.close()
        return 0 if held else 1
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

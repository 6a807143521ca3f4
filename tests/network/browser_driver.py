"""The web viewer in Chromium, run in a client network namespace by
``tests/network/test_browser_network.py`` and ``benchmarks/bench_browser_cap.py``: it signs in,
opens session ``net``, orbits the camera (a pose every display frame) and notes every presented
frame (``requestVideoFrameCallback``) with the target bit rate its metadata names and its pose →
present time. It prints ``phase cap`` and waits for a line on stdin (the caller narrows the
link), after ``capped`` seconds ``phase lift`` and waits again (when ``lifted`` > 0), and at the
end one JSON line: the frames (seconds from the cap), and the host's ``get_stats``.

    python3 browser_driver.py URL ACCOUNT KEY CHROMIUM CAPPED LIFTED [--no-feedback] [--page WxH]

``--no-feedback``: the viewer sends no ``network_feedback`` (as before 2026-12-04); ``--page``:
the page's size (640x420; the stream is the size of the viewer's stage in it)."""

import json
import sys
import time

from playwright.sync_api import sync_playwright

WATCH = """() => {
    const f = window.farview, video = document.getElementById("video");
    window.shown = [];
    setInterval(() => { f.camera.orbit(0.01, 0); f.dirty = true; }, 16);
    let logged = 0;
    const step = (now) => {
        const latency = f.latencyLog.length > logged ? f.latencyLog[f.latencyLog.length - 1] : null;
        logged = f.latencyLog.length;
        window.shown.push([performance.now(), f.lastMeta ? f.lastMeta.targetBitrate : null, latency]);
        video.requestVideoFrameCallback(step);
    };
    video.requestVideoFrameCallback(step);
}"""

COLLECT = """async (start) => ({
    frames: window.shown.map(([t, target, latency]) => [(t - start) / 1000, target, latency]),
    stats: await window.farview.stream.request("get_stats", {}),
})"""


def goto(page: object, url: str) -> None:
    """``page.goto(url)`` until the viewer's script runs, again (at most twice, after 0.5 s)
    when Chromium gives up with ``ERR_NETWORK_CHANGED``: it watches the interfaces, and those
    of a namespace made just before may still be settling (CI saw a navigation given up so
    once; and once the page loaded without its script, so that the sign-in form was sent as a
    plain form and the click waited 30 s for that navigation), as a user would reload."""
    for attempt in range(3):
        try:
            page.goto(url)  # type: ignore[attr-defined]
            page.wait_for_function("() => !!window.farview", timeout=10_000)  # type: ignore[attr-defined]
            return
        except Exception as e:  # playwright's Error or TimeoutError
            if ("ERR_NETWORK_CHANGED" not in str(e) and "Timeout" not in type(e).__name__) \
                    or attempt == 2:
                raise
            time.sleep(0.5)


def main() -> None:
    url, account, key, chromium, capped, lifted = sys.argv[1:7]
    page_size = sys.argv[sys.argv.index("--page") + 1] if "--page" in sys.argv else "640x420"
    width, height = (int(v) for v in page_size.split("x"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--ignore-certificate-errors"])
        page = browser.new_context(ignore_https_errors=True, viewport={"width": width, "height": height}).new_page()
        goto(page, url + "/viewer/")
        page.fill("#account", account)
        page.fill("#key", key)
        page.click("#signin button")
        page.click("#sessions tr[data-id='net'] button:has-text('Open')")
        page.wait_for_function("() => window.farview.stream && window.farview.presented.length > 0",
                               timeout=60_000)
        if "--no-feedback" in sys.argv:
            page.evaluate("() => { window.farview.stream.sendFeedback = async () => {}; }")
        page.evaluate(WATCH)
        time.sleep(3.0)
        print("phase cap", flush=True)
        sys.stdin.readline()
        start = page.evaluate("() => performance.now()")
        time.sleep(float(capped))
        if float(lifted) > 0:
            print("phase lift", flush=True)
            sys.stdin.readline()
            time.sleep(float(lifted))
        print(json.dumps(page.evaluate(COLLECT, start)), flush=True)
        browser.close()


if __name__ == "__main__":
    main()

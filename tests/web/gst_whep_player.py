"""A standard WHEP player on GStreamer's ``webrtcbin`` (no farview code, no aiortc): a second
WebRTC stack (libnice, GStreamer's DTLS and SRTP) playing a farview session, as a user's
GStreamer pipeline would. Run by ``tests/web/test_gstreamer_whep.py`` with Debian's
``/usr/bin/python3`` (``python3-gi``)::

    python3 gst_whep_player.py WHEP_URL TOKEN SECONDS [ENOUGH]

Prints one JSON line: the POST's status (and body if refused), the frames decoded in
``SECONDS`` after the answer (or until ``ENOUGH`` frames came), their size, the DELETE's status
and GStreamer's errors.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

H264 = ("application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
        "packetization-mode=(string)1,profile-level-id=(string)42e01f")


def http(method: str, url: str, token: str, body: bytes | None = None) -> tuple[int, Any, str]:
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/sdp")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def main() -> None:
    url, token, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    enough = int(sys.argv[4]) if len(sys.argv) > 4 else None
    Gst.init(None)
    threading.Thread(target=GLib.MainLoop().run, daemon=True).start()
    out: dict[str, Any] = {"frames": 0, "size": None, "errors": []}
    gathered = threading.Event()
    pipe = Gst.Pipeline.new("player")
    webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
    webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    pipe.add(webrtc)
    webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                Gst.Caps.from_string(H264))

    def on_sample(sink: Any) -> Any:
        sample = sink.emit("pull-sample")
        if out["size"] is None:
            s = sample.get_caps().get_structure(0)
            out["size"] = [s.get_value("width"), s.get_value("height")]
        out["frames"] += 1
        return Gst.FlowReturn.OK

    def on_decoded_pad(_dec: Any, pad: Any) -> None:
        if not (pad.get_current_caps() or pad.query_caps(None)).to_string().startswith("video/"):
            return
        convert = Gst.ElementFactory.make("videoconvert")
        sink = Gst.ElementFactory.make("appsink")
        sink.set_property("emit-signals", True)
        sink.set_property("sync", False)
        sink.set_property("caps", Gst.Caps.from_string("video/x-raw,format=I420"))
        sink.connect("new-sample", on_sample)
        for e in (convert, sink):
            pipe.add(e)
            e.sync_state_with_parent()
        convert.link(sink)
        pad.link(convert.get_static_pad("sink"))

    def on_pad(_el: Any, pad: Any) -> None:
        if pad.direction == Gst.PadDirection.SRC:
            decode = Gst.ElementFactory.make("decodebin")
            decode.connect("pad-added", on_decoded_pad)
            pipe.add(decode)
            decode.sync_state_with_parent()
            pad.link(decode.get_static_pad("sink"))

    def on_error(_bus: Any, msg: Any) -> None:
        err, debug = msg.parse_error()
        out["errors"].append(f"{msg.src.get_name()}: {err.message} ({debug})"[:300])

    webrtc.connect("pad-added", on_pad)
    webrtc.connect("notify::ice-gathering-state", lambda el, _p: gathered.set() if el.get_property(
        "ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE else None)
    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message::error", on_error)
    pipe.set_state(Gst.State.PLAYING)

    # (the promises and replies are kept referenced: gst-python frees an offer held only by a
    # temporary reply)
    offered = Gst.Promise.new()
    webrtc.emit("create-offer", None, offered)
    offered.wait()
    reply = offered.get_reply()
    offer = reply.get_value("offer")
    local = Gst.Promise.new()
    webrtc.emit("set-local-description", offer, local)
    local.wait()
    gathered.wait(15)
    sdp = webrtc.get_property("local-description").sdp.as_text()
    status, headers, body = http("POST", url, token, sdp.encode())
    out["status"] = status
    if status != 201:
        out["body"] = body[:300]
    else:
        location = urllib.parse.urljoin(url, headers["Location"])
        _, message = GstSdp.SDPMessage.new_from_text(body)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        remote = Gst.Promise.new()
        webrtc.emit("set-remote-description", answer, remote)
        remote.wait()
        end = time.monotonic() + seconds
        while time.monotonic() < end and (enough is None or out["frames"] < enough):
            time.sleep(0.05)
        out["delete"] = http("DELETE", location, token)[0]
    pipe.set_state(Gst.State.NULL)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

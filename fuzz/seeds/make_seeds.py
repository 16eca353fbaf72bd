#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/seeds/<target>/): one valid input or
two per target, from the unit tests' fixtures, in each target's input format. Run from
anywhere: python3 fuzz/seeds/make_seeds.py"""
import os
import struct
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))


def seed(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


def frame(kind, payload):
    """fuzz/src/lib.rs `frames`: kind, u16 little-endian length, payload."""
    if isinstance(payload, str):
        payload = payload.encode()
    return bytes([kind]) + struct.pack("<H", len(payload)) + payload


def l16(*samples):
    return struct.pack("<%dh" % len(samples), *samples)


# --- SDP (src/ingest/sip/sdp.rs tests) ---
SIPP_OFFER = ("v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
              "t=0 0\r\nm=audio 18000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n")
DTMF_HOLD = ("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 111 8 101\r\na=rtpmap:111 opus/48000/2\r\n"
             "a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\nm=video 5000 RTP/AVP 96\r\na=recvonly\r\n"
             "m=audio 4002 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=label:2\r\n")
IPV6 = ("v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\na=inactive\r\n"
        "m=audio 30000/2 RTP/SAVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\na=ptime:30\r\n")
seed("sdp", "sipp_offer", SIPP_OFFER)
seed("sdp", "dtmf_hold_video", DTMF_HOLD)
seed("sdp", "ipv6_pcma_inactive", IPV6)

# --- SIPREC (src/ingest/sip/siprec.rs tests) ---
SIPREC = ("--rec\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 18000 RTP/AVP 0\r\n"
          "a=label:1\r\na=sendonly\r\nm=audio 18002 RTP/AVP 0\r\na=label:2\r\na=sendonly\r\n\r\n--rec\r\n"
          "Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n"
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">\r\n"
          "<datamode>complete</datamode>\r\n<session session_id=\"s1\"></session>\r\n"
          "<participant participant_id=\"p1\"><nameID aor=\"sip:+15551234@carrier.example\"><name>Jane Caller</name></nameID></participant>\r\n"
          "<participant participant_id=\"p2\"><nameID aor=\"sip:2001@pbx.example\"><name>Agent Dana</name></nameID></participant>\r\n"
          "<stream stream_id=\"st1\" session_id=\"s1\"><label>1</label></stream>\r\n"
          "<stream stream_id=\"st2\" session_id=\"s1\"><label>2</label></stream>\r\n"
          "<participantstreamassoc participant_id=\"p1\"><send>st1</send><recv>st2</recv></participantstreamassoc>\r\n"
          "<participantstreamassoc participant_id=\"p2\"><send>st2</send><recv>st1</recv></participantstreamassoc>\r\n"
          "</recording>\r\n--rec--\r\n")
seed("siprec", "two_participants", SIPREC)
seed("siprec", "lf_only_no_metadata", "--rec\nContent-Type: application/sdp\n\nv=0\nm=audio 4000 RTP/AVP 0\n--rec--\n")

# --- SIP messages (tests/sip/*.xml, filled in) ---
def invite(content_type, body, transport="UDP"):
    head = ("INVITE sip:hark@192.0.2.1:5060 SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 198.51.100.9:5070;branch=z9hG4bK-1-0;rport\r\n"
            "From: \"Jane Doe\" <sip:+4930123@pbx.example.com>;tag=abc\r\n"
            "To: <sip:hark@192.0.2.1:5060>\r\n"
            "Call-ID: 1-4242@198.51.100.9\r\nCSeq: 1 INVITE\r\n"
            "Contact: <sip:caller@198.51.100.9:5070>\r\nMax-Forwards: 70\r\n")
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body

seed("sip", "invite_sdp", invite("application/sdp", SIPP_OFFER))
seed("sip", "invite_siprec", invite("multipart/mixed;boundary=rec", SIPREC))
seed("sip", "invite_offerless_tcp", invite(None, "", "TCP"))
seed("sip", "ack_bye_tcp_stream",
     "ACK sip:hark@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 198.51.100.9:5070;branch=z9hG4bK-1-1\r\n"
     "From: <sip:caller@198.51.100.9>;tag=abc\r\nTo: <sip:hark@192.0.2.1>;tag=xyz\r\nCall-ID: 1-4242@198.51.100.9\r\n"
     "CSeq: 1 ACK\r\nl: 0\r\n\r\n"
     "BYE sip:hark@192.0.2.1:5060 SIP/2.0\r\nv: SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK-1-2;received=203.0.113.5\r\n"
     "f: <sip:caller@198.51.100.9>;tag=abc\r\nt: <sip:hark@192.0.2.1>;tag=xyz\r\ni: 1-4242@198.51.100.9\r\n"
     "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
seed("sip", "options_200",
     "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-2;received=192.0.2.1;rport=5060\r\n"
     "From: <sip:hark@192.0.2.1>;tag=h1\r\nTo: <sip:x@198.51.100.9>;tag=t2\r\nCall-ID: opt-1\r\n"
     "CSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n")

# --- Twilio Media Streams (src/ingest/stream/twilio.rs tests): one text frame a line ---
seed("twilio", "whole_stream", "\n".join([
    '{"event":"connected","protocol":"Call","version":"1.0.0"}',
    '{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1","streamSid":"MZ1",'
    '"callSid":"CA1","tracks":["outbound","inbound"],"customParameters":{"from":"+15550001","access_token":"tok"},'
    '"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}',
    '{"event":"media","sequenceNumber":"3","media":{"track":"outbound","chunk":"2","timestamp":"20","payload":"/4A="},"streamSid":"MZ1"}',
    '{"event":"media","media":{"track":"inbound","chunk":"3","timestamp":"40","payload":"' + "/" * 160 + '"}}',
    '{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}',
    '{"event":"mark","mark":{"name":"x"}}',
    '{"event":"stop","stop":{"callSid":"CA1"}}',
]))
seed("twilio", "media_before_start",
     '{"event":"media","media":{"track":"inbound","timestamp":"0","payload":"AAAA"}}')

# --- jambonz / audio_fork (src/ingest/stream/{jambonz,audio_fork}.rs tests) ---
# config byte: bit0 dialect (0 jambonz, 1 audio_fork), bits1-2 query sample_rate, bit3 query
# call_id, bits4-5 query mix_type.
seed("l16", "jambonz_stereo",
     bytes([0]) + frame(0, '{"callSid":"js-1","sampleRate":8000,"mixType":"stereo","from":"+1555"}')
     + frame(1, l16(1, 2, 3, 4)) + frame(1, l16(*range(-80, 80))[:-1]) + frame(2, b"\x00")
     + frame(0, '{"event":"dtmf","dtmf":"7","duration":"1600"}') + frame(3, b""))
seed("l16", "audio_fork_query_16k_mono",
     bytes([1 | (2 << 1) | (1 << 4)]) + frame(0, '{"uuid":"fs-1","caller":"1000","callee":"1002"}')
     + frame(1, l16(*range(0, 320, 2))) + frame(3, b""))

# --- AudioSocket (src/ingest/audiosocket.rs tests): the raw TCP stream ---
def asock(kind, payload):
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload

call = uuid.UUID("a1b2c3d4-0000-4000-8000-000000000001").bytes
seed("audiosocket", "uuid_audio_dtmf_hangup",
     asock(0x01, call) + asock(0x10, l16(100, -100, 7)) + asock(0x10, l16(*range(160))) + asock(0x03, b"#")
     + asock(0xff, b"\x01") + asock(0x00, b""))
seed("audiosocket", "audio_before_uuid", asock(0x10, l16(1, 2)) + asock(0x01, call))

# --- RTP (src/media/rtp.rs): one datagram; and the media stream: `len byte, datagram` each ---
def rtp(pt, seq, ts, payload, marker=False, csrcs=(), ext=None):
    first = 0x80 | (0x10 if ext is not None else 0) | len(csrcs)
    head = struct.pack(">BBHII", first, (0x80 if marker else 0) | pt, seq, ts, 0x1234ABCD)
    head += b"".join(struct.pack(">I", c) for c in csrcs)
    if ext is not None:
        head += struct.pack(">HH", 0xBEDE, len(ext) // 4) + ext
    return head + payload

seed("rtp", "pcmu_20ms", rtp(0, 1, 160, b"\xff" * 160, marker=True))
seed("rtp", "csrc_extension", rtp(8, 2, 320, b"\xd5" * 40, csrcs=(1, 2), ext=b"\x10\x01\x00\x00"))
dtmf = rtp(101, 4, 480, bytes([5, 0x8a, 0, 160]), marker=True)
stream = [rtp(0, s, s * 160, bytes([0xff - s]) * 160) for s in (10, 11, 13, 12, 14)] + [rtp(101, 15, 2400, bytes([5, 0x8a, 0, 160]))]
seed("media_stream", "pcmu_reordered_dtmf", b"".join(bytes([len(d)]) + d for d in stream))
seed("media_stream", "pcma_then_pcmu", b"".join(bytes([len(d)]) + d for d in [rtp(8, 1, 0, b"\xd5" * 160), rtp(0, 2, 160, b"\xff" * 160)]))

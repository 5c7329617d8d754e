"""The answer asks Chromium to start at a bitrate that gives 720p at once."""

from __future__ import annotations

from server.live.media.peers import with_start_bitrate

ANSWER = "\r\n".join(
    [
        "v=0",
        "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
        "a=rtpmap:97 VP8/90000",
        "a=rtcp-fb:97 nack",
        "a=rtpmap:98 rtx/90000",
        "a=fmtp:98 apt=97",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        "a=rtpmap:96 opus/48000/2",
        "a=fmtp:96 useinbandfec=1",
        "",
    ]
)


def test_vp8_gets_a_start_bitrate_fmtp_line() -> None:
    out = with_start_bitrate(ANSWER, 2500).split("\r\n")
    assert out[out.index("a=rtpmap:97 VP8/90000") + 1] == "a=fmtp:97 x-google-start-bitrate=2500"


def test_other_formats_are_left_alone() -> None:
    out = with_start_bitrate(ANSWER, 2500)
    assert "a=fmtp:98 apt=97\r\n" in out
    assert "a=fmtp:96 useinbandfec=1\r\n" in out
    assert out.count("x-google-start-bitrate") == 1


def test_existing_vp8_fmtp_is_extended_not_duplicated() -> None:
    answer = ANSWER.replace("a=rtcp-fb:97 nack", "a=fmtp:97 max-fr=30")
    out = with_start_bitrate(answer, 1000)
    assert "a=fmtp:97 max-fr=30;x-google-start-bitrate=1000" in out
    assert out.count("x-google-start-bitrate") == 1

"""Object keys of the archive: where every piece of a case's evidence lives.

Everything of a case is under ``cases/{case_id}/``::

    chain/{seq:012d}.json                                     one hash-chain entry
    checkpoints/{seq:012d}.json                               signed chain head at seq
    keys/{fingerprint_hex}.pub                                raw 32-byte Ed25519 public key
    inspections/{inspection_id}/segments/{track}/{seq:06d}.webm
    inspections/{inspection_id}/manifest.json                 signed per-inspection manifest
    inspections/{inspection_id}/snapshots/{snapshot_id}.png   a snapshot, as decoded (PNG)
    inspections/{inspection_id}/annotations/{annotation_id}.json   an overlay on a snapshot
    inspections/{inspection_id}/annotations/{annotation_id}-v{renderer}.png   its marked-up copy
    inspections/{inspection_id}/reports/{version:03d}.html|.pdf    a generated report
    timestamps/{tsa_id}/checkpoints/{seq:012d}.tsr            RFC 3161 reply over a checkpoint
    timestamps/{tsa_id}/inspections/{inspection_id}/manifest.tsr   ... over a manifest

IDs are validated before they become part of a key, so no key can leave its case's prefix.
"""

from __future__ import annotations

import re

CASE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
INSPECTION_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
HEX64_PATTERN = re.compile(r"[0-9a-f]{64}")
OBJECT_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
TSA_ID_PATTERN = re.compile(r"[0-9a-f]{16}")
REPORT_FORMATS = ("html", "pdf")
MAX_REPORT_VERSION = 999
TRACKS = ("applicant-video", "applicant-audio", "inspector-audio")
MAX_SEGMENT_SEQ = 999_999
MAX_CHAIN_SEQ = 999_999_999_999

_CASE = r"(?P<case>[A-Za-z0-9][A-Za-z0-9._-]{0,63})"
_CHAIN_KEY = re.compile(r"cases/" + _CASE + r"/chain/(?P<seq>[0-9]{12})\.json")
_CHECKPOINT_KEY = re.compile(r"cases/" + _CASE + r"/checkpoints/(?P<seq>[0-9]{12})\.json")
_PUBLIC_KEY_KEY = re.compile(r"cases/" + _CASE + r"/keys/(?P<fp>[0-9a-f]{64})\.pub")
_SEGMENT_KEY = re.compile(
    r"cases/" + _CASE + r"/inspections/(?P<insp>[0-9a-f]{32})/segments/"
    r"(?P<track>applicant-video|applicant-audio|inspector-audio)/(?P<seq>[0-9]{6})\.webm"
)
_MANIFEST_KEY = re.compile(
    r"cases/" + _CASE + r"/inspections/(?P<insp>[0-9a-f]{32})/manifest\.json"
)

_SNAPSHOT_KEY = re.compile(
    r"cases/" + _CASE + r"/inspections/(?P<insp>[0-9a-f]{32})/snapshots/(?P<id>[0-9a-f]{32})\.png"
)
_ANNOTATION_KEY = re.compile(
    r"cases/" + _CASE + r"/inspections/(?P<insp>[0-9a-f]{32})/annotations/"
    r"(?P<id>[0-9a-f]{32})\.json"
)
_MARKED_UP_KEY = re.compile(
    r"cases/" + _CASE + r"/inspections/(?P<insp>[0-9a-f]{32})/annotations/"
    r"(?P<id>[0-9a-f]{32})-v(?P<version>[1-9][0-9]{0,2})\.png"
)
_REPORT_KEY = re.compile(
    r"cases/" + _CASE + r"/inspections/(?P<insp>[0-9a-f]{32})/reports/"
    r"(?P<version>[0-9]{3})\.(?P<format>html|pdf)"
)
_TIMESTAMP_KEY = re.compile(
    r"cases/" + _CASE + r"/timestamps/(?P<tsa>[0-9a-f]{16})/"
    r"(?:checkpoints/(?P<seq>[0-9]{12})|inspections/(?P<insp>[0-9a-f]{32})/manifest)\.tsr"
)


def check_case_id(case_id: str) -> str:
    """``case_id`` if it is 1-64 of ``A-Z a-z 0-9 . _ -``, starting alphanumeric, no ``..``."""
    if not isinstance(case_id, str) or not CASE_ID_PATTERN.fullmatch(case_id) or ".." in case_id:
        raise ValueError(
            f"case_id {case_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ -, starting with"
            " a letter or digit, without '..'"
        )
    return case_id


def check_inspection_id(inspection_id: str) -> str:
    if not isinstance(inspection_id, str) or not INSPECTION_ID_PATTERN.fullmatch(inspection_id):
        raise ValueError(f"inspection_id {inspection_id!r} must be 32 lower-case hex digits")
    return inspection_id


def check_object_id(object_id: str, name: str) -> str:
    """A snapshot or annotation id: 32 lower-case hex digits."""
    if not isinstance(object_id, str) or not OBJECT_ID_PATTERN.fullmatch(object_id):
        raise ValueError(f"{name} {object_id!r} must be 32 lower-case hex digits")
    return object_id


def check_track(track: str) -> str:
    if track not in TRACKS:
        raise ValueError(f"track {track!r} is not one of {', '.join(TRACKS)}")
    return track


def check_hex64(value: str, name: str) -> str:
    if not isinstance(value, str) or not HEX64_PATTERN.fullmatch(value):
        raise ValueError(f"{name} {value!r} must be 64 lower-case hex digits")
    return value


def _check_seq(seq: int, maximum: int) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= maximum:
        raise ValueError(f"seq {seq!r} must be an integer in 0..{maximum}")
    return seq


def case_prefix(case_id: str) -> str:
    return f"cases/{check_case_id(case_id)}/"


def chain_prefix(case_id: str) -> str:
    return f"{case_prefix(case_id)}chain/"


def chain_entry_key(case_id: str, seq: int) -> str:
    return f"{chain_prefix(case_id)}{_check_seq(seq, MAX_CHAIN_SEQ):012d}.json"


def checkpoint_prefix(case_id: str) -> str:
    return f"{case_prefix(case_id)}checkpoints/"


def checkpoint_key(case_id: str, seq: int) -> str:
    return f"{checkpoint_prefix(case_id)}{_check_seq(seq, MAX_CHAIN_SEQ):012d}.json"


def keys_prefix(case_id: str) -> str:
    return f"{case_prefix(case_id)}keys/"


def public_key_key(case_id: str, fingerprint_hex: str) -> str:
    """Key of a raw public key; ``fingerprint_hex`` may carry the ``sha256:`` prefix."""
    fingerprint_hex = fingerprint_hex.removeprefix("sha256:")
    return f"{keys_prefix(case_id)}{check_hex64(fingerprint_hex, 'fingerprint')}.pub"


def inspection_prefix(case_id: str, inspection_id: str) -> str:
    return f"{case_prefix(case_id)}inspections/{check_inspection_id(inspection_id)}/"


def segment_key(case_id: str, inspection_id: str, track: str, seq: int) -> str:
    return (
        f"{inspection_prefix(case_id, inspection_id)}segments/{check_track(track)}/"
        f"{_check_seq(seq, MAX_SEGMENT_SEQ):06d}.webm"
    )


def manifest_key(case_id: str, inspection_id: str) -> str:
    return f"{inspection_prefix(case_id, inspection_id)}manifest.json"


def snapshot_key(case_id: str, inspection_id: str, snapshot_id: str) -> str:
    return (
        f"{inspection_prefix(case_id, inspection_id)}snapshots/"
        f"{check_object_id(snapshot_id, 'snapshot_id')}.png"
    )


def annotation_key(case_id: str, inspection_id: str, annotation_id: str) -> str:
    return (
        f"{inspection_prefix(case_id, inspection_id)}annotations/"
        f"{check_object_id(annotation_id, 'annotation_id')}.json"
    )


def marked_up_key(case_id: str, inspection_id: str, annotation_id: str, renderer: int) -> str:
    """Key of the copy of a snapshot with an annotation drawn on it by renderer version
    ``renderer`` (1..999): derived evidence, beside the untouched original."""
    if isinstance(renderer, bool) or not isinstance(renderer, int) or not 1 <= renderer <= 999:
        raise ValueError(f"renderer version {renderer!r} must be an integer in 1..999")
    return (
        f"{inspection_prefix(case_id, inspection_id)}annotations/"
        f"{check_object_id(annotation_id, 'annotation_id')}-v{renderer}.png"
    )


def report_key(case_id: str, inspection_id: str, version: int, report_format: str) -> str:
    """Key of version ``version`` (1..999) of an inspection's report, ``html`` or ``pdf``."""
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= MAX_REPORT_VERSION
    ):
        raise ValueError(f"report version {version!r} must be an integer in 1..999")
    if report_format not in REPORT_FORMATS:
        raise ValueError(f"report format {report_format!r} is not one of html, pdf")
    return f"{inspection_prefix(case_id, inspection_id)}reports/{version:03d}.{report_format}"


def parse_chain_entry_key(case_id: str, key: str) -> int | None:
    """The seq of a chain entry key of this case, or None if ``key`` is not one."""
    match = _CHAIN_KEY.fullmatch(key)
    return int(match["seq"]) if match and match["case"] == case_id else None


def parse_checkpoint_key(case_id: str, key: str) -> int | None:
    match = _CHECKPOINT_KEY.fullmatch(key)
    return int(match["seq"]) if match and match["case"] == case_id else None


def parse_public_key_key(case_id: str, key: str) -> str | None:
    """The fingerprint hex of a public key object of this case, or None."""
    match = _PUBLIC_KEY_KEY.fullmatch(key)
    return match["fp"] if match and match["case"] == case_id else None


def parse_segment_key(case_id: str, key: str) -> tuple[str, str, int] | None:
    """``(inspection_id, track, seq)`` of a segment key of this case, or None."""
    match = _SEGMENT_KEY.fullmatch(key)
    if not match or match["case"] != case_id:
        return None
    return match["insp"], match["track"], int(match["seq"])


def segment_key_parts(key: str) -> tuple[str, str, str, int] | None:
    """``(case_id, inspection_id, track, seq)`` of any well-formed segment key, or None."""
    match = _SEGMENT_KEY.fullmatch(key)
    if not match or ".." in match["case"]:
        return None
    return match["case"], match["insp"], match["track"], int(match["seq"])


def parse_manifest_key(case_id: str, key: str) -> str | None:
    """The inspection_id of a manifest key of this case, or None."""
    match = _MANIFEST_KEY.fullmatch(key)
    return match["insp"] if match and match["case"] == case_id else None


def parse_snapshot_key(case_id: str, key: str) -> tuple[str, str] | None:
    """``(inspection_id, snapshot_id)`` of a snapshot key of this case, or None."""
    match = _SNAPSHOT_KEY.fullmatch(key)
    return (match["insp"], match["id"]) if match and match["case"] == case_id else None


def parse_annotation_key(case_id: str, key: str) -> tuple[str, str] | None:
    """``(inspection_id, annotation_id)`` of an annotation key of this case, or None."""
    match = _ANNOTATION_KEY.fullmatch(key)
    return (match["insp"], match["id"]) if match and match["case"] == case_id else None


def parse_marked_up_key(case_id: str, key: str) -> tuple[str, str, int] | None:
    """``(inspection_id, annotation_id, renderer)`` of a marked-up copy's key of this case."""
    match = _MARKED_UP_KEY.fullmatch(key)
    if not match or match["case"] != case_id:
        return None
    return match["insp"], match["id"], int(match["version"])


def parse_report_key(case_id: str, key: str) -> tuple[str, int, str] | None:
    """``(inspection_id, version, format)`` of a report key of this case, or None."""
    match = _REPORT_KEY.fullmatch(key)
    if not match or match["case"] != case_id or match["version"] == "000":
        return None
    return match["insp"], int(match["version"]), match["format"]


def timestamp_key(case_id: str, tsa_id: str, document_key: str) -> str:
    """Key of the timestamp token by TSA ``tsa_id`` over a checkpoint or a manifest of the case."""
    if not isinstance(tsa_id, str) or not TSA_ID_PATTERN.fullmatch(tsa_id):
        raise ValueError(f"tsa_id {tsa_id!r} must be 16 lower-case hex digits")
    base = f"{case_prefix(case_id)}timestamps/{tsa_id}/"
    if (seq := parse_checkpoint_key(case_id, document_key)) is not None:
        return f"{base}checkpoints/{seq:012d}.tsr"
    if (inspection_id := parse_manifest_key(case_id, document_key)) is not None:
        return f"{base}inspections/{inspection_id}/manifest.tsr"
    raise ValueError(f"{document_key!r} is not a checkpoint or manifest of case {case_id!r}")


def parse_timestamp_key(case_id: str, key: str) -> tuple[str, str] | None:
    """``(tsa_id, key of the stamped checkpoint or manifest)`` of a token key of this case."""
    match = _TIMESTAMP_KEY.fullmatch(key)
    if not match or match["case"] != case_id:
        return None
    if match["seq"] is not None:
        return match["tsa"], checkpoint_key(case_id, int(match["seq"]))
    return match["tsa"], manifest_key(case_id, match["insp"])

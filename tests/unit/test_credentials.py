"""core.credentials and core.logs: hashing, sealing, URL splitting, masking."""

from __future__ import annotations

import logging

import pytest

from core.credentials import (
    CredentialBox,
    hash_secret,
    legacy_scrypt_hash,
    mask_text,
    split_rtsp_url,
    verify_secret,
    with_password,
)
from core.errors import InvalidInput
from core.logs import MaskSecretsFilter


def test_hash_is_salted_and_verifies():
    first, second = hash_secret("s3cret"), hash_secret("s3cret")
    assert first != second
    assert verify_secret("s3cret", first) and verify_secret("s3cret", second)
    assert not verify_secret("s3cret!", first)
    assert not verify_secret("s3cret", "md5$x$y$z")
    assert not verify_secret("s3cret", "garbage")


@pytest.mark.real_password_hashes
def test_secrets_are_argon2id_and_scrypt_hashes_of_earlier_releases_still_verify():
    from core.passwords import needs_rehash

    stored = hash_secret("chosen by a person")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not needs_rehash(stored)
    legacy = legacy_scrypt_hash("chosen by a person")
    assert legacy.startswith("scrypt$16384$")
    assert verify_secret("chosen by a person", legacy)
    assert not verify_secret("chosen by a person?", legacy)
    assert needs_rehash(legacy) and needs_rehash("garbage")


def test_sealed_password_opens_only_with_the_same_key():
    sealed = CredentialBox("key-one").seal("hunter2")
    assert "hunter2" not in sealed
    assert CredentialBox("key-one").open(sealed) == "hunter2"
    with pytest.raises(InvalidInput):
        CredentialBox("key-two").open(sealed)


@pytest.mark.parametrize("url, stored, password", [
    ("rtsp://cam.local/stream", "rtsp://cam.local/stream", None),
    ("RTSP://u:p@10.0.0.2:554/s?x=1", "rtsp://u@10.0.0.2:554/s?x=1", "p"),
    ("rtsps://u:p%40ss@cam:322/s", "rtsps://u@cam:322/s", "p@ss"),
    ("rtsp://[2001:db8::1]:554/s", "rtsp://[2001:db8::1]:554/s", None),
    ("rtsp://:only@cam/s", "rtsp://@cam/s", "only"),
])
def test_split_and_rejoin(url, stored, password):
    assert split_rtsp_url(url) == (stored, password)
    rejoined = with_password(stored, password, masked=False)
    assert split_rtsp_url(rejoined) == (stored, password)
    if password:
        assert "******" in with_password(stored, password, masked=True)


@pytest.mark.parametrize("url", ["http://cam/s", "rtsp://", "rtsp:///path", "cam:554",
                                 "rtsp://cam:70000/", "rtsp://c am/", "rtsp://" + "a" * 2100])
def test_bad_urls_are_refused(url):
    with pytest.raises(InvalidInput):
        split_rtsp_url(url)


def test_mask_text_and_log_filter():
    line = "opening rtsp://admin:pa55@10.1.1.1/s and rtsps://x:y@h/z, not http://host/a:b@c"
    assert mask_text(line) == (
        "opening rtsp://admin:******@10.1.1.1/s and rtsps://x:******@h/z, not http://host/a:b@c")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "url=%s", ("rtsp://a:b@h/",), None)
    MaskSecretsFilter().filter(record)
    assert record.getMessage() == "url=rtsp://a:******@h/"

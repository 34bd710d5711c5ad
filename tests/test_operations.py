"""What planning shows besides the fixtures of tests/operations/: secrets are masked in every output."""

from __future__ import annotations

from fabstack.engine.masking import Masker, secret_values


def test_masker_hides_secret_values_by_key_name() -> None:
    secrets = secret_values({"db_password": "s3cr3t!", "redis": {"auth_token": "tok-123"}, "port": 5432})
    mask = Masker(secrets)
    text = mask("password=s3cr3t! token tok-123 port 5432")
    assert "s3cr3t!" not in text and "tok-123" not in text and "5432" in text

"""On Windows `.env` gets an ACL for the kiosk's user alone (mkstemp's 0600 means nothing there). Windows is not here,
so the code path is run with icacls stood in for: what it is asked, when, and what a refusal leaves behind."""
import subprocess
from pathlib import Path

import pytest

from kiosk.admin import envfile

WINDOWS_ENV = {"SystemRoot": r"C:\WINDOWS", "USERDOMAIN": "SHOP", "USERNAME": "till"}


def test_icacls_is_asked_by_its_full_path_for_this_user_alone():
    assert envfile.owner_only_command(r"C:\Kiosk\.env.tmp", WINDOWS_ENV) == [
        r"C:\WINDOWS\System32\icacls.exe", r"C:\Kiosk\.env.tmp", "/inheritance:r", "/grant:r", r"SHOP\till:F"]


def test_the_acl_is_set_before_the_file_takes_its_name(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("KIOSK_SHOP_NAME=Old\n")
    seen = []

    def icacls(argv, **kwargs):
        # At this moment the keys are only in the temporary file; .env still holds the old text.
        seen.append((argv[1:], Path(argv[1]).read_text(), env.read_text()))
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(envfile, "WINDOWS", True)
    monkeypatch.setattr(envfile.subprocess, "run", icacls)
    envfile.save(env, {"STRIPE_SECRET_KEY": "sk_test_new"})
    [(args, temp_text, name_text)] = seen
    assert args[1:] == ["/inheritance:r", "/grant:r", args[-1]] and args[-1].endswith(":F")
    assert "sk_test_new" in temp_text and name_text == "KIOSK_SHOP_NAME=Old\n"
    assert "STRIPE_SECRET_KEY=sk_test_new" in env.read_text()


def test_icacls_refusing_leaves_the_old_file_and_no_copy(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("KIOSK_SHOP_NAME=Old\n")

    def icacls(argv, **kwargs):
        raise subprocess.CalledProcessError(5, argv, stderr=b"Access is denied.")

    monkeypatch.setattr(envfile, "WINDOWS", True)
    monkeypatch.setattr(envfile.subprocess, "run", icacls)
    with pytest.raises(envfile.EnvFileError) as refused:
        envfile.save(env, {"STRIPE_SECRET_KEY": "sk_test_new"})
    assert "Nothing was changed" in str(refused.value)
    assert env.read_text() == "KIOSK_SHOP_NAME=Old\n" and sorted(p.name for p in tmp_path.iterdir()) == [".env"]

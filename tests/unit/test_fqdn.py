"""initd.fqdn's pure logic: template resolution, name checks, the environment."""
import os

import pytest

from initd import fqdn

LIB = fqdn.library_path()


def resolve(template, short="unicorn-1"):
    return fqdn.resolve(template, short)


def test_library_path_is_the_installed_library_next_to_the_package():
    assert os.path.isabs(LIB)
    assert LIB == os.path.join(os.path.dirname(fqdn.__file__), "_bin", "libinitd_fqdn.so")


@pytest.mark.parametrize("template, expected", [
    ("{hostname}.server2.example.com", "unicorn-1.server2.example.com"),
    ("{hostname}", "unicorn-1"),
    ("web.example.com", "web.example.com"),  # no placeholder: a fixed name
    ("{hostname}.{hostname}", "unicorn-1.unicorn-1"),
    ("UNICORN-1.Example.COM", "UNICORN-1.Example.COM"),  # case is kept
    ("a" * 63, "a" * 63),  # longest label
    ("a." * 31 + "bc", "a." * 31 + "bc"),  # exactly 64 characters
    ("1.2.3", "1.2.3"),  # digits-only labels are valid hostnames (RFC 1123)
])
def test_resolve_valid(template, expected):
    assert resolve(template) == expected


@pytest.mark.parametrize("template, short, words", [
    ("", "unicorn-1", "empty name"),
    ("{host}.example.com", "unicorn-1", "unknown placeholder {host}"),
    ("{HOSTNAME}.example.com", "unicorn-1", "unknown placeholder {HOSTNAME}"),
    ("{}.example.com", "unicorn-1", "unknown placeholder {}"),
    ("{hostname.example.com", "unicorn-1", "unbalanced brace"),
    ("hostname}.example.com", "unicorn-1", "unbalanced brace"),
    ("{{hostname}}.example.com", "unicorn-1", "unbalanced brace"),
    ("{hostname}..example.com", "unicorn-1", "empty label"),
    (".{hostname}.example.com", "unicorn-1", "empty label"),
    ("{hostname}.example.com.", "unicorn-1", "empty label"),  # no trailing dot
    ("{hostname}.exa_mple.com", "unicorn-1", "holds '_'"),
    ("{hostname}.exa mple.com", "unicorn-1", "holds ' '"),
    ("{hostname}.bücher.de", "unicorn-1", "holds 'ü'"),  # IDNs go in as punycode
    ("{hostname}.-example.com", "unicorn-1", "starts or ends with '-'"),
    ("{hostname}.example-.com", "unicorn-1", "starts or ends with '-'"),
    ("a" * 64, "unicorn-1", "at most 63"),  # fits the kernel, not DNS
    ("a." * 31 + "bcd", "unicorn-1", "65 characters"),
    ("{hostname}.server2.example.com", "x" * 45, "65 characters"),
    ("{hostname}.example.com", "", "empty label"),  # no short name to put in
    ("{hostname}.example.com", "bad_host", "holds '_'"),
])
def test_resolve_invalid_says_what_is_wrong(template, short, words):
    with pytest.raises(ValueError) as info:
        fqdn.resolve(template, short)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_preload_env_sets_name_and_library_without_touching_the_input():
    env = {"PATH": "/usr/bin"}
    new = fqdn.preload_env(env, "unicorn-1.server2.example.com")
    assert new == {"PATH": "/usr/bin", "INITD_FQDN": "unicorn-1.server2.example.com",
                   "LD_PRELOAD": LIB}
    assert env == {"PATH": "/usr/bin"}


@pytest.mark.parametrize("existing, expected", [
    ("", LIB),
    ("   ", LIB),
    ("/opt/libfoo.so", "/opt/libfoo.so " + LIB),
    ("/opt/a.so:/opt/b.so", "/opt/a.so:/opt/b.so " + LIB),
    (LIB, LIB),  # not added twice
    ("/opt/a.so " + LIB, "/opt/a.so " + LIB),
    (LIB + ":/opt/a.so", LIB + ":/opt/a.so"),
])
def test_preload_env_appends_to_existing_ld_preload_once(existing, expected):
    new = fqdn.preload_env({"LD_PRELOAD": existing}, "a.example.com")
    assert new["LD_PRELOAD"] == expected


def test_preload_env_twice_is_the_same_as_once():
    once = fqdn.preload_env({"LD_PRELOAD": "/opt/a.so"}, "a.example.com")
    assert fqdn.preload_env(once, "a.example.com") == once


def test_preload_env_replaces_an_inherited_name():
    new = fqdn.preload_env({"INITD_FQDN": "old.example.com"}, "new.example.com")
    assert new["INITD_FQDN"] == "new.example.com"


def test_preload_env_refuses_a_library_path_ld_so_would_split(monkeypatch):
    monkeypatch.setattr(fqdn, "library_path", lambda: "/opt/my apps/libinitd_fqdn.so")
    with pytest.raises(ValueError, match="space or ':'"):
        fqdn.preload_env({}, "a.example.com")


"""initd.fqdn's pure logic: template resolution, name checks, the environment.

resolve_name() returns (name, None) or, when only the runtime hostname makes
the name invalid, (None, warning); a template that can never work raises."""
import os

import pytest

from initd import fqdn

LIB = fqdn.library_path()


# A pod name as Kubernetes makes them: a StatefulSet or a long Deployment
# name plus its suffixes, cut at 63 characters (a DNS label's limit).
POD_63 = "shop-web-payments-eu-west-1-production-canary-7d9f8b6c5d-x2x4z"[:63].ljust(63, "z")


def resolve(template, short="unicorn-1"):
    name, warning = fqdn.resolve_name(template, short)
    assert warning is None, warning
    return name


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
    ("{hostname}{fqdn}x{FQDN}", "unicorn-1", "unknown placeholder {FQDN}"),
    ("{hostname}." + "d" * 31 + "." + "e" * 31, "unicorn-1", "64 characters without its"),
    ("{fqdn}.example-.com", "unicorn-1", "starts or ends with '-'"),
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
])
def test_a_template_that_can_never_work_is_an_error(template, short, words):
    with pytest.raises(ValueError) as info:
        fqdn.resolve_name(template, short)
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    # The same error without any hostname: what `initd check` reports.
    with pytest.raises(ValueError) as info:
        fqdn.check_template(template)
    assert words in str(info.value)


@pytest.mark.parametrize("template", [
    "{hostname}.server2.example.com", "{fqdn}", "{hostname}", "web.example.com",
    "{hostname}." + "d" * 52,  # 53 fixed characters: fits with a hostname of up to 11
])
def test_check_template_accepts_what_some_hostname_makes_valid(template):
    assert fqdn.check_template(template) is None


@pytest.mark.parametrize("template, nodename, words", [
    # The README's own template on a 63-character pod name: 83 characters.
    ("{hostname}.server2.example.com", POD_63, "83 characters"),
    ("{hostname}.server2.example.com", "x" * 45, "65 characters"),
    ("{fqdn}.example.com", POD_63, "75 characters"),
    ("{hostname}.example.com", "", "empty label"),  # no short name to put in
    ("{hostname}.example.com", "bad_host", "holds '_'"),
    ("{fqdn}", "a..b", "empty label"),
])
def test_a_hostname_that_makes_the_name_invalid_is_a_warning_not_an_error(
        template, nodename, words):
    name, warning = fqdn.resolve_name(template, nodename)
    assert name is None
    assert words in warning
    assert "kernel's hostname instead" in warning
    assert repr(nodename) in warning and repr(template) in warning
    assert "\n" not in warning


def test_a_63_character_pod_name_fits_a_short_enough_domain():
    assert len(POD_63) == 63
    assert resolve("{hostname}", POD_63) == POD_63
    assert resolve("{fqdn}", POD_63) == POD_63
    # 64 is the kernel's limit; 63 + "." leaves no room for a domain.
    name, warning = fqdn.resolve_name("{hostname}.a", POD_63)
    assert name is None and "65 characters" in warning


@pytest.mark.parametrize("template, nodename, expected", [
    # {hostname} is the short name: the kernel hostname up to the first dot.
    ("{hostname}", "web-0.web.default.svc.cluster.local", "web-0"),
    ("{hostname}.server2.example.com", "web-0.web.default.svc.cluster.local",
     "web-0.server2.example.com"),  # setHostnameAsFQDN: not appended twice
    ("{hostname}.server2.example.com", "web-0.server2.example.com",
     "web-0.server2.example.com"),
    # {fqdn} is the whole kernel hostname.
    ("{fqdn}", "web-0.web.default.svc.cluster.local", "web-0.web.default.svc.cluster.local"),
    ("{fqdn}.example.com", "unicorn-1", "unicorn-1.example.com"),
    # A name that already ends in the template's domain does not get it twice
    # (compared as DNS compares, ignoring case; on a label boundary only).
    ("{fqdn}.example.com", "web-0.example.com", "web-0.example.com"),
    ("{fqdn}.example.com", "web-0.EXAMPLE.com", "web-0.example.com"),  # template's spelling
    ("{fqdn}.example.com", "web-0.myexample.com", "web-0.myexample.com.example.com"),
    ("{fqdn}.example.com", "example.com", "example.com.example.com"),
])
def test_hostname_is_the_short_name_and_fqdn_the_full_one(template, nodename, expected):
    assert resolve(template, nodename) == expected


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


"""web_fetch's URL rule: only URLs from the conversation, only public http(s) hosts, the
client's domain lists; and the DNS half (with scripted resolvers: no network here)."""

from __future__ import annotations

import asyncio

import pytest

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    ServerToolError,
    TextPart,
    ToolResultPart,
    ToolUsePart,
    WebFetchPage,
    WebSearchHit,
)
from proxy.web_tools.resolve import host_refusal, system_resolver
from proxy.web_tools.spec import FetchSpec, SourceFilter, UrlSources
from proxy.web_tools.urls import (
    address_is_public,
    conversation_urls,
    domain_matches,
    fetch_refusal,
    host_refused,
    normalize_url,
    result_urls,
    urls_in_text,
)


def test_urls_in_text_drop_the_punctuation_around_them() -> None:
    text = ("See https://a.example/x. Or (https://b.example/y), [doc](https://c.example/z) "
            "and https://en.wikipedia.org/wiki/Python_(language)! Also HTTP://D.example?q=1; "
            "not ftp://e.example or www.f.example.")
    assert urls_in_text(text) == [
        "https://a.example/x", "https://b.example/y", "https://c.example/z",
        "https://en.wikipedia.org/wiki/Python_(language)", "HTTP://D.example?q=1"]


@pytest.mark.parametrize(("url", "normal"), [
    ("HTTPS://Example.COM", "https://example.com/"),
    ("https://example.com:443/a#frag", "https://example.com/a"),
    ("http://example.com:80/a?b=1", "http://example.com/a?b=1"),
    ("http://example.com:8080/", "http://example.com:8080/"),
    ("https://example.com./a", "https://example.com/a"),
    ("https://[2606:4700::1111]/", "https://[2606:4700::1111]/"),
    ("ftp://example.com/", None), ("mailto:a@example.com", None), ("https:///path", None),
    ("https://example.com:99999/", None),
])
def test_normalize(url: str, normal: str | None) -> None:
    assert normalize_url(url) == normal


@pytest.mark.parametrize("host", [
    "localhost", "app.localhost", "127.0.0.1", "127.1", "2130706433", "0x7f.1", "0177.0.0.1",
    "::1", "[::1]", "::ffff:127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1",
    "169.254.169.254", "fd00:ec2::254", "fe80::1", "100.100.100.200", "0.0.0.0", "::",
    "224.0.0.1", "192.0.2.1", "2002:a00:1::", "64:ff9b::a00:1", "metadata.google.internal",
    "printer.local", "intranet", "metadata", "router.lan", "1.0.0.10.in-addr.arpa", "",
])
def test_hosts_that_are_refused_by_name(host: str) -> None:
    assert host_refused(host)


@pytest.mark.parametrize("host", ["example.com", "docs.python.org", "8.8.8.8",
                                  "2606:4700:4700::1111", "1.1.1.1", "xn--bcher-kva.example"])
def test_public_hosts_pass(host: str) -> None:
    assert not host_refused(host)


def test_addresses() -> None:
    assert address_is_public("93.184.215.14")
    assert not address_is_public("100.64.0.1")  # shared address space
    assert not address_is_public("::ffff:10.1.2.3")


SPEC = FetchSpec()
KNOWN = {"https://docs.example.com/page", "https://example.org/a?b=1"}


@pytest.mark.parametrize(("url", "code"), [
    ("https://docs.example.com/page", None),
    ("HTTPS://DOCS.example.com/page#top", None),  # the same URL, written differently
    ("https://docs.example.com/page?leak=secret", "url_not_in_prior_context"),
    ("https://docs.example.com/page/more", "url_not_in_prior_context"),
    ("https://evil.example/?q=secret", "url_not_in_prior_context"),
    ("file:///etc/passwd", "url_not_allowed"),
    ("ftp://docs.example.com/page", "url_not_allowed"),
    ("javascript:alert(1)", "url_not_allowed"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "url_not_allowed"),
    ("http://127.0.0.1:8080/admin", "url_not_allowed"),
    ("http://169.254.169.254/latest/meta-data/", "url_not_allowed"),
    ("http://user:pw@docs.example.com/page", "url_not_allowed"),
    ("https://", "invalid_tool_input"),
    ("", "invalid_tool_input"),
    (None, "invalid_tool_input"),
    (["https://docs.example.com/page"], "invalid_tool_input"),
    ("https://docs.example.com/" + "a" * 2100, "url_too_long"),
])
def test_fetch_refusals(url: object, code: str | None) -> None:
    assert fetch_refusal(url, known=KNOWN, spec=SPEC) == code


def test_a_private_url_is_refused_even_when_the_user_gave_it() -> None:
    assert fetch_refusal("http://10.0.0.1/", known={"http://10.0.0.1/"},
                         spec=SPEC) == "url_not_allowed"


def test_the_domain_lists_apply_to_fetches() -> None:
    allowed = FetchSpec(allowed_domains=("example.org",))
    assert fetch_refusal("https://example.org/a?b=1", known=KNOWN, spec=allowed) is None
    assert fetch_refusal("https://docs.example.com/page", known=KNOWN,
                         spec=allowed) == "url_not_allowed"
    blocked = FetchSpec(blocked_domains=("example.com",))
    assert fetch_refusal("https://docs.example.com/page", known=KNOWN,
                         spec=blocked) == "url_not_allowed"


@pytest.mark.parametrize(("url", "domains", "match"), [
    ("https://example.com/", ("example.com",), True),
    ("https://docs.example.com/x", ("example.com",), True),
    ("https://notexample.com/", ("example.com",), False),
    ("https://example.com/", ("docs.example.com",), False),
    ("https://example.com/blog/post", ("example.com/blog",), True),
    ("https://example.com/blog", ("example.com/blog",), True),
    ("https://example.com/blogger", ("example.com/blog",), False),
    ("https://a.example.com/", ("*.example.com",), True),
])
def test_domain_matches(url: str, domains: tuple[str, ...], match: bool) -> None:
    assert domain_matches(url, domains) is match


CONVERSATION = (
    Message("system", (TextPart("Docs at https://system.example/prompt"),)),
    Message("user", (TextPart("Read https://user.example/a and tell me."),
                     ImagePart(url="https://img.example/cat.png"),
                     DocumentPart(url="https://doc.example/paper.pdf"))),
    Message("assistant", (TextPart("Maybe https://made-up.example/ ?"),
                          ToolUsePart("t1", "Read", {}), ToolUsePart("t2", "Bash", {}))),
    Message("user", (ToolResultPart("t1", (TextPart("see https://read.example/r"),)),
                     ToolResultPart("t2", (TextPart("curl https://bash.example/b"),)))),
)


def test_conversation_urls_come_from_the_user_and_client_tools_only() -> None:
    assert conversation_urls(CONVERSATION) == {
        "https://user.example/a", "https://img.example/cat.png", "https://doc.example/paper.pdf",
        "https://read.example/r", "https://bash.example/b"}


def test_url_sources_narrow_them() -> None:
    only_read = UrlSources(user_input=False,
                           client_tool_results=SourceFilter("only", frozenset({"Read"})))
    assert conversation_urls(CONVERSATION, only_read) == {"https://read.example/r"}
    no_tools = UrlSources(client_tool_results=SourceFilter("none"))
    assert "https://bash.example/b" not in conversation_urls(CONVERSATION, no_tools)


def test_results_make_their_urls_fetchable() -> None:
    hits = (WebSearchHit("https://a.example/1", "A", ""), WebSearchHit("not a url", "B", ""))
    assert result_urls(hits) == {"https://a.example/1"}
    page = WebFetchPage("https://a.example/1", "links: [x](https://b.example/2).")
    assert result_urls(page) == {"https://a.example/1", "https://b.example/2"}
    assert result_urls(ServerToolError("unavailable")) == set()


# --- the DNS half -------------------------------------------------------------------------


def resolver(*addresses: str, fail: bool = False, hang: bool = False):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    async def resolve(host: str) -> list[str]:
        asked.append(host)
        if fail:
            raise OSError("Name or service not known")
        if hang:
            await asyncio.Event().wait()
        return list(addresses)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(("addresses", "code"), [
    (("93.184.215.14",), None),
    (("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"), None),
    (("10.0.0.5",), "url_not_allowed"),  # a public name for a private address
    (("93.184.215.14", "127.0.0.1"), "url_not_allowed"),  # any one private address is enough
    (("fe80::1%eth0",), "url_not_allowed"),
    (("not-an-address",), "url_not_allowed"),
    ((), "url_not_accessible"),
])
async def test_every_resolved_address_must_be_public(addresses: tuple[str, ...],
                                                     code: str | None) -> None:
    assert await host_refusal("www.example.com", resolver(*addresses)) == code


async def test_names_refused_by_name_are_never_resolved() -> None:
    resolve = resolver("93.184.215.14")
    assert await host_refusal("localhost", resolve) == "url_not_allowed"
    assert resolve.asked == []  # type: ignore[attr-defined]


async def test_a_name_that_does_not_resolve_is_not_accessible() -> None:
    assert await host_refusal("nx.example.com", resolver(fail=True)) == "url_not_accessible"
    assert await host_refusal("slow.example.com", resolver(hang=True),
                              timeout=0.05) == "url_not_accessible"


async def test_the_system_resolver_answers_addresses() -> None:
    addresses = await system_resolver("localhost")  # /etc/hosts: no network needed
    assert addresses and all(not address_is_public(a.partition("%")[0]) for a in addresses)

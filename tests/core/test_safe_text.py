"""`reviewers.safe_text`: each neutralisation and each redaction pattern, one test apiece."""

from __future__ import annotations

import json
import re
import time

import pytest
from markdown_it import MarkdownIt

from reviewers.safe_text import (
    MESSAGE_LIMIT,
    REDACTED,
    TRUNCATED,
    code_fence,
    code_span,
    redact,
    safe_text,
)

MD = MarkdownIt("commonmark")


def html_of(markdown: str) -> str:
    return MD.render(markdown)


# --- neutralisation ---------------------------------------------------------------------------------


def test_user_and_team_mentions_mention_nobody() -> None:
    out = safe_text("ping @octocat and @org/team now")
    assert re.search(r"@[A-Za-z]", out) is None
    assert "@\u200boctocat" in out and "@\u200borg/team" in out


def test_raw_html_becomes_text() -> None:
    out = safe_text('<img src=x onerror=alert(1)> <script>alert(1)</script>')
    assert "<" not in out and ">" not in out
    assert "<img" not in html_of(out) and "&lt;img src=x onerror=alert(1)&gt;" in html_of(out)


def test_html_comment_and_fake_fingerprint_become_visible_text() -> None:
    out = safe_text("fine <!-- calora:fp=0123456789abcdef --> really")
    assert "<!--" not in out
    assert "<!--" not in html_of(out)


def test_markdown_image_is_not_an_image() -> None:
    for image in ("look ![x](http://evil.example/p.png)", "![x][r]\n\n[r]: http://evil.example/p.png",
                  "![a [b] c]\n(http://evil.example/p.png)"):
        assert "<img" not in html_of(safe_text(image)), image


def test_brackets_that_form_no_link_stay_readable() -> None:
    assert safe_text("[blocker] see [1]") == "[blocker] see [1]"


@pytest.mark.parametrize("link", ["[click](javascript:alert(1))", "[c](data:text/html;base64,PHNjcmlwdD4=)",
                                  "[c](https://ok.example)", "<javascript:alert(1)>",
                                  "[c][r]\n\n[r]: javascript:alert(1)", "[a [b]](javascript:x)"])
def test_links_do_not_render(link: str) -> None:
    rendered = html_of(safe_text(link))
    assert "<a " not in rendered
    assert "javascript:" not in safe_text(link) and "data:" not in safe_text(link)


def test_backticks_cannot_open_a_code_span_or_fence() -> None:
    out = safe_text("```\n# swallowed\n~~~\nand `x")
    rendered = html_of(out)
    assert "<code>" not in rendered and "<pre>" not in rendered and "<h1>" in rendered


def test_long_text_is_capped_with_a_visible_note() -> None:
    out = safe_text("a" * 2_000_000)
    assert len(out) <= MESSAGE_LIMIT + len(TRUNCATED) + 1 and out.endswith(TRUNCATED)
    assert safe_text("short") == "short"


def test_one_line_folds_whitespace_and_drops_controls() -> None:
    assert safe_text("a\n\n b\x1b[31m \u202eevil", one_line=True) == "a b[31m evil"


@pytest.mark.parametrize("path", ["a`b.py", "``x``", "`lead.py", "p.py` <img src=x onerror=alert(1)> `"])
def test_code_span_holds_any_path(path: str) -> None:
    rendered = html_of("see " + code_span(path) + " done")
    assert rendered.count("<code>") == 1 and "<img" not in rendered
    inner = re.search(r"<code>(.*)</code>", rendered).group(1)
    assert inner.strip() == path.replace("<", "&lt;").replace(">", "&gt;").strip()


def test_code_span_breaks_an_html_comment_marker() -> None:
    assert "<!--" not in code_span("<!-- calora:fp=0123456789abcdef -->")


def test_code_fence_holds_any_code() -> None:
    code = "x = 1\n````\n```\nafter = 2\n"
    block = code_fence(code, "suggestion")
    assert block.startswith("`````suggestion\n")
    rendered = html_of(block + "\n\nafter the block")
    assert rendered.count("<pre>") == 1 and "<p>after the block</p>" in rendered
    assert "after = 2" in re.search(r"<pre>(.*)</pre>", rendered, re.DOTALL).group(1)


# --- redaction: one test per pattern ----------------------------------------------------------------

AWS_ID = "AKIAIOSFODNN7EXAMPLE"
SECRETS = {
    "aws access key id": f"key id {AWS_ID} leaked",
    "aws temporary key id": "ASIAY34FZKBOKMUTVV7A was used",
    "aws secret key": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "github classic token": "token ghp_" + "a1B2" * 9,
    "github oauth token": "gho_" + "Z9y8" * 9,
    "github app token": "ghs_" + "Q1w2" * 9,
    "github user token": "ghu_" + "E3r4" * 9,
    "github fine-grained token": "github_pat_11ABCDEFG0" + "x" * 60,
    "slack token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "google api key": "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    "private key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
    "cut private key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
    "password assignment": 'password = "hunter2hunter2"',
    "api_key assignment": "API_KEY: 'q8Jd0s9Lk2mZ'",
    "json token": '{"auth_token": "b6c1f0e4a9d27"}',
    "unquoted env secret": "CLIENT_SECRET=9f8e7d6c5b4a3f2e1d0c",
    "cut github token": "token ghp_A1b2C3d4E5f…",
    "cut aws key id": "AKIAIOSFODNN…",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "bearer": "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
}
SECRET_VALUES = {
    "aws access key id": AWS_ID, "aws temporary key id": "ASIAY34FZKBOKMUTVV7A",
    "aws secret key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "github classic token": "a1B2a1B2",
    "github oauth token": "Z9y8Z9y8", "github app token": "Q1w2Q1w2", "github user token": "E3r4E3r4",
    "github fine-grained token": "xxxxxxxx", "slack token": "AbCdEfGhIjKl", "google api key": "abcdefghijkl",
    "private key": "MIIEowIBAAKCAQEA7", "cut private key": "b3BlbnNzaC1rZXktdjEAAAAA",
    "password assignment": "hunter2hunter2", "api_key assignment": "q8Jd0s9Lk2mZ",
    "json token": "b6c1f0e4a9d27", "unquoted env secret": "9f8e7d6c5b4a3f2e1d0c",
    "jwt": "dozjgNryP4J3", "cut github token": "A1b2C3d4E5f", "cut aws key id": "IOSFODNN", "bearer": "abcdefghijklmnop",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_redact_removes_each_credential_format(kind: str) -> None:
    out = redact(SECRETS[kind])
    assert SECRET_VALUES[kind] not in out and REDACTED in out


def test_redact_removes_the_callers_known_secrets() -> None:
    assert redact("the webhook secret is s3cr3t-value", ["s3cr3t-value", "ab"]) == f"the webhook secret is {REDACTED}"


def test_redact_leaves_ordinary_review_text_alone() -> None:
    text = ("token budget 3000 exceeded; password check is missing; `os.system(cmd)` runs input "
            "<!-- calora:fp=0123456789abcdef --> <!-- calora:review=0011223344556677 -->")
    assert redact(text) == text


def test_redacted_json_stays_valid_json() -> None:
    data = {"message": 'uses password = "hunter2hunter2" and ' + SECRETS["private key"], "path": AWS_ID,
            "note": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE", "next": "kept"}
    out = json.loads(redact(json.dumps(data, indent=2)))
    assert "hunter2hunter2" not in out["message"] and out["path"] == REDACTED and out["next"] == "kept"
    assert "MHcCAQEE" not in out["note"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("hostile", ["token_" * 50_000, "eyJ" * 200_000, "-----BEGIN RSA PRIVATE KEY-----a" * 20_000])
def test_redact_takes_linear_time_on_hostile_text(hostile: str) -> None:
    started = time.perf_counter()
    redact(hostile)
    assert time.perf_counter() - started < 3.0

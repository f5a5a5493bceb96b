"""Model text on console pages: escaped by the templates, capped and redacted by the `model` filter."""

from __future__ import annotations

from types import SimpleNamespace

from app.console.pages import make_environment
from reviewers.contract import Finding

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
HOSTILE = (f"@org/team <img src=x onerror=alert(1)> <!-- calora:fp=0123456789abcdef --> key {AWS_KEY} "
           f"token {GH_TOKEN} " + "A" * 2_000_000)


def test_a_hostile_finding_card_is_escaped_capped_and_redacted() -> None:
    finding = Finding(path="app/x.py", line=3, severity="major", category="security", message=HOSTILE,
                      suggestion=f"<script>alert(1)</script> # {GH_TOKEN}\n" + "B" * 100_000)
    card = SimpleNamespace(finding=finding, raised_by=["python"], context=[])
    html = make_environment().from_string(
        '{% from "macros.html" import finding_card %}{{ finding_card(card) }}'
    ).render(card=card)
    assert "<img" not in html and "&lt;img" in html and "<script>" not in html
    assert "<!--" not in html
    assert AWS_KEY not in html and GH_TOKEN not in html and "[redacted]" in html
    assert len(html) < 20_000 and "… (truncated)" in html

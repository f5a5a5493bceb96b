"""Model text made inert wherever it is shown or posted, and secrets redacted where text leaves (pure).

A reviewer model reads an untrusted diff, so its answer is untrusted too: a prompt injection can make it
write `@org/team`, `<img onerror=…>`, `![x](http://evil/p.png)`, `[click](javascript:…)`, a fake
`<!-- calora:fp=… -->` that would silence a real finding on the next review, a path that breaks out of its
code span, a fence that swallows the rest of a comment, or 2 MB of text. Every renderer (the terminal
markdown in `reviewers.synthesis`, the PR comments and check run in `app.publishing`) passes model text
through one of the primitives here:

- `safe_text` for prose (messages, reasons, names): HTML escaped, mentions broken, markdown link, image,
  code-span and fence syntax escaped, length capped;
- `code_span` for a value shown as inline code (a path): a delimiter longer than any backtick run inside;
- `code_fence` for a code block (a ```suggestion): a fence longer than any backtick run inside;
- `plain_text` for fields GitHub shows as plain text (annotation messages).

`redact` is the one home of the credential patterns. It runs once at each exit point (the `calora review`
output, what the App posts to GitHub) over the finished text, so text the bot writes itself is covered too.
The patterns never consume a quote or a backslash, so redacting JSON text keeps it valid JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MESSAGE_LIMIT = 2000
"""Characters of one piece of model text shown anywhere; the rest is cut with TRUNCATED."""
PATH_LIMIT = 300
SUGGESTION_LIMIT = 8000
"""A suggested replacement longer than this is not shown at all: a cut one would be wrong code."""
TRUNCATED = "… (truncated)"
REDACTED = "[redacted]"

_ZWSP = "\u200b"  # zero-width space: `@\u200boctocat` is shown as @octocat but mentions nobody
# C0 controls (but tab and newline), DEL, and the bidi overrides that can make code read differently.
_INVISIBLE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
# Backslashes first (so text cannot pre-escape an escape), then backticks and tildes (code spans, fences).
_MARKDOWN_ESCAPES = str.maketrans({"\\": "\\\\", "`": "\\`", "~": "\\~"})
# A link, image or reference needs `](`, `][` or `]:` (autolinks need `<`, escaped anyway); an escaped
# `]` there leaves "[blocker]"-style brackets readable while no link or image can form.
_LINK_CLOSE_RE = re.compile(r"\](?=\s*[(\[:])")
_DANGEROUS_SCHEME_RE = re.compile(r"(?i)\b(javascript|data|vbscript)(\s*):")


def cap(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """At most `limit` characters of `text` (plus the visible TRUNCATED note)."""
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + " " + TRUNCATED


def safe_text(text: str, *, limit: int = MESSAGE_LIMIT, one_line: bool = False) -> str:
    """Untrusted text made inert for markdown and HTML (GitHub comments, check runs, the terminal).

    Raw HTML and HTML comments become visible text (`<`, `>`, `&` escaped), every `@` is followed by a
    zero-width space (no user or team mention), backticks, `~`, backslashes and the `]` of any link or
    image syntax are escaped (no link, image, code span or fence can open), `javascript:`, `data:` and
    `vbscript:` lose their colon, and the text is capped at `limit` characters. `one_line` also folds all
    whitespace (for list items and table cells).
    """
    text = _INVISIBLE_RE.sub("", cap(text, limit))
    if one_line:
        text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _LINK_CLOSE_RE.sub(r"\\]", text.translate(_MARKDOWN_ESCAPES)).replace("![", "!\\[")
    text = _DANGEROUS_SCHEME_RE.sub(r"\1\2&#58;", text)
    return text.replace("@", "@" + _ZWSP)


def plain_text(text: str, *, limit: int = MESSAGE_LIMIT) -> str:
    """Untrusted text for a plain-text field (a check-run annotation): capped, no mention, no tag.

    Nothing there renders markdown, so nothing is escaped that a reader would see as noise; a
    zero-width space after each `@` and `<` still keeps a mention or a tag (or a fake marker) from forming
    should the text ever be shown as markdown.
    """
    text = _INVISIBLE_RE.sub("", cap(text, limit))
    return text.replace("@", "@" + _ZWSP).replace("<", "<" + _ZWSP)


def code_span(text: str, *, limit: int = PATH_LIMIT) -> str:
    """`text` as one inline code span that nothing inside can close (CommonMark: a longer delimiter).

    Inside a code span nothing renders (no HTML, mention or link); only an HTML comment opener is broken
    with a zero-width space so no reader of the raw text mistakes it for one of the bot's own markers.
    """
    flat = " ".join(_INVISIBLE_RE.sub("", cap(text, limit)).split()) or " "
    flat = flat.replace("<!--", "<" + _ZWSP + "!--")
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    delimiter = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{delimiter}{pad}{flat}{pad}{delimiter}"


def code_fence(code: str, info: str = "") -> str:
    """`code` in a fenced block that no line inside can close: a backtick fence longer than any run in it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    body = _INVISIBLE_RE.sub("", code).rstrip("\n")
    return f"{fence}{info}\n{body}\n{fence}"


# --- redaction ------------------------------------------------------------------------------------

_KEYWORDS = r"(?:secret|token|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret)"

SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    # A whole PEM private key (headers such as Proc-Type included); a block cut short (by a length cap)
    # is redacted to the end of its base64. The body stops at a quote, so JSON text stays valid.
    "private key block": re.compile(
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?:[A-Za-z0-9+/=\s\\:,.]|-(?!----))*"
        r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----)?"
    ),
    # Key ids and tokens are matched from a shorter prefix than their full length, so that one a
    # renderer cut short ("ghp_A1b2C3d4E5f…") is not left half-visible.
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{8,}"),
    "AWS secret access key": re.compile(
        r"(?i)(\baws_?secret_?(?:access_?)?key\w*\s*[:=]\s*\\?[\"']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
    ),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{8,}|github_pat_[A-Za-z0-9_]{8,})"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{16,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{8,}"),
    "bearer token": re.compile(r"(?i)(\b(?:bearer|token)\s+)[A-Za-z0-9._~+/-]{20,}=*"),
    # `password = "hunter2…"`, `API_KEY: 'abc…'`, `"token": "…"`: a quoted value of 8+ characters
    # assigned to a secret-looking name (JSON-escaped quotes included). Every repetition around the
    # name is bounded: an unbounded `\w*` made a 2 MB run of word characters take minutes.
    "secret assignment": re.compile(
        rf"(?i)(\b\w{{0,40}}?{_KEYWORDS}\w{{0,40}}\\?[\"']?[ \t]*[:=][ \t]*\\?[\"'])[^\"'\s\\]{{8,}}(?=\\?[\"'])"
    ),
    # The same without quotes (`.env` style): only a value that looks random (letters and digits, 16+).
    "secret assignment (unquoted)": re.compile(
        rf"(?i)(\b\w{{0,40}}?{_KEYWORDS}\w{{0,40}}[ \t]*[:=][ \t]*)(?=[A-Za-z0-9_./+=-]{{0,200}}\d)"
        r"(?=[A-Za-z0-9_./+=-]{0,200}[A-Za-z])"
        r"[A-Za-z0-9_./+=-]{16,}"
    ),
}


def _replace(match: re.Match[str]) -> str:
    kept = match.group(1) if match.re.groups else ""
    return kept + REDACTED


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values and every credential-looking string replaced by `[redacted]`.

    `secrets` are values the caller knows (the webhook secret, an API key); values shorter than 4
    characters are ignored (they would redact ordinary words).
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern in SECRET_PATTERNS.values():
        text = pattern.sub(_replace, text)
    return text


# Files that hold credentials by their name alone: never read for review context, whatever they contain.
_SECRET_FILE_RE = re.compile(
    r"(?i)(?:^|/)(?:\.env(?:\..*)?|\.envrc|\.netrc|\.pgpass|\.npmrc|\.pypirc|\.htpasswd|\.git-credentials"
    r"|id_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?|credentials(?:\.json|\.ya?ml)?|secrets?(?:\.[\w.-]+)?"
    r"|[^/]*\.(?:pem|key|p12|pfx|jks|keystore|kdbx|ovpn|tfstate(?:\.backup)?|asc|gpg))$"
)


def is_secret_path(path: str) -> bool:
    """True for a file whose name says it holds credentials (`.env*`, keys, `*.pem`, Terraform state)."""
    return bool(_SECRET_FILE_RE.search(path))

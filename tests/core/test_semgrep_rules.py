"""calora's semgrep rules (reviewers/checks/configs/semgrep.yml): each one catches its defect and stays quiet on
the guarded twin, through the same runner a review uses (sandbox, fragments, severity map)."""

from __future__ import annotations

import json

import pytest
import yaml

from reviewers.checks import run_checks
from reviewers.checks.fragments import vue_script_view
from reviewers.checks.rules import tool_rules
from reviewers.checks.sandbox import write_tree
from reviewers.checks.tools import CONFIGS, ToolOutputError, parse_semgrep, semgrep_rules_json, tool_named
from tests.core.test_checks import needs, whole

# (rule, path, defective code, the line the finding must be on, the guarded twin)
CASES: list[tuple[str, str, str, int, str]] = [
    ("py-request-to-file-path", "app/files.py",
     ("import os\nfrom flask import request, send_file\n\n@app.get('/files')\ndef download():\n"
     "    name = request.args['name']\n    path = os.path.join(UPLOADS, name)\n    return send_file(path)\n"), 8,
     ("import os\nfrom flask import request, send_file\nfrom werkzeug.utils import secure_filename\n\n"
     "@app.get('/files')\ndef download():\n    name = secure_filename(request.args['name'])\n"
     "    path = os.path.join(UPLOADS, name)\n    return send_file(path)\n")),
    ("py-request-to-file-path", "app/export.py",
     ("from pathlib import Path\n\n@router.get('/export/{name}')\ndef export(name: str):\n"
     "    target = Path('/srv/exports') / name\n    return target.read_bytes()\n"), 6,
     ("from pathlib import Path\n\nBASE = Path('/srv/exports')\n\n@router.get('/export/{name}')\ndef export(name: str):\n"
     "    target = (BASE / name).resolve()\n    if not target.is_relative_to(BASE):\n        raise NotFound()\n"
     "    return target.read_bytes()\n")),
    ("py-request-to-file-path", "app/reports.py",
     ("from flask import request, send_file\n\n@bp.get('/reports')\ndef report():\n"
     "    return send_file(REPORTS + '/' + request.args['month'] + '.pdf')\n"), 5,
     ("from io import BytesIO\nfrom flask import send_file\n\n@bp.get('/reports/<int:report_id>.pdf')\n"
     "def report(report_id: int):\n    row = db.session.get(Report, report_id)\n"
     "    return send_file(BytesIO(render(row)), mimetype='application/pdf')\n")),
    ("py-request-to-outbound-url", "app/preview.py",
     ("import requests\nfrom flask import request\n\ndef preview():\n    url = request.json.get('url')\n"
     "    page = requests.get(url, timeout=5)\n    return page.text[:200]\n"), 6,
     ("import requests\nfrom urllib.parse import urlparse\nfrom flask import request, abort\n\nALLOWED = {'example.com'}\n\n"
     "def preview():\n    url = request.json.get('url')\n    if urlparse(url).hostname not in ALLOWED:\n        abort(400)\n"
     "    page = requests.get(url, timeout=5)\n    return page.text[:200]\n")),
    ("py-request-to-redirect", "app/login.py",
     ("from flask import redirect, request\n\ndef after_login():\n    target = request.args.get('next', '/')\n"
     "    return redirect(target)\n"), 5,
     "from flask import redirect, request, url_for\n\ndef after_login():\n    return redirect(url_for('home'))\n"),
    ("py-request-to-redirect", "app/console.py",
     ("from starlette.responses import RedirectResponse\n\n@router.get('/login')\n"
      "async def login_form(request, next: str | None = None):\n    return RedirectResponse(next, status_code=303)\n"), 5,
     ("from starlette.responses import RedirectResponse\n\n@router.get('/login')\n"
      "async def login_form(request, next: str | None = None):\n"
      "    return RedirectResponse(safe_next(next), status_code=303)\n")),
    ("py-request-mass-assignment", "app/routing.py",
     ("from flask import request\n\ndef create_item():\n    Item.objects.create(**request.POST.dict())\n"), 4,
     ("from flask import request\n\ndef dispatch(handler):\n    response = StreamingResponse(handler(), **request.json)\n"
      "    return handler(**request.json)\n")),
    ("py-request-to-redirect", "shop/views.py",
     ("from django.shortcuts import redirect\nfrom django.views import View\n\nclass Done(View):\n"
      "    def get(self, request):\n        return redirect(self.request.GET.get('next', '/'))\n"), 6,
     ("from django.shortcuts import redirect\nfrom django.utils.http import url_has_allowed_host_and_scheme\n"
      "from django.views import View\n\nclass Done(View):\n    def get(self, request):\n"
      "        target = self.request.GET.get('next', '/')\n"
      "        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):\n"
      "            target = '/'\n        return redirect(target)\n")),
    ("py-request-to-shell", "app/tools.py",
     ("import subprocess\nfrom flask import request\n\ndef ping():\n    host = request.form['host']\n"
     "    return subprocess.run(f'ping -c 1 {host}', shell=True, capture_output=True).stdout\n"), 6,
     ("import subprocess\nfrom flask import request\n\ndef ping():\n    host = request.form['host']\n"
     "    return subprocess.run(['ping', '-c', '1', host], capture_output=True).stdout\n")),
    ("py-request-to-code", "app/mail.py",
     ("from flask import request, render_template_string\n\ndef preview():\n    body = request.form['template']\n"
     "    return render_template_string(body, user=current_user)\n"), 5,
     ("from flask import request, render_template\n\ndef preview():\n    body = request.form['template']\n"
     "    return render_template('preview.html', body=body, user=current_user)\n")),
    ("py-request-to-deserializer", "app/cart.py",
     ("import base64\nimport pickle\nfrom flask import request\n\ndef cart():\n"
     "    raw = base64.b64decode(request.cookies.get('cart', ''))\n    return pickle.loads(raw)\n"), 7,
     ("import base64\nimport json\nfrom flask import request\n\ndef cart():\n"
     "    raw = base64.b64decode(request.cookies.get('cart', ''))\n    return json.loads(raw)\n")),
    ("py-request-mass-assignment", "app/profile.py",
     ("from flask import request\n\ndef update_profile(user):\n    for key, value in request.json.items():\n"
     "        setattr(user, key, value)\n    db.session.commit()\n"), 5,
     ("from flask import request\n\ndef update_profile(user):\n    for key in ('name', 'bio'):\n"
     "        setattr(user, key, request.json.get(key))\n    db.session.commit()\n")),
    ("py-request-mass-assignment", "app/signup.py",
     "from flask import request\n\ndef signup():\n    user = User(**request.get_json())\n    db.session.add(user)\n", 4,
     ("from flask import request\n\ndef signup():\n    data = SignupSchema().load(request.get_json())\n"
     "    user = User(**data)\n    db.session.add(user)\n")),
    ("py-predictable-random-secret", "app/reset.py",
     ("import random\nimport string\n\ndef start_reset(user):\n"
     "    token = ''.join(random.choice(string.ascii_letters) for _ in range(32))\n    user.reset_token = token\n"), 5,
     "import secrets\n\ndef start_reset(user):\n    token = secrets.token_urlsafe(32)\n    user.reset_token = token\n"),
    ("py-secret-with-hardcoded-fallback", "app/settings.py",
     "import os\n\nSECRET_KEY = os.environ.get('SECRET_KEY', 'dev-secret-change-me')\n", 3,
     "import os\n\nSECRET_KEY = os.environ['SECRET_KEY']\nDEBUG = os.environ.get('DEBUG_LEVEL', 'info')\n"),
    ("py-digest-compared-with-equals", "app/webhooks.py",
     ("import hashlib\nimport hmac\n\ndef verify(body, signature):\n"
     "    expected = hmac.new(KEY, body, hashlib.sha256).hexdigest()\n"
     "    return hmac.new(KEY, body, hashlib.sha256).hexdigest() == signature\n"), 6,
     ("import hashlib\nimport hmac\n\ndef verify(body, signature):\n"
     "    expected = hmac.new(KEY, body, hashlib.sha256).hexdigest()\n    return hmac.compare_digest(expected, signature)\n")),
    ("js-request-to-file-path", "src/routes/files.ts",
     ("import path from 'node:path';\nimport fs from 'node:fs';\n\n"
     "export function download(req: Request, res: Response) {\n  const file = path.join(UPLOADS, req.query.name as string);\n"
     "  fs.createReadStream(file).pipe(res);\n}\n"), 6,
     ("import path from 'node:path';\nimport fs from 'node:fs';\n\n"
     "export function download(req: Request, res: Response) {\n"
     "  const file = path.join(UPLOADS, path.basename(req.query.name as string));\n  fs.createReadStream(file).pipe(res);\n}\n")),
    ("js-request-to-file-path", "src/routes/export.ts",
     ("export function exportFile(req, res) {\n  const target = path.resolve(ROOT, req.params.name);\n"
     "  res.sendFile(target);\n}\n"), 3,
     ("export function exportFile(req, res) {\n  const target = path.resolve(ROOT, req.params.name);\n"
     "  if (!target.startsWith(ROOT + path.sep)) return res.status(404).end();\n  res.sendFile(target);\n}\n")),
    ("js-request-to-file-path", "src/routes/exports.ts",
     ("exportRoutes.delete('/exports/:name', async (req, res) => {\n  const target = path.resolve(ROOT, req.params.name);\n"
     "  await rm(target, { force: true });\n  res.status(204).end();\n});\n"), 3,
     ("exportRoutes.delete('/exports/:name', async (req, res) => {\n  const target = path.resolve(ROOT, req.params.name);\n"
     "  if (path.dirname(target) !== ROOT) return res.status(400).end();\n  await rm(target, { force: true });\n"
     "  res.status(204).end();\n});\n")),
    ("js-request-to-outbound-url", "src/api/preview.ts",
     ("export async function preview(req, res) {\n  const { url } = req.body;\n  const page = await fetch(url);\n"
     "  res.json({ title: await page.text() });\n}\n"), 3,
     ("const ALLOWED = new Set(['example.com']);\n\nexport async function preview(req, res) {\n  const url = new URL(req.body.url);\n"
     "  if (!ALLOWED.has(url.hostname)) return res.status(400).end();\n  const page = await fetch(url);\n"
     "  res.json({ title: await page.text() });\n}\n")),
    ("js-request-to-outbound-url", "app/api/proxy/route.ts",
     ("export async function GET(request: Request) {\n  const target = new URL(request.url).searchParams.get('src');\n"
     "  return fetch(target!);\n}\n"), 3,
     ("export async function GET(request: Request) {\n  const id = new URL(request.url).searchParams.get('id');\n"
     "  return fetch(`${API}/items/${encodeURIComponent(id!)}`);\n}\n")),
    ("js-request-to-redirect", "src/routes/auth.ts",
     "router.get('/login/done', (req, res) => {\n  const next = req.query.next as string;\n  res.redirect(next);\n});\n", 3,
     ("router.get('/login/done', (req, res) => {\n  const next = req.query.next as string;\n"
     "  if (!next.startsWith('/') || next.startsWith('//')) return res.redirect('/');\n  res.redirect(next);\n});\n")),
    ("js-request-to-redirect", "src/routes/invoices.ts",
     ("invoices.get('/invoices/pdf', async (req, res) => {\n  res.redirect(`${req.query.host}/pdf`);\n});\n"), 2,
     ("invoices.get('/invoices/:id/pdf', async (req, res) => {\n  const invoice = await findInvoice(req.params.id);\n"
      "  res.redirect(await signedPdfUrl(invoice.pdfKey, { expiresInSeconds: 60 }));\n});\n")),
    ("js-request-to-outbound-url", "app/preview/page.tsx",
     ("export default async function Page({ searchParams }) {\n  const res = await fetch(searchParams.feed);\n"
      "  return <pre>{await res.text()}</pre>;\n}\n"), 2,
     ("const FEEDS = { news: 'https://example.com/news.xml' };\n\n"
      "export default async function Page({ searchParams }) {\n  const res = await fetch(FEEDS.news);\n"
      "  return <pre>{searchParams.feed}: {await res.text()}</pre>;\n}\n")),
    ("js-request-to-shell-or-code", "src/routes/convert.ts",
     ("import { exec } from 'node:child_process';\n\nexport function convert(req, res) {\n"
     "  exec(`convert ${req.body.file} out.png`, (err) => res.json({ ok: !err }));\n}\n"), 4,
     ("import { execFile } from 'node:child_process';\n\nexport function convert(req, res) {\n"
     "  execFile('convert', [req.body.file, 'out.png'], (err) => res.json({ ok: !err }));\n}\n")),
    ("js-request-body-merged-deeply", "src/routes/prefs.ts",
     ("import { merge } from 'lodash';\n\nexport function save(req, res) {\n  const prefs = merge({}, defaults, req.body);\n"
     "  res.json(prefs);\n}\n"), 4,
     ("export function save(req, res) {\n  const prefs = { ...defaults, theme: String(req.body.theme) };\n"
     "  res.json(prefs);\n}\n")),
    ("js-request-body-mass-assignment", "src/routes/users.ts",
     ("export async function update(req, res) {\n"
     "  const user = await prisma.user.update({ where: { id: req.user.id }, data: req.body });\n  res.json(user);\n}\n"), 2,
     ("export async function update(req, res) {\n  const { name, bio } = req.body;\n"
     "  const user = await prisma.user.update({ where: { id: req.user.id }, data: { name, bio } });\n  res.json(user);\n}\n")),
    ("js-message-listener-without-origin-check", "src/embed.ts",
     ("window.addEventListener('message', (event) => {\n  if (event.data.type === 'navigate') {\n"
     "    window.location.href = event.data.url;\n  }\n});\n"), 1,
     ("window.addEventListener('message', (event) => {\n  if (event.origin !== 'https://app.example.com') return;\n"
     "  if (event.data.type === 'navigate') {\n    window.location.href = event.data.url;\n  }\n});\n")),
    ("js-message-listener-without-origin-check", "src/bridge.js",
     "addEventListener('message', function (e) {\n  store.dispatch(e.data);\n});\n", 1,
     ("const events = new EventSource('/builds/42/log');\nevents.addEventListener('message', (e) => {\n"
     "  lines.push(e.data);\n});\n")),
    ("js-url-param-to-navigation-or-html", "src/pages/Login.tsx",
     ("export function finishLogin() {\n  const params = new URLSearchParams(window.location.search);\n"
     "  const next = params.get('next') ?? '/';\n  window.location.href = next;\n}\n"), 4,
     ("export function finishLogin() {\n  const params = new URLSearchParams(window.location.search);\n"
     "  const next = params.get('next') ?? '/';\n  if (!next.startsWith('/') || next.startsWith('//')) return;\n"
     "  window.location.href = next;\n}\n")),
    ("js-secret-with-hardcoded-fallback", "src/config.ts",
     "export const config = {\n  sessionSecret: process.env.SESSION_SECRET || 'keyboard-cat-secret',\n};\n", 2,
     "export const config = {\n  sessionSecret: required('SESSION_SECRET'),\n  logLevel: process.env.LOG_LEVEL || 'info',\n};\n"),
    ("js-predictable-random-secret", "src/invite.ts",
     ("export function createInvite(email: string) {\n  const inviteToken = Math.random().toString(36).slice(2);\n"
     "  return { email, inviteToken };\n}\n"), 2,
     ("import { randomBytes } from 'node:crypto';\n\nexport function createInvite(email: string) {\n"
     "  const inviteToken = randomBytes(24).toString('base64url');\n  const jitter = Math.random() * 100;\n"
     "  return { email, inviteToken, jitter };\n}\n")),
    ("js-tls-verification-disabled", "src/client.ts",
     "import https from 'node:https';\n\nexport const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });\n", 3,
     "import https from 'node:https';\n\nexport const agent = new https.Agent({ keepAlive: true, ca: INTERNAL_CA });\n"),
    ("js-cors-any-origin-with-credentials", "src/server.ts",
     "import cors from 'cors';\n\napp.use(cors({ origin: true, credentials: true }));\n", 3,
     "import cors from 'cors';\n\napp.use(cors({ origin: ['https://app.example.com'], credentials: true }));\n"),
    ("js-digest-compared-with-equals", "src/webhook.ts",
     ("export function verify(body: string, signature: string) {\n"
     "  return createHmac('sha256', KEY).update(body).digest('hex') === signature;\n}\n"), 2,
     ("export function verify(body: string, signature: string) {\n"
     "  const expected = Buffer.from(createHmac('sha256', KEY).update(body).digest('hex'));\n"
     "  const given = Buffer.from(signature);\n"
     "  return expected.length === given.length && timingSafeEqual(expected, given);\n}\n")),
]


@pytest.fixture(scope="module")
def findings_by_case() -> dict[str, set[tuple[str, int]]]:
    """Every case's defective and guarded file in one semgrep run (each under its own folder)."""
    needs("semgrep")
    inputs = [whole(f"{kind}/{n}/{path}", text) for n, (_, path, bad, _, good) in enumerate(CASES)
              for kind, text in (("bad", bad), ("good", good))]
    report = run_checks(inputs, tools=[tool_named("semgrep")])
    assert [run.status for run in report.runs] == ["ok"], [(r.status, r.detail) for r in report.runs]
    found: dict[str, set[tuple[str, int]]] = {item.path: set() for item in inputs}
    for finding in report.findings:
        found[finding.path].add((finding.rule, finding.line))
    return found


# --- pure: the rule file and the severity map agree; the parser reads semgrep's JSON ---------------------


def rule_ids() -> list[str]:
    return [rule["id"] for rule in yaml.safe_load((CONFIGS / "semgrep.yml").read_text(encoding="utf-8"))["rules"]]


def test_every_rule_has_a_severity_a_reference_and_a_catch_with_its_clean_twin() -> None:
    ids = rule_ids()
    assert len(ids) == len(set(ids))
    table = tool_rules("semgrep")
    assert set(table.rules) - {""} == set(ids)
    assert {rule for rule, *_ in CASES} == set(ids)
    for rule in yaml.safe_load((CONFIGS / "semgrep.yml").read_text(encoding="utf-8"))["rules"]:
        assert rule["metadata"]["references"][0].startswith("https://"), rule["id"]


def test_the_rules_reach_semgrep_as_json_without_yaml_anchors() -> None:
    """Semgrep's YAML reader has no anchors; the shared source lists are expanded before it reads them."""
    expanded = json.loads(semgrep_rules_json())
    by_id = {rule["id"]: rule for rule in expanded["rules"]}
    assert by_id["py-request-to-redirect"]["pattern-sources"] == by_id["py-request-to-file-path"]["pattern-sources"]


def test_parse_semgrep_reads_results_and_refuses_a_rule_error() -> None:
    report = {"results": [{"check_id": "py-request-to-redirect", "path": "app/login.py",
                           "start": {"line": 5}, "end": {"line": 6},
                           "extra": {"message": "open redirect", "metadata": {"references": ["https://cwe.example/601"]}}}],
              "errors": [{"level": "warn", "type": "Syntax error", "message": "partial parse"}]}
    [diag] = parse_semgrep(json.dumps(report), root=CONFIGS)
    assert (diag.path, diag.line, diag.end_line, diag.code, diag.doc_url) == (
        "app/login.py", 5, 6, "py-request-to-redirect", "https://cwe.example/601")
    broken = {"results": [], "errors": [{"level": "error", "type": "Rule parse error", "message": "bad rule"}]}
    with pytest.raises(ToolOutputError, match="bad rule"):
        parse_semgrep(json.dumps(broken), root=CONFIGS)
    with pytest.raises(ToolOutputError):
        parse_semgrep("semgrep crashed", root=CONFIGS)


# --- semgrep itself (installed by `calora checks install semgrep`) ------------------------------------------


@pytest.mark.parametrize(("n", "case"), list(enumerate(CASES)), ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_rule_catches_the_defect_and_not_its_guarded_twin(findings_by_case, n: int, case) -> None:
    rule, path, _bad, line, _good = case
    assert (rule, line) in findings_by_case[f"bad/{n}/{path}"]
    assert rule not in {found for found, _ in findings_by_case[f"good/{n}/{path}"]}


def test_no_rule_fires_on_another_rules_guarded_twin(findings_by_case) -> None:
    """The guarded twins are clean code: no rule of the pack may flag any of them."""
    noisy = {path: hits for path, hits in findings_by_case.items() if path.startswith("good/") and hits}
    assert not noisy


def test_a_pull_requests_semgrepignore_and_rules_are_never_read(findings_by_case, tmp_path) -> None:
    """A PR that adds `.semgrepignore` (hiding its defect) or its own `.semgrep.yml` changes nothing: neither is
    written to the sandbox, and semgrep runs calora's rules only."""
    rule, path, bad, line, _ = CASES[0]
    hostile = [whole(".semgrepignore", "app/\n*.py\n"), whole(".semgrep.yml", "rules: []\n"),
               whole("app/.semgrep/rules.yml", "rules: []\n"), whole(path, bad)]
    notes: list[str] = []
    written = write_tree(tmp_path, hostile, notes)
    assert sorted(written) == [path] and not (tmp_path / ".semgrepignore").exists()
    report = run_checks(hostile, tools=[tool_named("semgrep")])
    assert (path, line, rule) in {(f.path, f.line, f.rule) for f in report.findings}


# --- Vue single-file components: their script blocks go to semgrep as a script file --------------------------

VUE_BAD = """<template>
  <button @click="reset">Reset</button>
</template>

<script setup lang="ts">
import { ref } from "vue"

const resetToken = ref("")
function reset() {
  resetToken.value = Math.random().toString(36).slice(2)
}
window.addEventListener("message", (event) => {
  document.title = event.data.title
})
</script>
"""
# the same words in the template and a guarded script: nothing to flag
VUE_GOOD = """<template>
  <p>Never write Math.random().toString(36) into a reset token.</p>
</template>

<script setup lang="ts">
const resetToken = crypto.randomUUID()
window.addEventListener("message", (event) => {
  if (event.origin !== window.location.origin) return
  document.title = event.data.title
})
</script>
"""


def test_vue_script_view_keeps_the_script_lines_at_their_numbers() -> None:
    suffix, text = vue_script_view(VUE_BAD)
    assert suffix == ".ts" and text.count("\n") == VUE_BAD.count("\n")
    assert text.split("\n")[9] == VUE_BAD.split("\n")[9] and "<button" not in text and "<script" not in text
    # a fragment whose hunk shows the block's end but not its start: the lines above are script
    assert vue_script_view("\n\nconst a = 1\n</script>\n")[1] == "\n\nconst a = 1\n\n"
    # template lines or no tag in sight: nothing is known to be script
    assert vue_script_view("\n  <div>{{ a }}</div>\n</template>\n") is None
    assert vue_script_view("\nconst a = 1\n") is None
    assert vue_script_view('<script>\nmodule.exports = {}\n</script>\n')[0] == ".js"


def test_vue_components_script_blocks_are_judged_and_findings_land_on_the_component() -> None:
    needs("semgrep")
    report = run_checks([whole("src/Reset.vue", VUE_BAD), whole("src/Safe.vue", VUE_GOOD)],
                        tools=[tool_named("semgrep")])
    found = {(f.path, f.line, f.rule) for f in report.findings}
    assert found == {("src/Reset.vue", 10, "js-predictable-random-secret"),
                     ("src/Reset.vue", 12, "js-message-listener-without-origin-check")}
    assert [c.how for c in report.runs[0].coverage] == ["its script blocks (whole file)"] * 2

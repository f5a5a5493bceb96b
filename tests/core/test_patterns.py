"""calora's own pattern rules: each rule catches its defect and stays silent on the clean twin, reports
through the same runner as the other analyzers, and cannot be made slow or crash the review by its input."""

from __future__ import annotations

import time

import pytest

from reviewers.checks import FRAGMENT, WHOLE, ToolInput, inputs_from_diff, run_checks
from reviewers.checks import patterns as patterns_module
from reviewers.checks.patterns import pattern_rules, scan
from reviewers.checks.rules import tool_rules
from reviewers.checks.sandbox import tool_version
from reviewers.checks.tools import TOOLS, tool_named
from reviewers.unified_diff import parse_unified_diff
from tests.core.test_checks import whole


def hits(path: str, text: str, *, how: str = WHOLE) -> set[tuple[str, int]]:
    item = whole(path, text).model_copy(update={"how": how})
    return {(d.code, d.line) for d in scan(path, item)}


# (rule, path, defective text, line it must be reported on, clean twin)
CASES = [
    ("sql-built-from-template", "src/repo.ts",
     "export async function byName(db, name) {\n  return db.query(`SELECT * FROM users\n    WHERE name = '${name}'`);\n}\n",
     2,
     "export async function byName(db, name) {\n  return db.query('SELECT * FROM users WHERE name = $1', [name]);\n}\n"),
    ("jwt-decode-trusted", "api/auth.ts",
     "const claims = jwt.decode(req.headers.authorization);\nif (claims.admin) next();\n", 1,
     "const claims = jwt.verify(token, key, { algorithms: ['RS256'] });\nconst header = jwt.decode(token);\n"),
    ("password-in-web-storage", "src/Login.vue",
     "<script setup>\nfunction remember() {\n  localStorage.setItem('password', form.password);\n}\n</script>\n", 3,
     "<script setup>\nfunction forget() {\n  localStorage.removeItem('password');\n}\n</script>\n"),
    ("credential-literal-in-code", "web/src/pay.tsx",
     "const PAYMENTS_API_KEY = 'pk9f3kq28dmw02lkd93kfj2';\nexport default PAYMENTS_API_KEY;\n", 1,
     "const PAYMENTS_API_KEY = import.meta.env.VITE_PAYMENTS_KEY;\nconst TOKEN_STORAGE_KEY = 'app-session-token-v2';\n"),
    ("async-callback-in-foreach", "src/sync.ts",
     "items.forEach(async (item) => {\n  await save(item);\n});\n", 1,
     "for (const item of items) {\n  await save(item);\n}\n"),
    ("non-null-assertion-on-find", "src/users.ts",
     "const owner = members.find((m) => m.role === 'owner')!;\n", 1,
     "const owner = members.find((m) => m.role === 'owner');\nif (!owner) throw new Error('no owner');\n"),
    ("store-destructured-without-refs", "src/Cart.vue",
     "<script setup>\nconst { items, total } = useCartStore();\n</script>\n", 2,
     "<script setup>\nconst { items, total } = storeToRefs(useCartStore());\n</script>\n"),
    ("listener-never-removed", "src/Feed.vue",
     "<script setup>\nonMounted(() => {\n  window.addEventListener('scroll', onScroll);\n});\n</script>\n", 3,
     ("<script setup>\nonMounted(() => window.addEventListener('scroll', onScroll));\n"
     "onUnmounted(() => window.removeEventListener('scroll', onScroll));\n</script>\n")),
    ("action-pinned-to-branch", ".github/workflows/ci.yml",
     "jobs:\n  build:\n    steps:\n      - uses: someone/deploy-action@main\n", 4,
     "jobs:\n  build:\n    steps:\n      - uses: someone/deploy-action@8f4b7f84864484a7bf31766abe9204da3cbe65b3 # v2.1.0\n"),
    ("secret-printed-to-log", ".gitlab-ci.yml",
     "deploy:\n  script:\n    - echo \"$KUBECONFIG_DATA\"\n", 3,
     "deploy:\n  script:\n    - echo \"$KUBECONFIG_DATA\" | base64 -d > kubeconfig\n"),
    ("privileged-container", "k8s/agent.yaml",
     "containers:\n  - name: agent\n    securityContext:\n      privileged: true\n", 4,
     "containers:\n  - name: agent\n    securityContext:\n      privileged: false\n"),
    ("docker-socket-mounted", "k8s/agent.yaml",
     "volumes:\n  - name: sock\n    hostPath:\n      path: /var/run/docker.sock\n", 4,
     "volumeMounts:\n  - name: sock\n    mountPath: /var/run/docker.sock\n"),
    ("image-tag-latest", "helm/app/templates/deploy.yaml",
     "containers:\n  - name: app\n    image: \"{{ .Values.image.repository }}:latest\"\n", 3,
     "containers:\n  - name: app\n    image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n"),
    ("database-publicly-accessible", "infra/db.tf",
     "resource \"aws_db_instance\" \"main\" {\n  publicly_accessible = true\n}\n", 2,
     "resource \"aws_db_instance\" \"main\" {\n  publicly_accessible = false\n}\n"),
    ("public-by-default-variable", "modules/db/variables.tf",
     "variable \"publicly_accessible\" {\n  type    = bool\n  default = true\n}\n", 1,
     "variable \"publicly_accessible\" {\n  type    = bool\n  default = false\n}\n"),
    ("bucket-acl-public", "infra/s3.tf",
     "resource \"aws_s3_bucket_acl\" \"a\" {\n  acl = \"public-read\"\n}\n", 2,
     "resource \"aws_s3_bucket_acl\" \"a\" {\n  acl = \"private\"\n}\n"),
    ("source-copied-before-install", "api/Dockerfile",
     "FROM python:3.12-slim\nCOPY . /app\nWORKDIR /app\nRUN pip install -r requirements.txt\n", 2,
     "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . /app\n"),
    ("download-piped-to-shell", "Dockerfile",
     "FROM debian:12\nRUN curl -fsSL https://get.example.com/install.sh | sh\n", 2,
     "FROM debian:12\nRUN curl -fsSLo install.sh https://get.example.com/install.sh && sha256sum -c sums\n"),
    ("drop-cascade", "db/migrations/0019.sql",
     "ALTER TABLE products DROP COLUMN legacy_price CASCADE;\n", 1,
     "ALTER TABLE products DROP COLUMN legacy_price;\n"),
    ("foreign-key-without-index", "migrations/0057.sql",
     "CREATE TABLE attachments (\n  id bigserial PRIMARY KEY,\n  comment_id bigint NOT NULL REFERENCES comments(id)\n);\n", 3,
     ("CREATE TABLE attachments (\n  id bigserial PRIMARY KEY,\n  comment_id bigint NOT NULL REFERENCES comments(id)\n);\n"
     "CREATE INDEX attachments_comment_id_idx ON attachments (comment_id);\n")),
    ("sleep-in-test", "tests/test_export.py",
     "import time\n\ndef test_export_finishes(job):\n    job.start()\n    time.sleep(5)\n    assert job.done\n", 5,
     "def test_export_finishes(job):\n    job.start()\n    job.wait(timeout=30)\n    assert job.done\n"),
    ("test-without-assertion", "tests/test_tax.py",
     "def test_vat_is_added():\n    total = with_vat(100)\n    print(total)\n", 1,
     "def test_vat_is_added():\n    total = with_vat(100)\n    assert total == 120\n"),
    ("secret-in-browser-bundle", "web/app/billing/RefundButton.tsx",
     "'use client';\nconst key = process.env.NEXT_PUBLIC_PAYMENTS_SECRET_KEY;\n", 2,
     "'use client';\nconst key = process.env.NEXT_PUBLIC_STRIPE_PUBLISHABLE_KEY;\nconst s = process.env.PAYMENTS_SECRET_KEY;\n"),
    ("redirect-to-query-parameter", "src/views/Login.vue",
     "<script setup>\nconst route = useRoute();\nasync function done() {\n  window.location.href = route.query.next;\n}\n</script>\n",
     4,
     ("<script setup>\nconst route = useRoute();\nasync function done() {\n  const next = String(route.query.next || '/');\n"
     "  window.location.href = next.startsWith('/') && !next.startsWith('//') ? next : '/';\n}\n</script>\n")),
    ("cluster-admin-bound", "deploy/k8s/worker-rbac.yaml",
     ("kind: ClusterRoleBinding\nmetadata:\n  name: worker\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n"
     "  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n  - kind: ServiceAccount\n    name: worker\n"), 4,
     ("kind: RoleBinding\nmetadata:\n  name: worker\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n"
     "  kind: Role\n  name: worker-jobs\nsubjects:\n  - kind: ServiceAccount\n    name: cluster-admin\n")),
    ("database-port-published-in-production", "deploy/docker-compose.prod.yml",
     "services:\n  db:\n    image: postgres:16\n    ports:\n      - \"5432:5432\"\n", 5,
     "services:\n  db:\n    image: postgres:16\n    ports:\n      - \"127.0.0.1:5432:5432\"\n  web:\n    ports:\n      - \"443:8443\"\n"),
    ("admin-port-open-to-internet", "infra/bastion.tf",
     ("resource \"aws_security_group\" \"bastion\" {\n  ingress {\n    from_port   = 22\n    to_port     = 22\n"
     "    protocol    = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n}\n"), 6,
     ("resource \"aws_security_group\" \"web\" {\n  ingress {\n    from_port   = 443\n    to_port     = 443\n"
     "    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n  ingress {\n    from_port   = 22\n    to_port     = 22\n"
     "    cidr_blocks = [var.vpn_cidr]\n  }\n}\n")),
    ("dynamic-sql-concatenated", "db/functions/search_customers.sql",
     ("CREATE FUNCTION search_customers(term text) RETURNS SETOF customers\nLANGUAGE plpgsql SECURITY DEFINER AS $$\n"
     "BEGIN\n  RETURN QUERY EXECUTE 'SELECT * FROM customers WHERE name ILIKE ''%' || term || '%''';\nEND $$;\n"), 4,
     ("CREATE FUNCTION search_customers(term text) RETURNS SETOF customers\nLANGUAGE plpgsql SECURITY DEFINER AS $$\n"
     "BEGIN\n  RETURN QUERY EXECUTE format('SELECT * FROM %I WHERE name ILIKE $1', 'customers') USING '%' || term || '%';\n"
     "END $$;\n")),
    ("iframe-sandbox-escapable", "src/components/EmailPreview.tsx",
     "export const Preview = ({ html }) => (\n  <iframe sandbox=\"allow-scripts allow-same-origin\" srcDoc={html} />\n);\n", 2,
     "export const Preview = ({ html }) => (\n  <iframe sandbox=\"allow-popups\" srcDoc={html} />\n);\n"),
    ("ci-debug-trace-on", ".gitlab-ci.yml",
     "deploy:\n  variables:\n    CI_DEBUG_TRACE: \"true\"\n  script:\n    - ./deploy.sh\n", 3,
     "deploy:\n  variables:\n    CI_DEBUG_TRACE: \"false\"\n  script:\n    - ./deploy.sh\n"),
    ("shell-session-opened-on-runner", ".github/workflows/release.yml",
     "jobs:\n  release:\n    steps:\n      - if: failure()\n        uses: mxschmitt/action-tmate@v3\n", 5,
     ("jobs:\n  release:\n    steps:\n      - if: failure()\n        uses: mxschmitt/action-tmate@v3\n"
      "        with:\n          limit-access-to-actor: true\n")),
    ("docker-daemon-unauthenticated-tcp", "deploy/compose.ci.yml",
     "services:\n  dind:\n    image: docker:27-dind\n    command: [\"--host=tcp://0.0.0.0:2375\"]\n", 4,
     "services:\n  dind:\n    image: docker:27-dind\n    command: [\"--host=tcp://0.0.0.0:2376\", \"--tlsverify\"]\n"),
    ("debugger-exposed-on-all-interfaces", "deploy/api/Dockerfile",
     "FROM node:22-slim\nCMD [\"node\", \"--inspect=0.0.0.0:9229\", \"server.js\"]\n", 2,
     "FROM node:22-slim\nCMD [\"node\", \"--inspect=127.0.0.1:9229\", \"server.js\"]\n"),
    ("rbac-binds-every-user", "k8s/reports/rolebinding.yaml",
     ("kind: RoleBinding\nroleRef:\n  kind: Role\n  name: report-reader\nsubjects:\n  - kind: Group\n"
      "    name: system:authenticated\n"), 7,
     ("kind: RoleBinding\nroleRef:\n  kind: Role\n  name: report-reader\nsubjects:\n  - kind: Group\n"
      "    name: reports-team\n")),
    ("env-file-copied-into-image", "Dockerfile",
     "FROM python:3.12-slim\nWORKDIR /app\nCOPY .env.production /app/.env\n", 3,
     "FROM python:3.12-slim\nWORKDIR /app\nCOPY .env.example /app/.env.example\n"),
    ("security-definer-without-search-path", "db/functions/delete_user.sql",
     ("CREATE FUNCTION delete_user(uid bigint) RETURNS void\nLANGUAGE sql SECURITY DEFINER AS $$\n"
      "  DELETE FROM users WHERE id = uid;\n$$;\n"), 2,
     ("CREATE FUNCTION delete_user(uid bigint) RETURNS void\nLANGUAGE sql SECURITY DEFINER\n"
      "SET search_path = pg_catalog, public AS $$\n  DELETE FROM users WHERE id = uid;\n$$;\n")),
    ("row-level-security-weakened", "db/migrations/0042_reports.sql",
     "ALTER TABLE invoices DISABLE ROW LEVEL SECURITY;\n", 1,
     "ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;\nALTER TABLE invoices FORCE ROW LEVEL SECURITY;\n"),
    ("copy-runs-a-program", "db/functions/export.sql",
     "EXECUTE format('COPY (SELECT * FROM orders) TO PROGRAM %L', 'gzip > /exports/' || slug);\n", 1,
     "COPY (SELECT * FROM orders) TO STDOUT WITH (FORMAT csv);\n"),
    ("static-files-from-project-root", "server/index.ts",
     "const app = express();\napp.use(express.static(process.cwd()));\n", 2,
     "const app = express();\napp.use(express.static(path.join(__dirname, 'public')));\n"),
    ("debug-on-in-production-settings", "config/settings/production.py",
     "from .base import *\n\nDEBUG = True\n", 3,
     "from .base import *\n\nDEBUG = False\n"),
    ("untrusted-checkout-in-privileged-workflow", ".github/workflows/preview.yml",
     ("on:\n  pull_request_target:\njobs:\n  build:\n    steps:\n      - uses: actions/checkout@v4\n        with:\n"
      "          ref: ${{ github.event.pull_request.head.sha }}\n"), 8,
     ("on:\n  pull_request:\njobs:\n  build:\n    steps:\n      - uses: actions/checkout@v4\n        with:\n"
      "          ref: ${{ github.event.pull_request.head.sha }}\n")),
    ("host-root-mounted", "ops/logging/compose.yml",
     "services:\n  agent:\n    image: grafana/promtail:3.1.0\n    volumes:\n      - /:/host\n", 5,
     "services:\n  agent:\n    image: grafana/promtail:3.1.0\n    volumes:\n      - /var/log:/var/log:ro\n"),
    ("message-posted-to-any-origin", "src/auth/callback.tsx",
     "useEffect(() => {\n  window.opener.postMessage({ type: 'oauth', token }, '*');\n}, [token]);\n", 2,
     "useEffect(() => {\n  window.opener.postMessage({ type: 'oauth', token }, window.location.origin);\n}, [token]);\n"),
    ("environment-returned-in-response", "app/health.py",
     ("@router.get('/healthz/details')\ndef details():\n    return {'status': 'ok', 'env': dict(os.environ)}\n"
      "\n@router.get('/debug/env')\ndef env():\n    return dict(os.environ)\n"), 7,
     "@router.get('/healthz/details')\ndef details():\n    return {'status': 'ok', 'version': os.environ['APP_VERSION']}\n"),
    ("request-headers-logged", "src/middleware/log.ts",
     ("export function logRequests(req, res, next) {\n  logger.info('request', { path: req.path, headers: req.headers });\n"
      "  next();\n}\n"), 2,
     ("export function logRequests(req, res, next) {\n  logger.info('request', { path: req.path, ua: req.headers['user-agent'] });\n"
      "  next();\n}\n")),
    ("tls-verification-off-in-environment", "Dockerfile",
     "FROM node:22-slim\nENV NODE_ENV=production \\\n    NODE_TLS_REJECT_UNAUTHORIZED=0\nCMD [\"node\", \"server.js\"]\n", 3,
     "FROM node:22-slim\nENV NODE_ENV=production \\\n    NODE_EXTRA_CA_CERTS=/etc/ssl/corp-ca.pem\nCMD [\"node\", \"server.js\"]\n"),
    ("self-hosted-runner-for-pull-requests", ".github/workflows/gpu-tests.yml",
     ("on:\n  pull_request:\n    branches: [main]\njobs:\n  test:\n    runs-on: [self-hosted, gpu]\n    steps:\n"
      "      - run: make test\n"), 6,
     ("on:\n  push:\n    branches: [main]\njobs:\n  test:\n    runs-on: [self-hosted, gpu]\n    steps:\n"
      "      - run: make test\n")),
]


def test_every_pattern_rule_has_a_catch_and_a_clean_twin_here() -> None:
    assert {case[0] for case in CASES} == {rule.id for rule in pattern_rules()}


@pytest.mark.parametrize(("rule", "path", "bad", "line", "good"), CASES, ids=[c[0] for c in CASES])
def test_rule_catches_its_defect_and_not_the_clean_twin(rule: str, path: str, bad: str, line: int,
                                                        good: str) -> None:
    assert (rule, line) in hits(path, bad)
    assert rule not in {code for code, _ in hits(path, good)}


def test_every_pattern_rule_has_its_own_severity_in_rules_yml() -> None:
    table = tool_rules("patterns")
    for rule in pattern_rules():
        assert rule.id in table.rules, f"{rule.id}: no category and severity in rules.yml"
    assert set(table.rules) - {""} == {rule.id for rule in pattern_rules()}


def test_rules_read_only_their_files() -> None:
    assert not hits("docs/notes.md", "items.forEach(async (x) => x)\nprivileged: true\n")
    assert not hits("src/sync.py", "items.forEach(async (item) => {\n")


def test_absence_rules_do_not_judge_a_fragment() -> None:
    text = "<script setup>\nonMounted(() => window.addEventListener('scroll', onScroll));\n</script>\n"
    assert hits("src/Feed.vue", text)
    assert not hits("src/Feed.vue", text, how=FRAGMENT)


def test_a_test_shown_in_part_is_not_judged() -> None:
    text = "def test_vat_is_added():\n    total = with_vat(100)\n    print(total)\n"
    partly = ToolInput(path="tests/test_tax.py", text=text, how=FRAGMENT, added={3})
    assert not scan("tests/test_tax.py", partly)


def test_findings_come_through_run_checks_on_a_diff_fragment_with_the_rule_named() -> None:
    diff = (
        "diff --git a/k8s/ci/runner.yaml b/k8s/ci/runner.yaml\n--- a/k8s/ci/runner.yaml\n+++ b/k8s/ci/runner.yaml\n"
        "@@ -19,3 +19,5 @@\n containers:\n   - name: runner\n     image: gitlab/gitlab-runner:v17.1.0\n"
        "+    securityContext:\n+      privileged: true\n"
    )
    inputs = inputs_from_diff(parse_unified_diff(diff).files)
    assert inputs[0].how == FRAGMENT
    report = run_checks(inputs, tools=[tool_named("patterns")])
    [finding] = report.findings
    assert (finding.line, finding.source, finding.severity.value) == (23, "checks:patterns/privileged-container",
                                                                      "blocker")
    assert finding.doc_url and finding.doc_url.startswith("https://")
    [run] = report.runs
    assert run.status == "ok" and run.files == ["k8s/ci/runner.yaml"] and run.coverage[0].how == FRAGMENT


def test_hits_on_unchanged_lines_are_left_out() -> None:
    text = "jobs:\n  a:\n    steps:\n      - uses: someone/action@main\n      - run: make\n"
    item = ToolInput(path=".github/workflows/a.yml", text=text, how=FRAGMENT, added={5})
    report = run_checks([item], tools=[tool_named("patterns")])
    assert not report.findings and report.runs[0].outside_changes == 1


def test_hostile_input_cannot_make_the_rules_slow(caplog) -> None:
    nasty = [
        "a" * 3999 + "\n", "`" + "${" * 1500 + "\n", ("x" * 79 + "=") * 50 + "\n",
        "localStorage" + ".setItem(" * 400 + "\n", "COPY . /app\n" + "RUN echo\n" * 5000,
        "variable \"public\" {\n" + "  x = 1\n" * 3000, "jwt.decode(" * 3000 + "\n", "a" * 100_000 + "\n",
        # a trigger block whose lines an expression could split many ways (session 11 shipped one that did)
        "on:\n  push:\n" + "    branches: [main]\n" * 40 + "  pull_request:\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        + "      - run: echo hi\n" * 500,
        "return " + "(" * 2000 + "os.environ" + "\n", ".postMessage(" + "a," * 3000 + "\n",
    ]
    paths = ["src/a.ts", "src/a.vue", ".github/workflows/a.yml", "Dockerfile", "main.tf", "tests/test_a.py",
             "db/migrations/1.sql", "k8s/a.yaml"]
    started = time.perf_counter()
    for text in nasty:
        for path in paths:
            scan(path, whole(path, text))
    assert time.perf_counter() - started < 10
    assert "gave up" not in caplog.text  # linear rules, not only the time budget, keep it fast


def test_a_rule_that_crashes_is_a_failed_run_not_a_failed_review(monkeypatch) -> None:
    def broken(item: ToolInput) -> list[tuple[int, int]]:
        raise RuntimeError("rule bug")

    monkeypatch.setitem(patterns_module.CHECKS, "test-without-assertion", broken)
    report = run_checks([whole("tests/test_a.py", "def test_a():\n    pass\n")], tools=[tool_named("patterns")])
    assert report.runs[0].status == "failed" and "rule bug" in report.runs[0].detail
    assert not report.findings


def test_a_rule_that_backtracks_for_ever_is_given_up_and_the_others_still_report(monkeypatch) -> None:
    slow = patterns_module.PatternRule(id="slow", files=r"\.ya?ml$", scope="text", match=r"^(?:[ \t]+\S*\n|[ \t]*\n)*x$",
                                       message="m", see="s")
    monkeypatch.setattr(patterns_module, "RULE_BUDGET_S", 0.2)
    monkeypatch.setattr(patterns_module, "pattern_rules", lambda: (slow, *pattern_rules()))
    text = "jobs:\n  a:\n    privileged: true\n" + "      \n" * 40 + "y\n"
    started = time.perf_counter()
    assert hits("k8s/a.yaml", text) == {("privileged-container", 3)}
    assert time.perf_counter() - started < 2


def test_patterns_are_listed_with_the_analyzers_and_always_present() -> None:
    assert "patterns" in {tool.name for tool in TOOLS}
    assert f"({len(pattern_rules())} in patterns.yml)" in (tool_version(tool_named("patterns")) or "")


def test_a_tagged_template_binds_its_values_and_is_not_flagged() -> None:
    text = ("export const revenue = (from: Date) => prisma.$queryRaw<Row[]>`\n"
            "  SELECT day, sum(total) FROM orders WHERE created_at >= ${from} GROUP BY day`;\n"
            "const q = sql`SELECT * FROM users WHERE id = ${id}`;\n")
    assert not hits("src/reports.ts", text)
    untagged = "const q = `SELECT * FROM users WHERE id = ${id}`;\nconst f = (id) => `DELETE FROM t WHERE id = ${id}`;\n"
    assert hits("src/reports.ts", untagged) == {("sql-built-from-template", 1), ("sql-built-from-template", 2)}


def test_a_foreign_key_added_to_an_existing_column_is_not_judged() -> None:
    text = ("ALTER TABLE shipments\n    ADD CONSTRAINT shipments_order_id_fkey\n"
            "    FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;\n")
    assert not hits("db/migrations/V42.sql", text)
    added = "ALTER TABLE shipments ADD COLUMN order_id bigint REFERENCES orders (id);\n"
    assert hits("db/migrations/V42.sql", added) == {("foreign-key-without-index", 1)}


def test_an_admin_port_is_judged_on_ingress_only_and_on_gcp_firewalls_too() -> None:
    egress = ('resource "aws_security_group" "app" {\n  egress {\n    from_port   = 5432\n    to_port     = 5432\n'
              '    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\nresource "aws_security_group_rule" "out" {\n'
              '  type        = "egress"\n  from_port   = 22\n  to_port     = 22\n  cidr_blocks = ["0.0.0.0/0"]\n}\n')
    assert not {h for h in hits("infra/sg.tf", egress) if h[0] == "admin-port-open-to-internet"}
    rule = ('resource "aws_security_group_rule" "rdp" {\n  type        = "ingress"\n  from_port   = 3389\n'
            '  to_port     = 3389\n  cidr_blocks = ["0.0.0.0/0"]\n}\n')
    assert ("admin-port-open-to-internet", 5) in hits("infra/sg.tf", rule), "reported on the open range's line"
    gcp = ('resource "google_compute_firewall" "ssh" {\n  network = "default"\n  allow {\n    protocol = "tcp"\n'
           '    ports    = ["22"]\n  }\n  source_ranges = ["0.0.0.0/0"]\n}\n')
    assert ("admin-port-open-to-internet", 7) in hits("infra/fw.tf", gcp)
    internal = gcp.replace("0.0.0.0/0", "10.0.0.0/8")
    assert not {h for h in hits("infra/fw.tf", internal) if h[0] == "admin-port-open-to-internet"}

"""Evidence from analyzers: real tools on real-looking files, a catch and a clean twin each, only added lines
kept, and the sandbox's promises (our configs only, scratch dir, no network, time limit, output cap)."""

from __future__ import annotations

import http.server
import json
import socketserver
import sys
import threading
import time
from pathlib import Path

import pytest

from reviewers.checks import (
    FRAGMENT,
    TOOLS,
    WHOLE,
    CheckReport,
    ToolInput,
    inputs_from_diff,
    run_checks,
    tools,
)
from reviewers.checks.fragments import _brackets
from reviewers.checks.model import MAX_EVIDENCE_LINES, CheckFinding, Diagnostic
from reviewers.checks.rules import tool_rules
from reviewers.checks.sandbox import is_tool_config, network_isolation, safe_relative_path
from reviewers.checks.tools import Tool, parse_ruff, tool_named
from reviewers.context.syntax import has_syntax_errors
from reviewers.contract import Category, Severity
from reviewers.unified_diff import parse_unified_diff


def whole(path: str, text: str) -> ToolInput:
    return ToolInput(path=path, text=text, how=WHOLE, added=set(range(1, text.count("\n") + 2)))


def check(*inputs: ToolInput, tool: str | None = None) -> CheckReport:
    tools = [tool_named(tool)] if tool else TOOLS
    return run_checks(list(inputs), tools=tools)


def rules_of(report: CheckReport) -> set[tuple[str, int, str]]:
    return {(f.path, f.line, f.rule) for f in report.findings}


def needs(tool: str) -> None:
    if tool_named(tool).locate() is None:
        pytest.skip(f"{tool} is not installed here: {tool_named(tool).install}")


# --- each tool: a catch and a clean twin -----------------------------------------------------------

QUERY_BAD = (
    "def search(conn, customer):\n"
    "    query = f\"SELECT id FROM orders WHERE customer = '{customer}'\"\n"
    "    return conn.execute(query).fetchall()\n"
)
QUERY_OK = (
    "def search(conn, customer):\n"
    "    query = \"SELECT id FROM orders WHERE customer = ?\"\n"
    "    return conn.execute(query, (customer,)).fetchall()\n"
)


def test_ruff_flags_an_f_string_query_as_a_security_blocker_and_not_its_parameterised_twin() -> None:
    bad = check(whole("app/orders.py", QUERY_BAD), tool="ruff")
    (finding,) = bad.findings
    assert (finding.line, finding.rule, finding.severity, finding.category) == (
        2, "S608", Severity.blocker, Category.security)
    assert finding.source == "checks:ruff/S608" and finding.doc_url and "ruff" in finding.doc_url
    assert check(whole("app/orders.py", QUERY_OK), tool="ruff").findings == []


def test_hadolint_flags_a_latest_base_image_and_not_a_pinned_one() -> None:
    bad = check(whole("Dockerfile", "FROM python:latest\nCOPY . /srv\n"), tool="hadolint")
    assert rules_of(bad) == {("Dockerfile", 1, "DL3007")}
    assert bad.findings[0].severity is Severity.major
    assert check(whole("Dockerfile", "FROM python:3.12-slim\nCOPY . /srv\n"), tool="hadolint").findings == []


WORKFLOW_BAD = """name: greet
on: pull_request_target
permissions:
  contents: read
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - run: echo "Thanks for ${{ github.event.pull_request.title }}"
"""
WORKFLOW_OK = """name: greet
on: pull_request
permissions:
  contents: read
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - run: echo "Thanks for $TITLE"
        env:
          TITLE: ${{ github.event.pull_request.title }}
"""


def test_zizmor_flags_template_injection_under_pull_request_target_and_not_the_env_twin() -> None:
    bad = check(whole(".github/workflows/greet.yml", WORKFLOW_BAD), tool="zizmor")
    found = {(f.rule, f.severity) for f in bad.findings}
    assert ("template-injection", Severity.blocker) in found
    assert ("dangerous-triggers", Severity.blocker) in found
    assert check(whole(".github/workflows/greet.yml", WORKFLOW_OK), tool="zizmor").findings == []


def test_actionlint_flags_an_undefined_step_output_and_not_the_defined_one() -> None:
    base = WORKFLOW_OK.replace("    steps:\n", "    steps:\n      - id: meta\n        run: echo \"tag=v1\" >> \"$GITHUB_OUTPUT\"\n")
    bad = check(whole(".github/workflows/greet.yml",
                      base + "      - run: echo \"${{ steps.metadata.outputs.tag }}\"\n"), tool="actionlint")
    assert ("expression", 14) in {(f.rule, f.line) for f in bad.findings}
    ok = check(whole(".github/workflows/greet.yml", base + "      - run: echo \"$TAG\"\n        env:\n"
                     "          TAG: ${{ steps.meta.outputs.tag }}\n"), tool="actionlint")
    assert ok.findings == []


def test_squawk_flags_a_blocking_index_and_a_required_column_not_the_safe_twin() -> None:
    bad = check(whole("migrations/0042_orders.sql",
                      "CREATE INDEX orders_customer_idx ON orders (customer);\n"
                      "ALTER TABLE orders ADD COLUMN note text NOT NULL;\n"), tool="squawk")
    assert {(f.line, f.rule) for f in bad.findings} == {
        (1, "require-concurrent-index-creation"), (2, "adding-required-field")}
    ok = check(whole("migrations/0042_orders.sql",
                     "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer);\n"
                     "ALTER TABLE orders ADD COLUMN note text;\n"), tool="squawk")
    assert ok.findings == []


def test_sqlfluff_flags_an_ambiguous_distinct_and_not_the_plain_query() -> None:
    bad = check(whole("reports/top.sql", "SELECT DISTINCT customer FROM orders GROUP BY customer\n"),
                tool="sqlfluff")
    assert "AM01" in {f.rule for f in bad.findings}
    assert check(whole("reports/top.sql", "SELECT customer FROM orders GROUP BY customer\n"),
                 tool="sqlfluff").findings == []


def test_yamllint_flags_a_duplicated_key_and_not_the_clean_file() -> None:
    bad = check(whole("deploy/values.yaml", "replicas: 2\nimage: web\nreplicas: 3\n"), tool="yamllint")
    assert rules_of(bad) == {("deploy/values.yaml", 3, "key-duplicates")}
    assert check(whole("deploy/values.yaml", "replicas: 2\nimage: web\n"), tool="yamllint").findings == []


def test_shellcheck_flags_an_unquoted_argument_and_not_the_quoted_twin() -> None:
    bad = check(whole("scripts/clean.sh", "#!/bin/sh\nrm -rf $1/build\n"), tool="shellcheck")
    assert ("scripts/clean.sh", 2, "SC2086") in rules_of(bad)
    assert check(whole("scripts/clean.sh", '#!/bin/sh\nrm -rf "$1/build"\n'), tool="shellcheck").findings == []


BIO_BAD = """export function Bio({ html }: { html: string }) {
  return <div dangerouslySetInnerHTML={{ __html: html }} />;
}
"""
BIO_OK = """export function Bio({ text }: { text: string }) {
  return <div>{text}</div>;
}
"""


def test_oxlint_flags_dangerously_set_inner_html_and_not_plain_text() -> None:
    bad = check(whole("web/src/Bio.tsx", BIO_BAD), tool="oxlint")
    assert rules_of(bad) == {("web/src/Bio.tsx", 2, "react(no-danger)")}
    assert bad.findings[0].category is Category.security
    assert check(whole("web/src/Bio.tsx", BIO_OK), tool="oxlint").findings == []


def test_oxlint_flags_a_missing_effect_dependency() -> None:
    text = """import { useEffect, useState } from "react";
export function User({ id }: { id: string }) {
  const [user, setUser] = useState(null);
  useEffect(() => {
    fetch(`/api/users/${id}`).then((r) => r.json()).then(setUser);
  }, []);
  return <p>{String(user)}</p>;
}
"""
    report = check(whole("web/src/User.tsx", text), tool="oxlint")
    assert "react-hooks(exhaustive-deps)" in {f.rule for f in report.findings}
    fixed = text.replace("}, []);", "}, [id]);")
    assert check(whole("web/src/User.tsx", fixed), tool="oxlint").findings == []


VUE_BAD = """<template>
  <div v-html="bio"></div>
</template>
<script setup lang="ts">
defineProps<{ bio: string }>();
</script>
"""


def test_eslint_flags_v_html_and_not_text_interpolation() -> None:
    needs("eslint")
    bad = check(whole("web/src/Bio.vue", VUE_BAD), tool="eslint")
    assert ("web/src/Bio.vue", 2, "vue/no-v-html") in rules_of(bad)
    ok = check(whole("web/src/Bio.vue", VUE_BAD.replace('<div v-html="bio"></div>', "<div>{{ bio }}</div>")),
               tool="eslint")
    assert ok.findings == []


VUE_LIST_BAD = """<template>
  <ul>
    <li v-for="thread in threads" v-if="!thread.archived" :key="thread.id">{{ thread.subject }}</li>
  </ul>
</template>
<script setup lang="ts">
defineProps<{ threads: { id: number; subject: string; archived: boolean }[] }>();
</script>
"""


def test_eslint_flags_vue_correctness_rules_and_not_the_computed_twin() -> None:
    needs("eslint")
    bad = check(whole("web/src/Threads.vue", VUE_LIST_BAD), tool="eslint")
    assert ("web/src/Threads.vue", 3, "vue/no-use-v-if-with-v-for") in rules_of(bad)
    fixed = VUE_LIST_BAD.replace('v-for="thread in threads" v-if="!thread.archived"', 'v-for="thread in open"').replace(
        "defineProps<{ threads: { id: number; subject: string; archived: boolean }[] }>();",
        "import { computed } from 'vue';\n"
        "const props = defineProps<{ threads: { id: number; subject: string; archived: boolean }[] }>();\n"
        "const open = computed(() => props.threads.filter((t) => !t.archived));")
    assert check(whole("web/src/Threads.vue", fixed), tool="eslint").findings == []


def test_ruff_flags_naive_utc_and_dangling_tasks_and_not_their_fixes() -> None:
    bad = ("import asyncio\nfrom datetime import datetime\n\n"
           "def expired(invite):\n    return invite.expires_at < datetime.utcnow()\n\n"
           "async def notify(send):\n    asyncio.create_task(send())\n")
    assert {(f.line, f.rule) for f in check(whole("app/invites.py", bad), tool="ruff").findings} == {
        (5, "DTZ003"), (8, "RUF006")}
    good = ("import asyncio\nfrom datetime import UTC, datetime\n\n"
            "def expired(invite):\n    return invite.expires_at < datetime.now(UTC)\n\n"
            "async def notify(send):\n    await asyncio.create_task(send())\n")
    assert check(whole("app/invites.py", good), tool="ruff").findings == []


POD_BAD = """apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  containers:
    - name: debug
      image: busybox:1.36
      securityContext:
        privileged: true
"""


def test_checkov_flags_a_privileged_pod_and_a_public_bucket_not_their_safe_twins() -> None:
    needs("checkov")
    bad = check(whole("k8s/debug.yaml", POD_BAD), tool="checkov")
    assert "CKV_K8S_16" in {f.rule for f in bad.findings}
    assert next(f for f in bad.findings if f.rule == "CKV_K8S_16").severity is Severity.blocker
    ok = check(whole("k8s/debug.yaml", POD_BAD.replace("privileged: true", "privileged: false")), tool="checkov")
    assert "CKV_K8S_16" not in {f.rule for f in ok.findings}
    bucket = 'resource "aws_s3_bucket" "logs" {\n  bucket = "logs"\n  acl    = "public-read"\n}\n'
    public = check(whole("infra/logs.tf", bucket), tool="checkov")
    assert "CKV_AWS_20" in {f.rule for f in public.findings}
    private = check(whole("infra/logs.tf", bucket.replace("public-read", "private")), tool="checkov")
    assert "CKV_AWS_20" not in {f.rule for f in private.findings}


def test_detect_secrets_flags_a_committed_aws_key_and_not_an_environment_lookup() -> None:
    bad = check(whole("app/settings.py", 'AWS_ACCESS_KEY_ID = "AKIAZ7QW4TR2M9XKP3LD"\n'), tool="detect-secrets")
    (finding,) = bad.findings
    assert (finding.rule, finding.severity) == ("AWS Access Key", Severity.blocker)
    assert "AKIA" not in finding.message  # the secret itself is never repeated
    ok = check(whole("app/settings.py", 'import os\nAWS_ACCESS_KEY_ID = os.environ["AWS_ACCESS_KEY_ID"]\n'),
               tool="detect-secrets")
    assert ok.findings == []


def test_every_registered_tool_has_a_rules_table_and_an_install_command() -> None:
    for tool in TOOLS:
        assert tool.install
        assert tool_rules(tool.name).rules, tool.name


# --- bare diffs: whole new files, fragments of modified ones ---------------------------------------


def test_the_sample_diff_alone_gives_the_sql_injection_as_evidence(shared_dir: Path) -> None:
    diff = (Path(__file__).resolve().parents[2] / "samples" / "storefront.diff").read_text()
    inputs = inputs_from_diff(parse_unified_diff(diff).files)
    assert {i.path: i.how for i in inputs} == {
        "Dockerfile": FRAGMENT, "app/orders.py": FRAGMENT, "migrations/0007_orders_customer_index.sql": WHOLE}
    report = run_checks(inputs)
    assert ("app/orders.py", 15, "S608") in rules_of(report)
    assert ("Dockerfile", 1, "DL3007") in rules_of(report)
    assert ("migrations/0007_orders_customer_index.sql", 2, "require-concurrent-index-creation") in rules_of(report)
    assert all(f.line in next(i.added for i in inputs if i.path == f.path) for f in report.findings)
    assert any(line.startswith("evidence ruff: fragment: app/orders.py") for line in report.coverage_lines())


def test_a_python_hunk_inside_a_block_is_rebuilt_at_its_own_line_numbers() -> None:
    diff = """--- a/app/jobs.py
+++ b/app/jobs.py
@@ -40,4 +40,5 @@ class Jobs:
         for job in self.pending():
             if job.ready:
                 job.run()
+                eval(job.hook)
         return None
"""
    (item,) = inputs_from_diff(parse_unified_diff(diff).files)
    lines = item.text.splitlines()
    assert lines[42] == "                eval(job.hook)" and item.added == {43}
    assert item.unparsed_hunks == 0
    report = run_checks([item], tools=[tool_named("ruff")])
    assert rules_of(report) == {("app/jobs.py", 43, "S307")}


def test_a_hunk_that_cannot_be_rebuilt_keeps_its_added_lines_or_is_counted() -> None:
    diff = """--- a/app/api.py
+++ b/app/api.py
@@ -10,3 +10,4 @@ def handler(request):
         return run(request)
     except:
+        os.system(request.args["cmd"])
         return None
"""
    (item,) = inputs_from_diff(parse_unified_diff(diff).files)
    assert item.unparsed_hunks == 0  # `except` without `try` does not parse; the added line alone does
    report = run_checks([item], tools=[tool_named("ruff")])
    assert ("app/api.py", 12, "S605") in rules_of(report)


def test_a_hunk_ending_in_a_dangling_decorator_gives_up_its_last_lines_not_the_function() -> None:
    diff = """--- a/invites/services.py
+++ b/invites/services.py
@@ -30,6 +30,13 @@ def create_invite(team):
 
 
 @transaction.atomic
+def resend_invite(invite):
+    from datetime import datetime
+    now = datetime.utcnow()
+    return now
+
+
+@transaction.atomic
 def accept_invite(token, user):
     invite = Invite.objects.get(token=token)
     if invite.expires_at < timezone.now():
"""
    (item,) = inputs_from_diff(parse_unified_diff(diff).files)
    assert item.unparsed_hunks == 0
    assert "    now = datetime.utcnow()" in item.text.splitlines()
    report = run_checks([item], tools=[tool_named("ruff")])
    assert ("invites/services.py", 35, "DTZ003") in rules_of(report)


_TSX_TWO_HUNKS = """--- a/src/InvoiceList.tsx
+++ b/src/InvoiceList.tsx
@@ -10,6 +10,10 @@ type Props = {
 };
 
 export function InvoiceList({ customerId }: Props) {
+  if (!customerId) {
+    return <Empty />;
+  }
+
   const [filter, setFilter] = useState("open");
   const rows = useInvoices(customerId, filter);
 
@@ -24,5 +28,5 @@ export function InvoiceList({ customerId }: Props) {
         {rows.map((row, index) => (
-          <Row row={row} />
+          <Row key={index} row={row} />
         ))}
       </tbody>
     </table>
"""


def test_a_script_hunk_cut_inside_blocks_gets_the_brackets_it_lacks_in_the_blank_lines_around_it() -> None:
    (item,) = inputs_from_diff(parse_unified_diff(_TSX_TWO_HUNKS).files)
    lines = item.text.splitlines()
    assert lines[8] == "async function __calora_gap() {" and lines[9] == "};"  # the `};` that closed `type Props`
    assert lines[19] == "}"  # the component's body, closed on the first blank line after the hunk
    assert lines[12:15] == ["  if (!customerId) {", "    return <Empty />;", "  }"]
    assert not has_syntax_errors("tsx", "\n".join(lines[:20]))


def test_a_script_hunk_no_bracket_makes_parse_sits_in_a_block_comment_with_its_text_unchanged() -> None:
    (item,) = inputs_from_diff(parse_unified_diff(_TSX_TWO_HUNKS).files)
    lines = item.text.splitlines()
    assert lines[26] == "/*" and lines[32] == "*/"  # inside JSX whose opening tags are not shown
    assert lines[28] == "          <Row key={index} row={row} />"
    assert not has_syntax_errors("tsx", item.text)
    assert item.added == {13, 14, 15, 16, 29}


def test_a_hunk_inside_a_class_method_gets_a_class_and_a_method_around_it() -> None:
    diff = """--- a/src/repo.ts
+++ b/src/repo.ts
@@ -7,4 +7,8 @@ export class CustomerRepository {
     const { rows } = await this.pool.query("SELECT * FROM customers WHERE id = $1", [id]);
     return rows[0] ?? null;
   }
+
+  async search(term: string) {
+    return this.pool.query(`SELECT * FROM customers WHERE name = '${term}'`);
+  }
 }
"""
    (item,) = inputs_from_diff(parse_unified_diff(diff).files)
    assert item.text.splitlines()[5] == "class __CaloraGap { async __calora_gap() {"
    assert not has_syntax_errors("typescript", item.text)
    report = run_checks([item], tools=[tool_named("patterns")])
    assert ("src/repo.ts", 12, "sql-built-from-template") in rules_of(report)


def test_hunks_one_blank_line_apart_do_not_write_their_brackets_on_the_same_line() -> None:
    diff = """--- a/src/a.ts
+++ b/src/a.ts
@@ -1,2 +1,2 @@
 export function a() {
-  return 1;
+  return 2;
@@ -4,3 +4,3 @@
   b();
-  return 3;
+  return 4;
 }
"""
    (item,) = inputs_from_diff(parse_unified_diff(diff).files)
    lines = item.text.splitlines()
    assert lines[2] == "}"  # the first hunk's closer; the second hunk may not also open on line 3
    assert lines[3:6] == ["  b();", "  return 4;", "}"]
    assert item.text.count("__calora_gap") == 0


def test_the_bracket_scanner_skips_strings_comments_and_templates() -> None:
    assert _brackets("}) + `${a({})}` + '{' // (\n/* [ */ (x") == ("})", "(")
    assert _brackets("(]") is None
    assert _brackets("'unterminated") is None


def test_tools_that_need_a_whole_file_skip_fragments_and_say_so() -> None:
    diff = """--- a/.github/workflows/ci.yml
+++ b/.github/workflows/ci.yml
@@ -5,3 +5,4 @@ jobs:
     steps:
       - uses: actions/checkout@v4
+      - run: echo "${{ github.event.pull_request.title }}"
       - run: make test
"""
    report = run_checks(inputs_from_diff(parse_unified_diff(diff).files), tools=[tool_named("zizmor")])
    (run,) = report.runs
    assert run.status == "skipped" and run.coverage[0].how.startswith("skipped: needs the whole file")
    assert any("skipped: needs the whole file" in line for line in report.coverage_lines())


def test_diagnostics_off_the_added_lines_are_left_out() -> None:
    text = "import subprocess\n\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n    return eval(cmd)\n"
    item = ToolInput(path="app/run.py", text=text, how=WHOLE, added={6})
    report = run_checks([item], tools=[tool_named("ruff")])
    assert rules_of(report) == {("app/run.py", 6, "S307")}
    assert (report.runs[0].kept, report.runs[0].outside_changes) == (1, 1)


def test_a_range_finding_is_anchored_on_its_first_added_line() -> None:
    text = POD_BAD
    diag = Diagnostic(tool="checkov", path="k8s/debug.yaml", line=1, end_line=10, code="CKV_K8S_16",
                      message="privileged")
    from reviewers.checks import to_findings

    item = ToolInput(path="k8s/debug.yaml", text=text, how=WHOLE, added={10})
    (finding,), _ = to_findings([diag], {"k8s/debug.yaml": item})
    assert finding.line == 10 and finding.end_line is None


# --- SARIF from the user's own tools ----------------------------------------------------------------

SARIF = {
    "version": "2.1.0",
    "runs": [{
        "tool": {"driver": {"name": "Semgrep OSS", "rules": [{
            "id": "python.django.security.injection.raw-query", "helpUri": "https://semgrep.dev/r/raw-query",
            "properties": {"tags": ["security", "CWE-89"], "security-severity": "9.1"}}]}},
        "results": [
            {"ruleId": "python.django.security.injection.raw-query", "level": "error",
             "message": {"text": "User input reaches a raw SQL query."},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": "app/orders.py"},
                                                 "region": {"startLine": 2, "endLine": 2}}}]},
            {"ruleId": "python.django.security.injection.raw-query", "level": "error",
             "message": {"text": "elsewhere"},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": "file:///repo/app/other.py"},
                                                 "region": {"startLine": 9}}}]},
        ],
    }],
}


def test_sarif_results_on_changed_lines_become_findings_named_by_their_tool() -> None:
    from reviewers.checks.sarif import parse_sarif

    diagnostics = parse_sarif(json.dumps(SARIF))
    assert [d.path for d in diagnostics] == ["app/orders.py", "repo/app/other.py"]
    report = run_checks([whole("app/orders.py", QUERY_BAD)], tools=[], external=diagnostics)
    (finding,) = report.findings
    assert finding.source == "checks:semgrep-oss/python.django.security.injection.raw-query"
    assert (finding.severity, finding.category) == (Severity.blocker, Category.security)
    assert any("SARIF results on 1 file(s)" in note for note in report.notes)


def test_sarif_that_is_not_sarif_is_a_clear_error() -> None:
    from reviewers.checks.sarif import SarifError, parse_sarif

    with pytest.raises(SarifError, match="no 'runs' list"):
        parse_sarif('{"version": "2.1.0"}', "codeql.sarif")
    with pytest.raises(SarifError, match="not JSON"):
        parse_sarif("<html>", "codeql.sarif")


# --- hostile pull requests: never their configs, plugins or code ------------------------------------


def test_a_ruff_config_in_the_pull_request_cannot_silence_ruff() -> None:
    config = '[lint]\nignore = ["S608"]\n'
    pyproject = '[tool.ruff.lint]\nignore = ["S608"]\n'
    report = run_checks([whole("ruff.toml", config), whole("pyproject.toml", pyproject),
                         whole("app/orders.py", QUERY_BAD)], tools=[tool_named("ruff")])
    assert ("app/orders.py", 2, "S608") in rules_of(report)


def test_a_hadolint_config_in_the_pull_request_is_ignored() -> None:
    report = run_checks([whole(".hadolint.yaml", "ignored:\n  - DL3007\n"),
                         whole("Dockerfile", "FROM python:latest\n")], tools=[tool_named("hadolint")])
    assert ("Dockerfile", 1, "DL3007") in rules_of(report)


def test_an_oxlint_config_in_the_pull_request_is_ignored() -> None:
    config = '{"rules": {"react/no-danger": "off"}, "ignorePatterns": ["**/*.tsx"]}'
    report = run_checks([whole(".oxlintrc.json", config), whole("web/src/Bio.tsx", BIO_BAD)],
                        tools=[tool_named("oxlint")])
    assert ("web/src/Bio.tsx", 2, "react(no-danger)") in rules_of(report)


def test_an_eslint_config_that_is_code_is_never_executed(tmp_path: Path) -> None:
    needs("eslint")
    marker = tmp_path / "pwned"
    evil = f"require('fs').writeFileSync({str(marker)!r}, 'ran'); module.exports = {{ rules: {{}} }};\n"
    flat = f"import fs from 'fs'; fs.writeFileSync({str(marker)!r}, 'ran'); export default [];\n"
    plugin = '{"name": "x", "eslintConfig": {"plugins": ["evil"]}}'
    report = run_checks([whole(".eslintrc.js", evil), whole("eslint.config.mjs", flat),
                         whole("package.json", plugin), whole("web/src/Bio.vue", VUE_BAD)],
                        tools=[tool_named("eslint")])
    assert not marker.exists()
    assert ("web/src/Bio.vue", 2, "vue/no-v-html") in rules_of(report)


def test_tool_configs_and_plugins_are_never_written_to_the_sandbox() -> None:
    for path in ("ruff.toml", "pyproject.toml", ".eslintrc.js", "web/.eslintrc.cjs", "eslint.config.mjs",
                 ".hadolint.yaml", "package.json", "node_modules/eslint-plugin-evil/index.js", ".sqlfluff",
                 ".secrets.baseline", ".squawk.toml", ".oxlintrc.json", ".yamllint"):
        assert is_tool_config(path), path
    assert not is_tool_config("app/orders.py")


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "a/../../b", "", "a\\b", "x\x00y", "."])
def test_paths_that_could_escape_the_scratch_tree_are_refused(path: str) -> None:
    assert safe_relative_path(path) is None
    report = run_checks([ToolInput(path=path or "", text="x = 1\n", how=WHOLE, added={1})],
                        tools=[tool_named("ruff")]) if path else None
    assert report is None or any("not a safe relative path" in note for note in report.notes)


# --- the sandbox: scratch dir, environment, network, time limit, output cap ------------------------


def fake_tool(code: str, name: str = "fake") -> Tool:
    """A 'tool' that is a real Python process running `code` with the files as arguments."""
    return Tool(name, lambda item: True, lambda: [sys.executable, "-c", code], lambda files: list(files),
                parse_ruff, install="(test)", ok_exit_codes=frozenset({0}))


def test_a_tool_that_sleeps_is_cut_at_its_limit() -> None:
    started = time.monotonic()
    report = run_checks([whole("a.py", "x = 1\n")], tools=[fake_tool("import time; time.sleep(60)")],
                        timeout_s=1.0)
    assert time.monotonic() - started < 10
    (run,) = report.runs
    assert run.status == "timeout" and "killed after" in run.detail
    assert any(note.startswith("fake: timeout") for note in report.notes)


def test_a_tool_that_prints_50_mb_is_capped() -> None:
    code = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(50):\n    sys.stdout.write(chunk)\n"
    started = time.monotonic()
    report = run_checks([whole("a.py", "x = 1\n")], tools=[fake_tool(code)], output_cap=1 << 20)
    assert time.monotonic() - started < 20
    (run,) = report.runs
    assert run.status == "capped" and report.findings == []


def test_a_crashing_tool_or_unreadable_output_becomes_a_note() -> None:
    crash = run_checks([whole("a.py", "x = 1\n")], tools=[fake_tool("import sys; sys.exit('boom')")])
    assert crash.runs[0].status == "failed" and "boom" in crash.runs[0].detail
    garbage = run_checks([whole("a.py", "x = 1\n")], tools=[fake_tool("print('<html>oops')")])
    assert garbage.runs[0].status == "failed" and "non-JSON" in garbage.runs[0].detail


def test_a_missing_tool_is_a_note_naming_its_install_command() -> None:
    missing = Tool("ghost", lambda item: True, lambda: None, lambda files: [], parse_ruff, install="pip install ghost")
    report = run_checks([whole("a.py", "x = 1\n")], tools=[missing])
    assert report.runs[0].status == "missing" and "pip install ghost" in report.notes[0]


def test_tools_run_in_a_scratch_tree_with_only_the_reviewed_files_and_no_secrets(monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_should_never_reach_a_tool")
    monkeypatch.setenv("CALORA_WEBHOOK_SECRET", "shh")
    code = ("import json, os, sys\n"
            "files = sorted(os.path.relpath(os.path.join(d, f)) for d, _, fs in os.walk('.') for f in fs)\n"
            "sys.stderr.write(json.dumps({'cwd': os.getcwd(), 'env': dict(os.environ), 'files': files}))\n"
            "print('[]')\n")
    seen: dict = {}

    def parse(stdout: str, root: Path) -> list:
        return []

    tool = Tool("spy", lambda item: True, lambda: [sys.executable, "-c", code], lambda files: list(files), parse,
                install="(test)", ok_exit_codes=frozenset({0}))
    from reviewers.checks import sandbox

    original = sandbox._collect

    def spy(job, root):
        seen.update(json.loads(job.stderr.read_text()))
        return original(job, root)

    monkeypatch.setattr(sandbox, "_collect", spy)
    run_checks([whole("app/x.py", "x = 1\n"), whole("ruff.toml", "[lint]\n")], tools=[tool])
    assert seen["files"] == ["app/x.py"]
    assert "calora-checks-" in seen["cwd"]
    assert "GITHUB_TOKEN" not in seen["env"] and "CALORA_WEBHOOK_SECRET" not in seen["env"]
    assert seen["env"]["HTTPS_PROXY"] == "http://127.0.0.1:9"


def test_a_tool_cannot_reach_the_network() -> None:
    if not network_isolation():
        pytest.skip("this system does not allow unshare -rn; tools run with a dead proxy only")
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    with socketserver.TCPServer(("127.0.0.1", 0), Handler) as server:
        port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        code = ("import socket, sys\n"
                f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'GET /leak HTTP/1.0\\r\\n\\r\\n')\n"
                "    print('[]')\nexcept OSError as exc:\n    sys.exit(f'no network: {exc}')\n")
        report = run_checks([whole("a.py", "x = 1\n")], tools=[fake_tool(code)])
        server.shutdown()
    assert hits == []
    assert report.runs[0].status == "failed" and "no network" in report.runs[0].detail


# --- evidence for the reviewers --------------------------------------------------------------------


def test_evidence_is_most_severe_first_bounded_and_names_the_rule() -> None:
    findings = [
        CheckFinding(path="a.py", line=i, severity=Severity.nit if i > 1 else Severity.blocker,
                     category=Category.security, message=f"m{i}", tool="ruff", rule=f"S{i}")
        for i in range(1, MAX_EVIDENCE_LINES + 6)
    ]
    text = CheckReport(findings=list(reversed(findings))).evidence_for(["a.py", "b.py"])
    lines = text.splitlines()
    assert lines[1] == "- a.py:1 [blocker, security] ruff S1: m1"
    assert lines[-1] == "- ... and 5 more"
    assert CheckReport(findings=findings).evidence_for(["b.py"]) == ""


# --- known false alarms, recognised from the file itself ---------------------------------------------


def test_s608_on_constants_and_a_placeholder_list_is_a_nit_but_a_pasted_value_still_blocks() -> None:
    safe = (
        '_COLUMNS = "id, total"\n'
        "def by_ids(cur, ids):\n"
        '    placeholders = ", ".join(["%s"] * len(ids))\n'
        '    cur.execute(f"SELECT {_COLUMNS} FROM invoices WHERE id IN ({placeholders})", list(ids))\n'
    )
    (finding,) = check(whole("app/invoices.py", safe), tool="ruff").findings
    assert (finding.rule, finding.severity) == ("S608", Severity.nit) and "placeholder" in finding.message
    unsafe = safe.replace("WHERE id IN ({placeholders})", "WHERE id IN ({placeholders}) AND note = '{note}'")
    unsafe = unsafe.replace("def by_ids(cur, ids):", "def by_ids(cur, ids, note):")
    (finding,) = check(whole("app/invoices.py", unsafe), tool="ruff").findings
    assert (finding.rule, finding.severity) == ("S608", Severity.blocker)


def test_an_html_sink_in_a_file_that_sanitizes_is_a_nit_the_reviewer_confirms() -> None:
    sanitized = 'import DOMPurify from "dompurify";\n' + BIO_BAD.replace(
        "__html: html", "__html: DOMPurify.sanitize(html)")
    (finding,) = check(whole("web/src/Bio.tsx", sanitized), tool="oxlint").findings
    assert finding.severity is Severity.nit and "sanitizes HTML" in finding.message
    (raw,) = check(whole("web/src/Bio.tsx", BIO_BAD), tool="oxlint").findings
    assert raw.severity is Severity.major


def test_a_hook_made_conditional_by_an_added_early_return_is_reported_on_that_return() -> None:
    text = ('import { useState } from "react";\n\nexport function Panel({ id }) {\n'
            "  if (!id) {\n    return null;\n  }\n  const [open, setOpen] = useState(false);\n"
            "  return <div onClick={() => setOpen(!open)}>{id}</div>;\n}\n")
    early_return_added = whole("web/src/Panel.tsx", text).model_copy(update={"added": {4, 5, 6}})
    (finding,) = check(early_return_added, tool="oxlint").findings
    assert (finding.rule, finding.line) == ("react-hooks(rules-of-hooks)", 5)
    unrelated_change = whole("web/src/Panel.tsx", text).model_copy(update={"added": {8}})
    assert check(unrelated_change, tool="oxlint").findings == []  # the hook call and its condition predate it


def test_squawk_does_not_judge_the_down_part_of_a_migration() -> None:
    text = ("-- migrate:up\nALTER TABLE invoices ADD COLUMN currency char(3) NOT NULL;\n\n"
            "-- migrate:down\nALTER TABLE invoices DROP COLUMN currency;\n")
    report = check(whole("db/migrations/20240619_currency.sql", text), tool="squawk")
    assert {(f.line, f.rule) for f in report.findings} == {(2, "adding-required-field")}
    down_file = check(whole("db/migrations/0042_currency.down.sql", "ALTER TABLE invoices DROP COLUMN currency;\n"),
                      tool="squawk")
    assert down_file.findings == []


def test_an_index_on_a_table_the_migration_creates_needs_no_concurrently_but_one_on_a_live_table_does() -> None:
    created = ("CREATE TABLE refunds (\n  id bigserial PRIMARY KEY,\n  order_id bigint NOT NULL\n);\n"
               "CREATE INDEX refunds_order_id_idx ON refunds (order_id);\n")
    assert "require-concurrent-index-creation" not in {
        f.rule for f in check(whole("db/migrations/V57__refunds.sql", created), tool="squawk").findings}
    live = "CREATE INDEX orders_status_idx ON orders (status);\n"
    assert "require-concurrent-index-creation" in {
        f.rule for f in check(whole("db/migrations/V58__orders_status.sql", live), tool="squawk").findings}


def test_squawk_judges_postgres_migrations_not_mysql_ones() -> None:
    mysql = ("CREATE TABLE `reviews` (\n  `id` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `body` text NOT NULL,\n"
             "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\nCREATE INDEX reviews_body ON reviews (body(50));\n")
    assert check(whole("db/migrations/000043_reviews.up.sql", mysql), tool="squawk").findings == []
    postgres = "-- the `reviews` table is busy: ENGINE=InnoDB is MySQL talk\nCREATE INDEX reviews_body_idx ON reviews (body);\n"
    assert {f.rule for f in check(whole("db/migrations/000044_reviews.up.sql", postgres), tool="squawk").findings} == {
        "require-concurrent-index-creation"}


def test_yaml_syntax_errors_of_a_helm_template_are_the_template_not_the_chart() -> None:
    template = ("{{- if .Values.pdb.enabled }}\napiVersion: policy/v1\nkind: PodDisruptionBudget\nspec:\n"
                "  minAvailable: {{ .Values.replicas }}\n{{- end }}\n")
    assert check(whole("charts/api/templates/pdb.yaml", template), tool="yamllint").findings == []
    broken = "on:\n  push:\n jobs: [\n"
    assert {f.rule for f in check(whole(".github/workflows/a.yml", broken), tool="yamllint").findings} == {"syntax"}


def test_checkov_on_a_lambda_names_its_public_url_not_the_hygiene_every_lambda_lacks() -> None:
    needs("checkov")
    lambda_tf = ('resource "aws_lambda_function" "refund" {\n  function_name = "refund"\n  role = aws_iam_role.r.arn\n'
                 '  handler = "app.handler"\n  runtime = "python3.12"\n  filename = "refund.zip"\n'
                 '  environment {\n    variables = { STAGE = "prod" }\n  }\n}\n\n'
                 'resource "aws_lambda_function_url" "refund" {\n  function_name      = aws_lambda_function.refund.function_name\n'
                 '  authorization_type = "NONE"\n}\n')
    rules = {f.rule for f in check(whole("infra/refund.tf", lambda_tf), tool="checkov").findings}
    assert "CKV_AWS_258" in rules
    assert not rules & {"CKV_AWS_50", "CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173", "CKV_AWS_272"}


def test_a_sealed_secret_is_ciphertext_but_a_plain_secret_manifest_leaks() -> None:
    body = ("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: smtp\n{key}:\n"
            "  password: AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq1xKfcXPz8vB9a3c7Qx0Lm2WJk7pYtR5s\n")
    sealed = body.format(api="bitnami.com/v1alpha1", kind="SealedSecret", key="spec:\n  encryptedData")
    assert check(whole("k8s/smtp.sealedsecret.yaml", sealed), tool="detect-secrets").findings == []
    plain = body.format(api="v1", kind="Secret", key="stringData")
    assert check(whole("k8s/smtp.secret.yaml", plain), tool="detect-secrets").findings != []


def test_aws_documentation_example_keys_and_constant_shell_commands_are_not_alarms() -> None:
    example = check(whole("tests/test_s3.py", 'KEY = "AKIAIOSFODNN7EXAMPLE"\n'), tool="detect-secrets")
    assert example.findings == []
    constant = check(whole("scripts/build.py", "import subprocess\nsubprocess.run('make all', shell=True)\n"),
                     tool="ruff")
    assert {(f.rule, f.severity) for f in constant.findings} == {("S602", Severity.minor)}
    pasted = check(whole("scripts/build.py", "import subprocess\ndef go(t):\n    subprocess.run(f'make {t}', shell=True)\n"),
                   tool="ruff")
    assert {(f.rule, f.severity) for f in pasted.findings} == {("S602", Severity.blocker)}


def test_a_keyword_line_whose_value_is_a_reference_or_a_typeof_check_is_no_secret_but_a_literal_is() -> None:
    workflow = ("jobs:\n  image:\n    steps:\n      - uses: docker/build-push-action@v6\n        with:\n"
                "          secrets: |\n            pip_index_url=${{ secrets.PIP_INDEX_URL }}\n"
                "          password: ${{ secrets.REGISTRY_PASSWORD }}\n")
    assert check(whole(".github/workflows/image.yml", workflow), tool="detect-secrets").findings == []
    guard = 'export function valid(password: unknown) {\n  return typeof password === "string" && password.length > 11;\n}\n'
    assert check(whole("src/auth.ts", guard), tool="detect-secrets").findings == []
    literal = workflow.replace("${{ secrets.REGISTRY_PASSWORD }}", "Tr0ub4dor-and-3-more")
    assert [f.line for f in check(whole(".github/workflows/image.yml", literal), tool="detect-secrets").findings] == [8]


def test_one_analyzer_per_script_file_and_sqlfluff_leaves_migrations_to_squawk() -> None:
    vue = ToolInput(path="web/src/Bio.vue", text=VUE_BAD, how=WHOLE, added={2})
    tsx = ToolInput(path="web/src/Bio.tsx", text=BIO_BAD, how=WHOLE, added={2})
    eslint_here = tool_named("eslint").locate() is not None
    assert tool_named("oxlint").applies(tsx) and not tool_named("eslint").applies(tsx)
    assert tool_named("eslint").applies(vue) and tool_named("oxlint").applies(vue) is (not eslint_here)
    migration = ToolInput(path="db/migrations/0042_x.sql", text="SELECT 1;\n", how=WHOLE, added={1})
    query = ToolInput(path="reports/top.sql", text="SELECT 1;\n", how=WHOLE, added={1})
    assert tool_named("squawk").applies(migration) and not tool_named("sqlfluff").applies(migration)
    assert tool_named("sqlfluff").applies(query)


@pytest.mark.parametrize("parse, text", [
    (tools.parse_ruff, '[{"filename": "a.py"}]'),
    (tools.parse_hadolint, '[{"file": "Dockerfile"}]'),
    (tools.parse_zizmor, '[{"ident": "x", "locations": []}]'),
    (tools.parse_squawk, '[{"file": "m.sql", "line": "x"}]'),
    (tools.parse_checkov, '{"results": {"failed_checks": [{"check_id": "CKV_1"}]}}'),
    (tools.parse_detect_secrets, '{"results": {"a.py": [{"type": "Secret Keyword"}]}}'),
    (tools.parse_eslint, '[{"filePath": "a.vue", "messages": [{"line": 1}]}]'),
    (tools.parse_oxlint, '{"diagnostics": [{"code": "eslint(no-eval)"}]}'),
])
def test_an_output_item_of_another_shape_is_a_tool_output_error_naming_the_tool(parse, text, tmp_path) -> None:
    with pytest.raises(tools.ToolOutputError, match="unexpected .* output item"):
        parse(text, tmp_path)


@pytest.mark.parametrize(("tool", "binary", "config", "current"), [
    ("eslint", ("eslint", "node_modules", ".bin", "eslint"), ("eslint", "eslint.config.mjs"),
     lambda: (tools.CONFIGS / "eslint.config.mjs").read_text(encoding="utf-8")),
    ("semgrep", ("semgrep", "bin", "semgrep"), ("semgrep", "calora-rules.json"), tools.semgrep_rules_json),
])
def test_a_stale_config_in_the_tools_cache_is_replaced_and_a_current_one_is_not_rewritten(
        tool: str, binary: tuple[str, ...], config: tuple[str, ...], current, tmp_path: Path, monkeypatch) -> None:
    """`calora checks install` writes the config next to the tool; an upgraded calora ships rules that copy lacks
    and must not run the tool with the old one, and an image whose tools cache is read-only at run time (written
    at build) must find the tool without writing."""
    monkeypatch.setenv("CALORA_TOOLS_DIR", str(tmp_path))
    executable = tmp_path.joinpath(*binary)
    assert tool_named(tool).locate() is None, "not installed: nothing to run"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    copy = tmp_path.joinpath(*config)
    copy.write_text("from an older calora\n")
    assert tool_named(tool).locate() == [str(executable)]
    assert copy.read_text(encoding="utf-8") == current()
    written = copy.stat().st_mtime_ns
    time.sleep(0.01)
    assert tool_named(tool).locate() == [str(executable)]
    assert copy.stat().st_mtime_ns == written, "a current copy is not written again"

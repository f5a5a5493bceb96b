"""The App's context source against the fake GitHub on loopback: budget, blob cache, what reads as None."""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from app.context_source import BlobCache, GitHubContentsSource, RequestBudget
from app.github_client import GitHubAppClients
from reviewers.context.source import MAX_FILE_BYTES, RepoSource
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import app_clients, app_key_pair, fake_github, sleeper  # noqa: F401 - fixtures

HEAD = "a" * 40
NEXT_HEAD = "c" * 40
MODELS = "class Order(models.Model):\n    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)\n"
VIEWS = "def orders(request):\n    return render(request, 'orders.html', {'orders': Order.objects.all()})\n"


def review(
    clients: GitHubAppClients, ref: str, reads: Callable[[RepoSource], Any], *, max_requests: int = 20,
    cache: BlobCache | None = None, known: dict[str, str] | None = None,
) -> tuple[GitHubContentsSource, Any]:
    """One review's use of the source: retrieval runs in a worker thread, the client on the job's loop."""

    async def job() -> tuple[GitHubContentsSource, Any]:
        async with clients.for_installation(1) as gh:
            source = GitHubContentsSource(gh.pull("acme", "shop", 1), ref, asyncio.get_running_loop(),
                                          RequestBudget(max_requests), known=known,
                                          cache=cache if cache is not None else BlobCache())
            return source, await asyncio.to_thread(reads, source)

    return asyncio.run(job())


def contents_paths(fake: FakeGitHub) -> list[str]:
    prefix = "/repos/acme/shop/contents/"
    return [r.path.removeprefix(prefix) for r in fake.calls("repos/get-content")]


def put(fake: FakeGitHub, ref: str, files: dict[str, str | bytes]) -> None:
    repo = fake.repo("acme", "shop")
    for path, text in files.items():
        repo.files[(ref, path)] = text


def test_it_reads_files_and_lists_folders_at_the_head_commit(fake_github: FakeGitHub, app_clients) -> None:
    put(fake_github, HEAD, {"shop/models.py": MODELS, "shop/views.py": VIEWS, "shop/api/urls.py": "urls = []\n",
                            "README.md": "# shop\n"})
    put(fake_github, "main", {"shop/models.py": "the base branch's text\n", "shop/old.py": "x = 1\n"})

    def reads(source: RepoSource):
        return (source.list_dir("shop"), source.read("shop/models.py"), source.read("shop/gone.py"),
                source.list_dir(""), source.read("shop/api"), source.read("../etc/passwd"))

    source, (listed, models, gone, root, folder, outside) = review(app_clients, HEAD, reads)
    assert isinstance(source, RepoSource) and source.revision == HEAD
    assert listed == ["shop/models.py", "shop/views.py"]
    assert models == MODELS
    assert gone is None and folder is None and outside is None
    assert root == ["README.md"]
    # The root first, then one listing per folder; a file missing from a listed folder costs no request.
    assert contents_paths(fake_github) == ["", "shop", "shop/models.py"]
    assert source.budget.notes == []


def test_a_review_spends_at_most_its_budget_and_its_notes_say_so(fake_github: FakeGitHub, app_clients) -> None:
    files = {f"pkg{n}/mod{m}.py": f"VALUE = {n * 10 + m}\n" for n in range(4) for m in range(3)}
    put(fake_github, HEAD, files)

    source, texts = review(app_clients, HEAD, lambda s: [s.read(p) for p in sorted(files)], max_requests=5)
    assert len(fake_github.calls("repos/get-content")) == 5
    # pkg0's listing and its 3 files, then pkg1's listing: the budget is spent before pkg1/mod0.py.
    assert texts[:4] == ["VALUE = 0\n", "VALUE = 1\n", "VALUE = 2\n", None]
    assert texts.count(None) == 9 and source.budget.reads_refused == 9
    assert source.budget.notes == [("repository context: the budget of 5 GitHub contents request(s) per review was "
                             "spent; 9 more read(s) went without (CALORA_CONTEXT_MAX_REQUESTS)")]


def test_no_budget_means_no_request(fake_github: FakeGitHub, app_clients) -> None:
    put(fake_github, HEAD, {"shop/models.py": MODELS})
    _source, text = review(app_clients, HEAD, lambda s: s.read("shop/models.py"), max_requests=0)
    assert text is None and fake_github.calls("repos/get-content") == []


def test_the_same_blob_is_fetched_once_across_reviews_and_commits(fake_github: FakeGitHub, app_clients) -> None:
    cache = BlobCache()
    put(fake_github, HEAD, {"shop/models.py": MODELS, "shop/views.py": VIEWS})
    put(fake_github, NEXT_HEAD, {"shop/models.py": MODELS, "shop/views.py": VIEWS + "# paginated\n"})

    _first, texts = review(app_clients, HEAD, lambda s: [s.read("shop/models.py"), s.read("shop/models.py")],
                           cache=cache)
    assert texts == [MODELS, MODELS]
    assert contents_paths(fake_github) == ["", "shop", "shop/models.py"]  # read twice, fetched once

    _second, texts = review(app_clients, NEXT_HEAD, lambda s: [s.read("shop/models.py"), s.read("shop/views.py")],
                            cache=cache)
    assert texts == [MODELS, VIEWS + "# paginated\n"]
    # The new commit's listing shows models.py's blob unchanged: only the changed views.py is downloaded.
    assert contents_paths(fake_github)[3:] == ["", "shop", "shop/views.py"]
    assert len(cache) == 2


def test_binary_oversized_and_missing_files_read_as_none(fake_github: FakeGitHub, app_clients) -> None:
    cache = BlobCache()
    big = "x = 1\n" * (MAX_FILE_BYTES // 6 + 1)
    put(fake_github, HEAD, {"assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "assets/bundle.js": big,
                            "assets/latin1.txt": "caf\xe9".encode("latin-1")})

    def reads(source: RepoSource):
        return [source.read(p) for p in ("assets/logo.png", "assets/bundle.js", "assets/latin1.txt",
                                          "nowhere/x.py", "nowhere/y.py")]

    source, texts = review(app_clients, HEAD, reads, cache=cache)
    assert texts == [None] * 5
    # The oversized bundle is never downloaded (the listing gave its size); the root says there is no nowhere/.
    assert contents_paths(fake_github) == ["", "assets", "assets/logo.png", "assets/latin1.txt"]
    assert source.budget.notes == []

    _again, texts = review(app_clients, HEAD, lambda s: s.read("assets/logo.png"), cache=cache)
    assert texts is None
    assert contents_paths(fake_github)[4:] == ["", "assets"]  # a blob known not to be text is not fetched again


@pytest.mark.parametrize(("status", "headers", "said"), [
    (500, {}, "HTTP 500"),
    (403, {"retry-after": "3600", "x-ratelimit-remaining": "0"}, "rate limited"),
])
def test_a_failed_request_is_none_and_a_note_never_a_failed_review(
    fake_github: FakeGitHub, app_clients, status: int, headers: dict[str, str], said: str
) -> None:
    put(fake_github, HEAD, {"shop/models.py": MODELS, "conf/settings.py": "DEBUG = False\n"})
    fake_github.add_fault("GET", r"/contents/shop(/|$)", status, headers=headers, times=10)

    source, texts = review(app_clients, HEAD, lambda s: [s.read("shop/models.py"), s.read("conf/settings.py")])
    assert texts[1] == "DEBUG = False\n"  # the other folder is still read
    assert texts[0] is None
    assert source.budget.notes and all("not read" in note for note in source.budget.notes)
    assert any(said in note for note in source.budget.notes)


def test_it_refuses_to_block_the_event_loop_it_needs(fake_github: FakeGitHub, app_clients) -> None:
    async def on_the_loop() -> None:
        async with app_clients.for_installation(1) as gh:
            source = GitHubContentsSource(gh.pull("acme", "shop", 1), HEAD, asyncio.get_running_loop(),
                                          RequestBudget(20),
                                          cache=BlobCache())
            source.read("shop/models.py")

    with pytest.raises(RuntimeError, match="worker thread"):
        asyncio.run(on_the_loop())


def test_the_head_and_the_base_of_one_review_share_its_budget(fake_github: FakeGitHub, app_clients) -> None:
    put(fake_github, HEAD, {"shop/models.py": MODELS})
    put(fake_github, "b" * 40, {"AGENTS.md": "Use select_related for every relation a loop reads.\n"})

    async def job():
        async with app_clients.for_installation(1) as gh:
            budget = RequestBudget(3)
            loop = asyncio.get_running_loop()
            pr = gh.pull("acme", "shop", 1)
            head = GitHubContentsSource(pr, HEAD, loop, budget, cache=BlobCache())
            base = GitHubContentsSource(pr, "b" * 40, loop, budget, cache=BlobCache())
            texts = await asyncio.to_thread(lambda: [head.read("shop/models.py"), base.read("AGENTS.md")])
            return budget, texts

    budget, texts = asyncio.run(job())
    assert texts == [MODELS, None]  # 2 requests for the head's file, the base's listing, then nothing left
    assert (budget.spent, budget.reads_refused) == (3, 1)
    assert len(fake_github.calls("repos/get-content")) == 3


def test_texts_the_review_already_holds_cost_no_request(fake_github: FakeGitHub, app_clients) -> None:
    put(fake_github, HEAD, {"shop/views.py": VIEWS})
    _source, text = review(app_clients, HEAD, lambda s: s.read("shop/views.py"), known={"shop/views.py": VIEWS})
    assert text == VIEWS and fake_github.calls("repos/get-content") == []


def test_modules_from_outside_the_repository_cost_no_request_once_the_root_is_listed(
    fake_github: FakeGitHub, app_clients
) -> None:
    put(fake_github, HEAD, {"billing/models.py": MODELS, "billing/views.py": VIEWS})
    # What retrieval asks to resolve `from django.http import HttpResponse` and friends, and a missing module.
    wanted = ["django/http.py", "django/http/__init__.py", "src/django/http.py",
              "django/contrib/admin/views/decorators.py", "billing/models/__init__.py", "billing/models.py"]
    _source, texts = review(app_clients, HEAD, lambda s: [s.read(p) for p in wanted])
    assert texts == [None] * 5 + [MODELS]
    # Only the root is listed ahead: billing/models/ is asked for (404) since billing/ was not listed yet.
    assert contents_paths(fake_github) == ["", "billing/models", "billing", "billing/models.py"]

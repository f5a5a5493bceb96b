"""Repository context for reviewers: what around a change helps to judge it (pure over a `RepoSource`).

`source` declares the two reads retrieval may make; `retrieval` picks snippets for a slice within its
token budget; `syntax` parses files; `profile` summarises the repository; `conventions` reads the team's
own instruction files from the base.
"""

from reviewers.context.conventions import read_conventions
from reviewers.context.retrieval import ContextReader, retrieve_context
from reviewers.context.source import DirectorySource, GitSource, RepoSource

__all__ = ["ContextReader", "DirectorySource", "GitSource", "RepoSource", "read_conventions", "retrieve_context"]

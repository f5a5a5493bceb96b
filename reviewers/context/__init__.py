"""Repository context for reviewers: what around a change helps to judge it (pure over a `RepoSource`)."""

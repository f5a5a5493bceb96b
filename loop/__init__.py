"""The coding loop (`calora loop`): an author model proposes a patch, the reviewers and analyzers judge it,
the synthesis becomes the author's next brief, round after round, in a scratch git worktree.

Pure core: `patches` (what the author sent, and whether it may be applied), `prompts` (what the author
reads), `rounds` (the records and when to stop). I/O edges: `author` (the OpenAI-compatible client),
`worktree` (git and the test command), `records` (the store's tables). `runner` wires them into one loop.
"""

"""Reviewer backends: something that turns `ReviewRequest`s into `ReviewerOutput`s or errors."""

"""The GitHub App and the command line: the I/O shell around the review core."""

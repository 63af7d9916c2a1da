"""The job runner: bounded concurrent workers over a list, signals, the failed file and the
report as lines finish, progress and the summary."""

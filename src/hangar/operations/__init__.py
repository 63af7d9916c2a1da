"""What each command does to one image line: sign, validate (by flags or policy.json), remove,
inspect; which digests a line means; --all-tags expansion."""

"""The write protocol for what hangar attaches to an image: the `.sig` tag (read, merge on a
fresh read, write, check at the end) and the journal of what was written."""

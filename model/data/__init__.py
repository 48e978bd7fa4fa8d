"""Reading clips: video and audio decoding, annotation files, datasets and the decoded cache."""

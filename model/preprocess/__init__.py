"""What the encoders are fed: the audio front end (spectrograms) and image preprocessing."""

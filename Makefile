# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint test-packages bench soak clean
MINUTES ?= 1

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/authz-watcher scan --no-decode examples/logs

lint: $(STAMP)
	$(BIN)/ruff check watcher tests benchmarks
	$(BIN)/ruff format --check watcher tests benchmarks
	$(BIN)/mypy

# Debian packages that tests drive for real: systemd-nspawn (the unit under a real systemd),
# logrotate, and systemd-journal-remote (writes the journal files the journald source reads).
# Installed when missing and running as root (CI is); otherwise those tests say why they skip.
test-packages:
	@missing=""; \
	command -v systemd-nspawn >/dev/null 2>&1 || missing="$$missing systemd-container"; \
	command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || missing="$$missing logrotate"; \
	[ -x /lib/systemd/systemd-journal-remote ] || missing="$$missing systemd-journal-remote"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "not root: not installing$$missing (tests that need it skip)"; exit 0; fi; \
	echo "installing Debian packages the tests need:$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

test: lint test-packages
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/scan_throughput.py
	$(BIN)/python benchmarks/decode_throughput.py
	$(BIN)/python benchmarks/tail_latency.py
	$(BIN)/python benchmarks/tail_throughput.py
	$(BIN)/python benchmarks/tail_rss.py
	$(BIN)/python benchmarks/cloudtrail_throughput.py
	$(BIN)/python benchmarks/alerts_scale.py
	$(BIN)/python benchmarks/journald_throughput.py
	$(BIN)/python benchmarks/s3_throughput.py
	$(BIN)/python benchmarks/s3_sqs_throughput.py

# MINUTES of the daemon under a writer, rotations, SIGHUPs and a flapping receiver (prints
# lost/duplicated per sink, which must be 0), then MINUTES of the follower's model-based test
# with fresh random examples (and 2,000 of the siblings model a layout), then every other
# property with fresh ones. Not part of `make test`.
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes $(MINUTES)
	FOLLOW_MODEL_SECONDS=$$(( $(MINUTES) * 60 )) $(BIN)/pytest -q tests/test_follow_model.py
	FOLLOW_MODEL_RANDOM=1 FOLLOW_MODEL_EXAMPLES=2000 $(BIN)/pytest -q tests/test_follow_siblings_model.py
	HYPOTHESIS_PROFILE=explore $(BIN)/pytest -q tests/test_extract.py tests/test_lines.py \
		tests/test_messages.py tests/test_hostile.py tests/test_backpressure.py tests/test_alerts_model.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Install as a systemd service (root). Idempotent: run it again to upgrade in place.
PREFIX ?= /opt/authz-watcher
SYSTEMD_DIR ?= /etc/systemd/system
CONFIG_DIR ?= /etc/authz-watcher
.PHONY: install uninstall

.PHONY: install-venv install-files

install: install-venv install-files
	if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then systemctl daemon-reload; fi
	@echo "Edit $(CONFIG_DIR)/authz-watcher.yaml, then: systemctl enable --now authz-watcher"

# The service's venv is built from the system Python unless PYTHON= is given (the `python3` on
# PATH may be a pyenv/asdf one under /root or /home, which the unit hides: check-python.py says so).
SERVICE_PYTHON := $(if $(filter file,$(origin PYTHON)),$(or $(wildcard /usr/bin/python3),$(PYTHON)),$(PYTHON))
SERVICE_VENV := $(PREFIX)/venv

# Built under DESTDIR, the venv is made to work at $(SERVICE_VENV): its scripts and pyvenv.cfg
# name the final path, and the bytecode records the final source paths (for tracebacks).
install-venv:
	$(SERVICE_PYTHON) systemd/check-python.py
	$(SERVICE_PYTHON) -m venv $(DESTDIR)$(SERVICE_VENV)
	$(DESTDIR)$(SERVICE_VENV)/bin/python -m pip install --quiet --upgrade --no-compile pip
	$(DESTDIR)$(SERVICE_VENV)/bin/python -m pip install --quiet --upgrade --no-compile .
ifneq ($(DESTDIR),)
	grep -rlF '$(DESTDIR)$(SERVICE_VENV)' $(DESTDIR)$(SERVICE_VENV)/bin $(DESTDIR)$(SERVICE_VENV)/pyvenv.cfg \
		| xargs -r sed -i 's|$(DESTDIR)$(SERVICE_VENV)|$(SERVICE_VENV)|g'
endif
	$(DESTDIR)$(SERVICE_VENV)/bin/python -m compileall -q \
		$(if $(DESTDIR),-f -s '$(DESTDIR)' -p /) $(DESTDIR)$(SERVICE_VENV)/lib

install-files:
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/README.md
	install -D -m 0644 systemd/authz-watcher.service $(DESTDIR)$(SYSTEMD_DIR)/authz-watcher.service
	install -d -m 0755 $(DESTDIR)$(CONFIG_DIR)
	test -e $(DESTDIR)$(CONFIG_DIR)/authz-watcher.yaml || \
		install -m 0644 config/authz-watcher.yaml $(DESTDIR)$(CONFIG_DIR)/authz-watcher.yaml

uninstall:
	if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then \
		systemctl disable --now authz-watcher 2>/dev/null || true; fi
	rm -f $(DESTDIR)$(SYSTEMD_DIR)/authz-watcher.service
	rm -rf $(DESTDIR)$(PREFIX)
	if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then systemctl daemon-reload; fi
	@echo "Kept $(CONFIG_DIR) and /var/lib/authz-watcher (remove them by hand if wanted)."

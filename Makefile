# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench soak clean
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

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/scan_throughput.py
	$(BIN)/python benchmarks/decode_throughput.py
	$(BIN)/python benchmarks/tail_latency.py
	$(BIN)/python benchmarks/tail_throughput.py
	$(BIN)/python benchmarks/tail_rss.py
	$(BIN)/python benchmarks/cloudtrail_throughput.py
	$(BIN)/python benchmarks/alerts_scale.py

# Minutes of the daemon under a writer, rotation, SIGHUPs and a flapping receiver; prints
# lost/duplicated per sink (must be 0). Not part of `make test`.
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes $(MINUTES)

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

install-venv:
	$(PYTHON) -m venv $(DESTDIR)$(PREFIX)/venv
	$(DESTDIR)$(PREFIX)/venv/bin/python -m pip install --quiet --upgrade pip
	$(DESTDIR)$(PREFIX)/venv/bin/python -m pip install --quiet --upgrade .

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

